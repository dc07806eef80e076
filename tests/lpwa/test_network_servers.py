"""ChirpStack v4 and The Things Stack v3 uplinks published over the real broker: stored readings
equal the decoded truth, every reception is kept, copies are one reading, and every bad message
is a dead letter with its own reason while ingest keeps running."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest

from devices.codecs import encode_frame
from devices.kinds import Channel, DeviceKind
from tests.lpwa import messages as m
from tests.lpwa.conftest import LpwaPilot
from tests.lpwa.test_codecs import TRUTH
from tests.support import publish, wait_until


def _now(offset_s: float = 0) -> str:
    return (datetime.now(UTC) - timedelta(seconds=60 - offset_s)).isoformat()


def _reading(database_url: str, device_id: str, seq: int) -> dict | None:
    with psycopg.connect(database_url) as conn:
        cur = conn.execute("SELECT * FROM telemetry WHERE device_id = %s AND seq = %s", (device_id, seq))
        rows = cur.fetchall()
        assert len(rows) <= 1
        return dict(zip([c.name for c in cur.description], rows[0], strict=True)) if rows else None


def _receptions(database_url: str, device_id: str, fcnt: int) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT gateway_id, rssi_dbm, snr_db, spreading_factor, bandwidth_hz, frequency_hz, data_rate "
                            "FROM uplink_reception WHERE device_id = %s AND fcnt = %s ORDER BY gateway_id",
                            (device_id, fcnt)).fetchall()


def _dead(database_url: str, topic: str) -> list[tuple[str, str]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT reason, detail FROM dead_letter WHERE topic = %s", (topic,)).fetchall()


@pytest.mark.parametrize("kind_attr", ["env_id", "switch_id", "tracker_id"])
def test_binary_frames_of_each_kind_through_both_network_servers_store_the_decoded_truth(
    database_url: str, mqtt_url: str, lpwa: LpwaPilot, lpwa_worker: Callable, kind_attr: str,
) -> None:
    device_id = getattr(lpwa, kind_attr)
    kind = {"env_id": DeviceKind.ENV_SENSOR, "switch_id": DeviceKind.SMART_SWITCH,
            "tracker_id": DeviceKind.LOCATION_TRACKER}[kind_attr]
    port, data = encode_frame(kind, Channel.TELEMETRY, TRUTH[kind])
    lpwa_worker()
    cs_time, tts_time = _now(), _now(30)
    publish(mqtt_url, [(m.chirpstack_topic(lpwa.app, lpwa.eui[device_id]),
                        m.chirpstack_up(lpwa.app, lpwa.eui[device_id], 41, port, data, cs_time))])
    publish(mqtt_url, [(m.tts_topic(lpwa.app, "tts-" + device_id),
                        m.tts_up(lpwa.eui[device_id], "tts-" + device_id, 42, port, data, tts_time))], qos=0)
    for seq, when in ((41, cs_time), (42, tts_time)):
        row = wait_until(lambda seq=seq: _reading(database_url, device_id, seq), 15, what=f"reading {seq}")
        assert {k: row[k] for k in TRUTH[kind]} == TRUTH[kind]
        assert row["device_time"] == datetime.fromisoformat(when)
        assert (row["channel"], row["size_bytes"]) == ("telemetry", len(data))
    assert _receptions(database_url, device_id, 41) == [("0016c001f153a14c", -36.0, 10.5, 11, 125000, 867100000, "SF11BW125")]
    assert _receptions(database_url, device_id, 42) == [("gtw1", -35.0, 5.0, 7, 125000, 868300000, "SF7BW125")]


def test_the_network_servers_documented_examples_are_understood(
    database_url: str, mqtt_url: str, lpwa: LpwaPilot, lpwa_worker: Callable,
) -> None:
    env_eui = lpwa.eui[lpwa.env_id]
    # ChirpStack's example as published: fCnt omitted (0), one byte 0xAA on fPort 1 — not a pilotlab
    # layout, so the frame and its reception are kept and the payload is a codec_error.
    cs = copy.deepcopy(m.CHIRPSTACK_UP_EXAMPLE)
    cs["deviceInfo"].update(applicationId=lpwa.app, devEui=env_eui)
    cs_topic = m.chirpstack_topic(lpwa.app, env_eui)
    # TTS's example as published: f_port omitted, a decoded_payload with "temperature".
    tts = copy.deepcopy(m.TTS_UP_EXAMPLE)
    tts["end_device_ids"]["dev_eui"] = env_eui.upper()
    lpwa_worker()
    publish(mqtt_url, [(cs_topic, orjson.dumps(cs))])
    publish(mqtt_url, [(m.tts_topic(lpwa.app, "dev1"), orjson.dumps(tts))], qos=0)

    row = wait_until(lambda: _reading(database_url, lpwa.env_id, 1), 15, what="the TTS example's reading")
    assert (row["temperature_c"], row["humidity_pct"], row["size_bytes"]) == (1.0, None, 3)
    assert row["device_time"] == datetime(2020, 2, 12, 15, 15, 45, 789585, tzinfo=UTC)
    dead = wait_until(lambda: _dead(database_url, cs_topic), 15, what="the ChirpStack example's dead letter")
    assert dead[0][0] == "codec_error" and "version 170" in dead[0][1]
    assert _receptions(database_url, lpwa.env_id, 0) == [("0016c001f153a14c", -36.0, 10.5, 11, 125000, 867100000, "SF11BW125")]


def test_an_uplink_heard_by_three_gateways_and_redelivered_is_one_reading_with_three_receptions(
    database_url: str, mqtt_url: str, lpwa: LpwaPilot, lpwa_worker: Callable,
) -> None:
    eui = lpwa.eui[lpwa.env_id]
    port, data = encode_frame(DeviceKind.ENV_SENSOR, Channel.TELEMETRY, {"temperature_c": 20.5})
    gateways = [("gw-a", -101, -3.5), ("gw-b", -88, 4.25), ("gw-c", -120, -12.0)]
    when = _now()
    body = m.chirpstack_up(lpwa.app, eui, 7, port, data, when, gateways=gateways)
    late_copy = m.chirpstack_up(lpwa.app, eui, 7, port, data, _now(1.5), gateways=gateways[2:])
    lpwa_worker()
    topic = m.chirpstack_topic(lpwa.app, eui)
    publish(mqtt_url, [(topic, body), (topic, body), (topic, late_copy)])
    publish(mqtt_url, [(m.chirpstack_topic(lpwa.app, eui), m.chirpstack_up(lpwa.app, eui, 8, port, data, _now(5)))])
    wait_until(lambda: _reading(database_url, lpwa.env_id, 8), 15, what="the next uplink")
    assert _reading(database_url, lpwa.env_id, 7)["temperature_c"] == 20.5
    assert [r[:3] for r in _receptions(database_url, lpwa.env_id, 7)] == [
        ("gw-a", -101.0, -3.5), ("gw-b", -88.0, 4.25), ("gw-c", -120.0, -12.0)]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM uplink_frame WHERE device_id = %s AND fcnt = 7",
                            (lpwa.env_id,)).fetchone() == (1,)


def test_every_bad_message_is_a_dead_letter_with_its_reason_and_ingest_keeps_going(
    database_url: str, mqtt_url: str, lpwa: LpwaPilot, lpwa_worker: Callable,
) -> None:
    eui = lpwa.eui[lpwa.env_id]
    port, good = encode_frame(DeviceKind.ENV_SENSOR, Channel.TELEMETRY, {"temperature_c": 19.0})
    stranger = "00000000deadbeef"
    cases = [
        (m.chirpstack_topic(lpwa.app, eui), b'{"deduplicationId": "x", "time": ', "malformed_json"),
        (m.chirpstack_topic(lpwa.app, eui), m.chirpstack_up(lpwa.app, eui, 1, port, good, _now())
         .replace(b'"data":"', b'"data":"!!'), "bad_base64"),
        (m.chirpstack_topic(lpwa.app, eui), m.chirpstack_up(lpwa.app, eui, 2, 1, good[:3], _now(1)), "codec_error"),
        (m.chirpstack_topic(lpwa.app, eui), m.chirpstack_up(lpwa.app, eui, 3, 1, b"\x07\x01\x02", _now(2)), "codec_error"),
        (m.chirpstack_topic(lpwa.app, stranger), m.chirpstack_up(lpwa.app, stranger, 4, port, good, _now(3)), "unknown_dev_eui"),
        (m.chirpstack_topic(lpwa.app, eui), m.chirpstack_up(lpwa.app, eui, 5, 77, good, _now(4)), "unknown_fport"),
        (m.chirpstack_topic(lpwa.app, eui), m.chirpstack_up(lpwa.app, eui, 6, port, good, _now(5),
                                                             object={"humidity_pct": 1e13}), "out_of_range"),
        (m.tts_topic(lpwa.app, "x"), m.tts_up(eui, "x", 9, port, good, _now(6)).replace(b'"frm_payload":"', b'"frm_payload":"%'),
         "bad_base64"),
        (m.tts_topic(lpwa.app, "y"), b"\xff\xfe not json", "malformed_json"),
    ]
    lpwa_worker()
    for topic, body, _ in cases:
        publish(mqtt_url, [(topic, body)], qos=0 if topic.startswith("v3/") else 1)
    after = m.chirpstack_up(lpwa.app, eui, 10, port, good, _now(10))
    publish(mqtt_url, [(m.chirpstack_topic(lpwa.app, eui), after)])
    wait_until(lambda: _reading(database_url, lpwa.env_id, 10), 15, what="the good uplink after the bad ones")

    def reasons() -> list[str]:
        with psycopg.connect(database_url) as conn:
            rows = conn.execute("SELECT payload, reason FROM dead_letter WHERE topic LIKE %s OR topic LIKE %s",
                                (f"application/{lpwa.app}/%", f"v3/{lpwa.app}@%")).fetchall()
        found = {bytes(p): r for p, r in rows}
        return [found.get(body) for _, body, _ in cases]

    assert wait_until(lambda: None not in reasons() and reasons(), 10, what="all dead letters") == [r for *_, r in cases]
    with psycopg.connect(database_url) as conn:  # frames of known devices were heard, whatever their payload
        heard = [f for (f,) in conn.execute("SELECT fcnt FROM uplink_frame WHERE device_id = %s ORDER BY fcnt",
                                            (lpwa.env_id,))]
    assert heard == [1, 2, 3, 5, 6, 9, 10]


def test_a_join_starts_a_new_counter_session(
    database_url: str, mqtt_url: str, lpwa: LpwaPilot, lpwa_worker: Callable,
) -> None:
    eui = lpwa.eui[lpwa.env_id]
    port, data = encode_frame(DeviceKind.ENV_SENSOR, Channel.TELEMETRY, {"co2_ppm": 500.0})
    topic = m.chirpstack_topic(lpwa.app, eui)
    join = copy.deepcopy(m.CHIRPSTACK_JOIN_EXAMPLE)
    join["deviceInfo"].update(applicationId=lpwa.app, devEui=eui)
    join["time"] = _now(10)
    lpwa_worker()
    publish(mqtt_url, [(topic, m.chirpstack_up(lpwa.app, eui, n, port, data, _now(n - 500))) for n in (500, 501, 503)])
    publish(mqtt_url, [(m.chirpstack_topic(lpwa.app, eui, "join"), orjson.dumps(join))])
    publish(mqtt_url, [(topic, m.chirpstack_up(lpwa.app, eui, n, port, data, _now(11 + n))) for n in (0, 2)])

    def loss() -> tuple | None:
        with psycopg.connect(database_url) as conn:
            return conn.execute("SELECT sum(received), sum(lost), sum(counter_resets) FROM uplink_loss_hourly "
                                "WHERE device_id = %s HAVING sum(received) = 5", (lpwa.env_id,)).fetchone()
    assert wait_until(loss, 15, what="five frames") == (5, 2, 1)  # 502 and, after the join, 1
