"""LoRaWAN uplinks read through device profiles, published over the real broker as ChirpStack v4
and The Things Stack v3 messages: the codec is the profile's for the frame's fPort (Cayenne LPP
on any port, the network server's decoded object, a vendor's JavaScript codec), the mapping makes
the measurements, and each stored reading names the profile version that read it. A failing
JavaScript codec is a dead letter with its reason, and the next message is stored. (Real device
models with their vendors' codecs: test_vendor_models.py.)"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

import psycopg

from devices.codecs import cayenne_lpp
from devices.codecs.cayenne_lpp import LppValue
from tests.lpwa import messages as m
from tests.lpwa.conftest import LpwaPilot, profile_definition, stored_reading, use_profile
from tests.support import publish, wait_until

# Read under these names by tests/lpwa/test_profiles_kind_core.py and tests/ingest/test_profiles_*.py.
_now, _stored = m.recent_time, stored_reading


def test_cayenne_lpp_on_fport_1_and_a_gps_tracker_on_fport_2_are_read_through_their_profiles(
    database_url: str, mqtt_url: str, lpwa: LpwaPilot, lpwa_worker: Callable,
) -> None:
    # Without profiles, fPort 1 is pilotlab's layout and fPort 2 a status frame: both would be refused.
    use_profile(database_url, lpwa.env_id, f"{lpwa.app}-lpp-env",
                profile_definition("env_sensor", ["temperature_c", "humidity_pct", "battery_pct"],
                                   {"1": {"codec": {"type": "cayenne_lpp"}}}))
    use_profile(database_url, lpwa.tracker_id, f"{lpwa.app}-lpp-gps",
                profile_definition("location_tracker", ["lat", "lon", "battery_pct"],
                                   {"2": {"codec": {"type": "cayenne_lpp"}, "mapping": [
                                       {"from": "gps_1.latitude", "to": "lat"}, {"from": "gps_1.longitude", "to": "lon"},
                                       {"from": "analog_in_2", "to": "battery_pct", "unit": "ratio->%"}]}}))
    env = cayenne_lpp.encode([LppValue(1, "temperature", 21.5), LppValue(2, "humidity", 44.0),
                              LppValue(3, "percentage", 93)])
    gps = cayenne_lpp.encode([LppValue(1, "gps", (52.3702, 4.8952, 12.5)), LppValue(2, "analog_input", 0.87)])
    lpwa_worker()
    m.publish_both(mqtt_url, lpwa, lpwa.env_id, 10, 1, env)
    m.publish_both(mqtt_url, lpwa, lpwa.tracker_id, 20, 2, gps)
    for seq in (10, 11):
        row = stored_reading(database_url, lpwa.env_id, seq)
        assert (row["temperature_c"], row["humidity_pct"], row["battery_pct"]) == (21.5, 44.0, 93.0)
        assert (row["channel"], row["profile_version"], row["extra"]) == ("telemetry", 1, None)
    for seq in (20, 21):
        row = stored_reading(database_url, lpwa.tracker_id, seq)
        assert (row["lat"], row["lon"], row["fix_type"], row["battery_pct"]) == (52.3702, 4.8952, "3d", 87.0)
        assert row["profile_version"] == 1
        assert row["extra"] == {"gps_1": {"altitude": 12.5}}  # unmapped: kept with the reading


def test_the_network_servers_decoded_object_is_mapped_with_units_and_value_maps(
    database_url: str, mqtt_url: str, lpwa: LpwaPilot, lpwa_worker: Callable,
) -> None:
    use_profile(database_url, lpwa.switch_id, f"{lpwa.app}-ns-switch",
                profile_definition("smart_switch", ["relay_on", "power_w", "energy_wh"],
                                   {"5": {"codec": {"type": "network_server_object"}, "mapping": [
                                       {"from": "socket.state", "to": "relay_on", "values": {"ON": True, "OFF": False}},
                                       {"from": "power_kw", "to": "power_w", "unit": "kW->W"},
                                       {"from": "meter.energy_kwh", "to": "energy_wh", "unit": "kWh->Wh"}]}}))
    decoded = {"socket": {"state": "ON", "since": 1700000000}, "power_kw": 0.0415,
               "meter": {"energy_kwh": 12.8732}, "voltage": 229.1}
    lpwa_worker()
    m.publish_both(mqtt_url, lpwa, lpwa.switch_id, 30, 5, b"\x01", cs_extra={"object": decoded},
                    tts_extra={"decoded_payload": decoded})
    for seq in (30, 31):
        row = stored_reading(database_url, lpwa.switch_id, seq)
        assert (row["relay_on"], row["power_w"], row["energy_wh"]) == (True, 41.5, 12873.2)
        assert row["profile_version"] == 1
        assert row["extra"] == {"socket": {"since": 1700000000}, "voltage": 229.1}


HOSTILE = """
function decodeUplink(input) {
  if (input.bytes[0] === 1) { while (true) {} }
  if (input.bytes[0] === 2) { throw new Error("sensor frame " + input.bytes.length + " bytes: bad"); }
  if (input.bytes[0] === 3) { return {errors: ["unknown frame type 3"]}; }
  if (input.bytes[0] === 4) { var hoard = []; while (true) { hoard.push(new Array(100000).fill(7)); } }
  if (input.bytes[0] === 5) { return 42; }
  if (input.bytes[0] === 6) { return {data: {t: sensorTable[input.bytes[1]]}}; }
  return {data: {t: input.bytes[1]}};
}
"""
NO_ENTRY_POINT = "function decode(bytes) { return {t: bytes[0]}; }"


def test_hostile_codecs_are_dead_letters_with_their_reasons_within_the_limit_and_the_next_message_is_stored(
    database_url: str, mqtt_url: str, lpwa: LpwaPilot, lpwa_worker: Callable,
) -> None:
    use_profile(database_url, lpwa.env_id, f"{lpwa.app}-hostile",
                profile_definition("env_sensor", ["temperature_c"], {
                    "7": {"codec": {"type": "javascript", "script": HOSTILE}, "mapping": [{"from": "t", "to": "temperature_c"}]},
                    "8": {"codec": {"type": "javascript", "script": NO_ENTRY_POINT},
                          "mapping": [{"from": "t", "to": "temperature_c"}]}}))
    eui = lpwa.eui[lpwa.env_id]
    topic = m.chirpstack_topic(lpwa.app, eui)
    lpwa_worker(js_codec_time_limit_ms=200)
    started = time.monotonic()
    hostile = [(50, 7, b"\x01"), (51, 7, b"\x02\x00"), (52, 7, b"\x03"), (53, 7, b"\x04"), (54, 7, b"\x05"),
               (55, 7, b"\x06\x01"), (56, 8, b"\x01")]
    publish(mqtt_url, [(topic, m.chirpstack_up(lpwa.app, eui, fcnt, port, data, m.recent_time(fcnt - 50)))
                       for fcnt, port, data in [*hostile, (57, 7, b"\x00\x15")]])
    row = stored_reading(database_url, lpwa.env_id, 57)
    assert (row["temperature_c"], row["profile_version"]) == (21.0, 1)
    assert time.monotonic() - started < 10

    def all_dead() -> dict[str, str] | None:
        with psycopg.connect(database_url) as conn:
            found = conn.execute("SELECT reason, detail FROM dead_letter WHERE topic = %s", (topic,)).fetchall()
        return {reason: detail for reason, detail in found} if len(found) == len(hostile) else None
    letters = wait_until(all_dead, 10, what="a dead letter per hostile frame")
    assert set(letters) == {"codec_timeout", "codec_threw", "codec_errors", "codec_memory", "codec_bad_result",
                            "codec_missing_entry_point"} and len(letters) == len(hostile) - 1  # two throw
    assert "time limit" in letters["codec_timeout"] and "fPort 7" in letters["codec_timeout"]
    assert "unknown frame type 3" in letters["codec_errors"]
    assert "heap limit" in letters["codec_memory"] and "returned number" in letters["codec_bad_result"]
    assert "fPort 8" in letters["codec_missing_entry_point"]  # its own codec, not port 7's of the same profile
    with psycopg.connect(database_url) as conn:
        threw = [d for (d,) in conn.execute("SELECT detail FROM dead_letter WHERE topic = %s AND reason = 'codec_threw' "
                                            "ORDER BY detail", (topic,))]
        assert len(threw) == 2 and "sensor frame 2 bytes: bad" in threw[0] and "ReferenceError" in threw[1]
        assert conn.execute("SELECT count(*) FROM telemetry WHERE device_id = %s AND seq BETWEEN 50 AND 56",
                            (lpwa.env_id,)).fetchone() == (0,)


RECV_TIME = """
function decodeUplink(input) {
  return {data: {minute: input.recvTime instanceof Date ? input.recvTime.getUTCMinutes() : -1, t: input.bytes[0]}};
}
"""


def test_a_javascript_codec_gets_the_uplinks_network_server_time_as_recv_time(
    database_url: str, mqtt_url: str, lpwa: LpwaPilot, lpwa_worker: Callable,
) -> None:
    use_profile(database_url, lpwa.env_id, f"{lpwa.app}-recv",
                profile_definition("env_sensor", ["temperature_c"], {"9": {
                    "codec": {"type": "javascript", "script": RECV_TIME}, "mapping": [{"from": "t", "to": "temperature_c"}]}}))
    eui = lpwa.eui[lpwa.env_id]
    sent = m.recent_time()
    lpwa_worker()
    publish(mqtt_url, [(m.chirpstack_topic(lpwa.app, eui), m.chirpstack_up(lpwa.app, eui, 80, 9, b"\x14", sent))])
    row = stored_reading(database_url, lpwa.env_id, 80)
    assert (row["temperature_c"], row["extra"]) == (20.0, {"minute": datetime.fromisoformat(sent).minute})
