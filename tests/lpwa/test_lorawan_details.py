"""LoRaWAN details from ChirpStack v4 and The Things Stack v3 over the real broker: MAC-only
uplinks are counted frames (no reading, no dead letter); the data-rate index, the gateway's EUI
and the DevAddr are kept alike from both; the API shows a device's frames, joins, last frame
counter and loss."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from devices.codecs import encode_frame
from devices.kinds import Channel, DeviceKind
from pilotlab.settings import Settings
from tests.lpwa import messages as m
from tests.lpwa.conftest import LpwaPilot
from tests.support import admin_headers, publish, wait_until


def _at(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=10) + timedelta(seconds=seconds)).isoformat()


def _frames(database_url: str, device_id: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT fcnt, network_server, f_port, mac_only, dev_addr, data_rate_index FROM uplink_frame "
                            "WHERE device_id = %s ORDER BY fcnt", (device_id,)).fetchall()


def _count(database_url: str, query: str, *args: object) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute(query, args).fetchone()[0]  # type: ignore[index]


@pytest.fixture
def api(database_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=database_url)), headers=admin_headers(database_url)) as client:
        yield client


def test_mac_only_uplinks_from_both_network_servers_are_counted_frames_without_a_reading_or_dead_letter(
    database_url: str, mqtt_url: str, lpwa: LpwaPilot, lpwa_worker: Callable,
) -> None:
    eui = lpwa.eui[lpwa.env_id]
    port, data = encode_frame(DeviceKind.ENV_SENSOR, Channel.TELEMETRY, {"temperature_c": 18.5})
    explicit_port_0 = orjson.loads(m.chirpstack_mac_only(lpwa.app, eui, 12, _at(3)))
    explicit_port_0.update(fPort=0)  # newer v4 releases write zeros
    lpwa_worker()
    cs_topic, tts_topic = m.chirpstack_topic(lpwa.app, eui), m.tts_topic(lpwa.app, "tts-env")
    publish(mqtt_url, [(cs_topic, m.chirpstack_up(lpwa.app, eui, 10, port, data, _at(0))),
                       # ChirpStack runs the profile's codec on the empty payload too: an `object` may come
                       (cs_topic, m.chirpstack_mac_only(lpwa.app, eui, 11, _at(1), object={})),
                       (cs_topic, orjson.dumps(explicit_port_0))])
    publish(mqtt_url, [(tts_topic, m.tts_mac_only(eui, "tts-env", 13, _at(4))),
                       # FPort 0 (so no f_port) with its MAC commands as FRMPayload, as older releases forward it
                       (tts_topic, m.tts_mac_only(eui, "tts-env", 14, _at(5), frm_payload="AwcG"))], qos=0)
    publish(mqtt_url, [(cs_topic, m.chirpstack_up(lpwa.app, eui, 16, port, data, _at(6)))])  # 15 lost

    wait_until(lambda: len(_frames(database_url, lpwa.env_id)) == 6 or None, 15, what="six frames")
    assert _frames(database_url, lpwa.env_id) == [
        (10, "chirpstack", port, False, "00189440", 1),
        (11, "chirpstack", 0, True, "00189440", 5),
        (12, "chirpstack", 0, True, "00189440", 5),
        (13, "tts", 0, True, "00bcb929", None),
        (14, "tts", 0, True, "00bcb929", None),
        (16, "chirpstack", port, False, "00189440", 1),
    ]
    readings = _count(database_url, "SELECT count(*) FROM telemetry WHERE device_id = %s", lpwa.env_id)
    assert readings == 2
    assert _count(database_url, "SELECT count(*) FROM dead_letter WHERE topic = ANY(%s)", [cs_topic, tts_topic]) == 0
    with psycopg.connect(database_url) as conn:
        loss = conn.execute("SELECT sum(received), sum(lost) FROM uplink_loss_hourly WHERE device_id = %s",
                            (lpwa.env_id,)).fetchone()
    assert loss == (6, 1)


def test_data_rate_index_gateway_eui_and_dev_addr_are_kept_alike_from_both_network_servers(
    database_url: str, mqtt_url: str, lpwa: LpwaPilot, lpwa_worker: Callable,
) -> None:
    eui = lpwa.eui[lpwa.switch_id]
    port, data = encode_frame(DeviceKind.SMART_SWITCH, Channel.TELEMETRY,
                              {"relay_on": True, "power_w": 12.0, "energy_wh": 3400.0})
    tts = orjson.loads(m.tts_up(eui, "tts-sw", 21, port, data, _at(2)))
    tts["end_device_ids"]["dev_addr"] = "26011AB9"
    tts["uplink_message"]["rx_metadata"][0]["gateway_ids"]["eui"] = "9C5C8E00001A05C4"
    tts_join = copy.deepcopy(m.TTS_JOIN_EXAMPLE)
    tts_join["end_device_ids"].update(device_id="tts-sw", dev_eui=eui.upper())
    tts_join["join_accept"]["received_at"] = _at(1)
    lpwa_worker()
    publish(mqtt_url, [(m.chirpstack_topic(lpwa.app, eui),
                        m.chirpstack_up(lpwa.app, eui, 20, port, data, _at(0), dr=3, devAddr="26011AB9"))])
    publish(mqtt_url, [(m.tts_topic(lpwa.app, "tts-sw", "join"), orjson.dumps(tts_join)),
                       (m.tts_topic(lpwa.app, "tts-sw"), orjson.dumps(tts))], qos=0)

    wait_until(lambda: len(_frames(database_url, lpwa.switch_id)) == 2 or None, 15, what="two frames")
    assert [f[4:] for f in _frames(database_url, lpwa.switch_id)] == [("26011ab9", 3), ("26011ab9", 5)]
    with psycopg.connect(database_url) as conn:
        receptions = conn.execute("SELECT fcnt, gateway_id, gateway_eui, data_rate_index, spreading_factor, bandwidth_hz "
                                  "FROM uplink_reception WHERE device_id = %s ORDER BY fcnt", (lpwa.switch_id,)).fetchall()
        joins = wait_until(lambda: conn.execute("SELECT dev_addr FROM lorawan_join WHERE device_id = %s",
                                                (lpwa.switch_id,)).fetchall(), 10, what="the join")
    assert receptions == [(20, "0016c001f153a14c", "0016c001f153a14c", 3, 11, 125000),
                          (21, "gtw1", "9c5c8e00001a05c4", 5, 7, 125000)]
    assert joins == [("01497ecc",)]


def test_the_api_shows_a_devices_frames_joins_last_frame_counter_and_loss(
    database_url: str, mqtt_url: str, lpwa: LpwaPilot, lpwa_worker: Callable, api: TestClient,
) -> None:
    eui = lpwa.eui[lpwa.tracker_id]
    topic = m.chirpstack_topic(lpwa.app, eui)
    join = copy.deepcopy(m.CHIRPSTACK_JOIN_EXAMPLE)
    join["deviceInfo"].update(applicationId=lpwa.app, devEui=eui)
    join["time"] = _at(0)
    lpwa_worker()
    publish(mqtt_url, [(m.chirpstack_topic(lpwa.app, eui, "join"), orjson.dumps(join))])
    publish(mqtt_url, [(topic, m.chirpstack_mac_only(lpwa.app, eui, n, _at(n), dev_addr="00189440")) for n in (0, 1, 3)])
    wait_until(lambda: len(_frames(database_url, lpwa.tracker_id)) == 3 or None, 15, what="three frames")

    frames = api.get(f"/devices/{lpwa.tracker_id}/frames", params={"limit": 2}).json()
    assert [(f["fcnt"], f["mac_only"], f["dev_addr"], f["data_rate_index"]) for f in frames] == [
        (3, True, "00189440", 5), (1, True, "00189440", 5)]
    assert frames[0]["gateways"] == [{"gateway_id": "0016c001f153a14c", "gateway_eui": "0016c001f153a14c",
                                      "rssi_dbm": -36.0, "snr_db": 10.5}]
    assert (frames[0]["spreading_factor"], frames[0]["bandwidth_hz"]) == (11, 125000)
    older = api.get(f"/devices/{lpwa.tracker_id}/frames", params={"limit": 2, "offset": 2}).json()
    assert [f["fcnt"] for f in older] == [0]
    assert api.get(f"/devices/{lpwa.tracker_id}/joins").json() == [
        {"joined_at": datetime.fromisoformat(join["time"]).isoformat().replace("+00:00", "Z"),
         "network_server": "chirpstack", "dev_addr": "00189440"}]
    summary = api.get(f"/devices/{lpwa.tracker_id}/lorawan").json()
    assert {k: summary[k] for k in ("dev_eui", "dev_addr", "last_fcnt", "frames_24h", "lost_24h")} == {
        "dev_eui": eui, "dev_addr": "00189440", "last_fcnt": 3, "frames_24h": 3, "lost_24h": 1}
    assert summary["last_join_at"] is not None
    reception = api.get(f"/devices/{lpwa.tracker_id}/receptions", params={"limit": 1}).json()
    assert [(r["fcnt"], r["gateway_eui"], r["data_rate_index"]) for r in reception] == [(3, "0016c001f153a14c", 5)]
    for path in ("frames", "joins", "lorawan"):
        assert api.get(f"/devices/no-such-device/{path}").status_code == 404
