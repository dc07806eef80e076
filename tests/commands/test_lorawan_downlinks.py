"""LoRaWAN switches get their commands as downlinks on ChirpStack v4's and The Things Stack v3's
documented MQTT topics, in their documented JSON, and are acknowledged by their next uplink."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from api.app import create_app
from devices.codecs import smart_switch
from pilotlab.settings import NetworkServerSource, Settings
from tests.commands.conftest import Listener, settled
from tests.lpwa.conftest import LpwaPilot, use_profile
from tests.lpwa.messages import chirpstack_topic, chirpstack_up, tts_topic, tts_up
from tests.support import admin_headers, publish, wait_until

SWITCH_PROFILE: dict[str, Any] = {
    "vendor": "Acme", "model": "Relay L1", "firmware_version": "1.0", "kind": "smart_switch",
    "reporting_interval_s": 600, "measurements": ["relay_on", "power_w", "energy_wh"],
    "uplinks": {"1": {"codec": {"type": "pilotlab", "layout": "smart_switch"}}},
    "downlink": {"f_port": 8, "relay_on": "080100FF", "relay_off": "080000FF", "confirmed": True},
}


def frame(relay_on: bool) -> bytes:
    return smart_switch.encode({"relay_on": relay_on, "power_w": 0.0, "energy_wh": 12.5, "trigger": "remote"})


def now() -> str:
    return datetime.now(UTC).isoformat()


def test_downlinks_go_out_on_the_network_servers_topics_and_the_next_uplink_with_the_state_acknowledges(
        database_url: str, mqtt_url: str, lpwa: LpwaPilot, lpwa_sources: list[NetworkServerSource],
        lpwa_worker: Callable[..., object]) -> None:
    tts_switch = lpwa.switch_id.removesuffix("-sw") + "-tsw"  # registered under its The Things Stack device id
    tts_eui = secrets.token_hex(8)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, dev_eui) "
                     "VALUES (%s, %s, 'smart_switch', 'lpwa', 600, %s)", (tts_switch, lpwa.pilot_id, tts_eui))
        for network_server, application in (("chirpstack", lpwa.app), ("tts", f"{lpwa.app}@ttn")):
            conn.execute("INSERT INTO network_server_application (network_server, application_id, pilot_id) "
                         "VALUES (%s, %s, %s)", (network_server, application, lpwa.pilot_id))
    use_profile(database_url, tts_switch, f"{tts_switch}-model", SWITCH_PROFILE)
    lpwa_worker()
    cs_eui = lpwa.eui[lpwa.switch_id]
    publish(mqtt_url, [(chirpstack_topic(lpwa.app, cs_eui), chirpstack_up(lpwa.app, cs_eui, 1, 1, frame(False), now()))])
    publish(mqtt_url, [(tts_topic(lpwa.app, tts_switch), tts_up(tts_eui, tts_switch, 1, 1, frame(False), now()))], qos=0)
    with psycopg.connect(database_url) as conn:
        wait_until(lambda: conn.execute("SELECT count(DISTINCT device_id) FROM uplink_frame WHERE device_id = ANY(%s)",
                                        ([lpwa.switch_id, tts_switch],)).fetchone() == (2,), 10, what="both uplinks")

    listener = Listener(mqtt_url, f"application/{lpwa.app}/device/+/command/down", f"v3/{lpwa.app}@ttn/devices/+/down/push")
    settings = Settings(database_url=database_url, mqtt_url=mqtt_url, lpwa_sources=lpwa_sources)
    try:
        with TestClient(create_app(settings), headers=admin_headers(database_url)) as api:
            to_chirpstack = api.post(f"/devices/{lpwa.switch_id}/commands", json={"relay_on": True, "expiry_s": 30}).json()
            to_tts = api.post(f"/devices/{tts_switch}/commands", json={"relay_on": False, "expiry_s": 30}).json()
            received = dict(listener.wait_for(2))
            # ChirpStack by DevEUI, pilotlab's layout (fPort 3: version 1, set relay, on); `id` is the queue item's
            assert (to_chirpstack["transport"], to_chirpstack["state"]) == ("chirpstack", "sent")
            assert received[f"application/{lpwa.app}/device/{cs_eui}/command/down"] == {
                "id": to_chirpstack["id"], "devEui": cs_eui, "confirmed": False, "fPort": 3, "data": "AQEB"}
            # The Things Stack by device id, the frame its profile declares (08 00 00 FF: off), confirmed
            assert to_tts["transport"] == "tts"
            assert received[f"v3/{lpwa.app}@ttn/devices/{tts_switch}/down/push"] == {"downlinks": [{
                "f_port": 8, "frm_payload": "CAAA/w==", "priority": "HIGH", "confirmed": True,
                "correlation_ids": [f"pilotlab:command:{to_tts['id']}"]}]}

            # the switch acted on its next receive window and says so in its next uplink
            publish(mqtt_url, [(chirpstack_topic(lpwa.app, cs_eui),
                                chirpstack_up(lpwa.app, cs_eui, 2, 1, frame(True), now()))])
            acknowledged = settled(api, to_chirpstack["id"])
            assert (acknowledged["state"], acknowledged["ack_via"], acknowledged["reported_relay_on"]) == (
                "acknowledged", "report", True)
            assert api.get(f"/commands/{to_tts['id']}").json()["state"] == "sent"  # no uplink of it since
    finally:
        listener.close()
