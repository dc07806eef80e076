"""A native (Wi-Fi) device keeps its firmware: its profile maps its own JSON shape on a channel
(ts and seq included) and the reading is stored with the profile version and what was not mapped;
a channel its profile does not map still takes contract v1 payloads."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import psycopg

from devices.contract import topic_for
from devices.profiles import ProfileDefinition
from store import profiles
from tests.ingest import payloads
from tests.lpwa.test_profiles_decoding import _stored
from tests.support import RegisteredPilot, publish, wait_until


def test_a_native_devices_own_json_is_stored_through_its_profile(
    database_url: str, mqtt_url: str, pilot: RegisteredPilot, thread_worker: Callable, unique_id: Callable[[str], str],
) -> None:
    definition = {"vendor": "Test", "model": "wifi-plug", "firmware_version": "3", "kind": "smart_switch",
                  "reporting_interval_s": 60, "measurements": ["relay_on", "power_w"],
                  "native": {"telemetry": {"mapping": [
                      {"from": "time", "to": "ts"}, {"from": "counter", "to": "seq"},
                      {"from": "switch", "to": "relay_on", "values": {"on": True, "off": False}},
                      {"from": "sensor.watts", "to": "power_w"}]}}}
    profile_id = unique_id("native")
    with psycopg.connect(database_url) as conn:
        profiles.create(conn, profile_id, None, ProfileDefinition.model_validate(definition))
        profiles.assign(conn, pilot.switch_id, profile_id)
    own = {"time": payloads.now_ms(), "counter": 9, "switch": "on", "sensor": {"watts": 12.5, "volts": 229.0}}
    thread_worker()
    publish(mqtt_url, [(topic_for(pilot.pilot_id, pilot.switch_id, "telemetry"), orjson.dumps(own)),
                       (topic_for(pilot.pilot_id, pilot.switch_id, "status"),
                        payloads.encode(payloads.status(seq=10)))])
    row = _stored(database_url, pilot.switch_id, 9)
    assert (row["relay_on"], row["power_w"], row["energy_wh"]) == (True, 12.5, None)
    assert (row["profile_version"], row["extra"]) == (1, {"sensor": {"volts": 229.0}})
    status = wait_until(lambda: _stored(database_url, pilot.switch_id, 10), 10, what="the contract v1 status")
    assert (status["channel"], status["profile_version"]) == ("status", None)


def test_a_native_switch_frame_with_metering_but_not_the_relay_state_is_stored_through_its_profile(
    database_url: str, mqtt_url: str, pilot: RegisteredPilot, thread_worker: Callable, unique_id: Callable[[str], str],
) -> None:
    definition = {"vendor": "Test", "model": "wifi-meter", "firmware_version": "3", "kind": "smart_switch",
                  "reporting_interval_s": 60, "measurements": ["relay_on", "power_w"],
                  "native": {"telemetry": {"mapping": [
                      {"from": "time", "to": "ts"}, {"from": "counter", "to": "seq"},
                      {"from": "switch", "to": "relay_on", "values": {"on": True, "off": False}},
                      {"from": "watts", "to": "power_w"}]}}}
    profile_id = unique_id("native-meter")
    with psycopg.connect(database_url) as conn:
        profiles.create(conn, profile_id, None, ProfileDefinition.model_validate(definition))
        profiles.assign(conn, pilot.switch_id, profile_id)
    thread_worker()
    publish(mqtt_url, [(topic_for(pilot.pilot_id, pilot.switch_id, "telemetry"),
                        orjson.dumps({"time": payloads.now_ms(), "counter": 11, "watts": 7.5}))])
    row = _stored(database_url, pilot.switch_id, 11)
    assert (row["relay_on"], row["power_w"], row["profile_version"]) == (None, 7.5, 1)
