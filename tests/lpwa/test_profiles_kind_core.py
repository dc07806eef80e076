"""Kind cores through profiles: a relay-only LoRaWAN switch (no metering) and a Cayenne LPP tracker
with no battery field are stored; the tracker's altitude has its column."""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from devices.codecs import cayenne_lpp
from devices.profiles import ProfileDefinition
from store import profiles
from tests.lpwa import messages as m
from tests.lpwa.conftest import LpwaPilot
from tests.lpwa.test_profiles_decoding import _now, _stored
from tests.support import publish


def test_a_relay_only_lorawan_switch_is_stored_through_its_profile(
    database_url: str, mqtt_url: str, lpwa: LpwaPilot, lpwa_worker: Callable,
) -> None:
    definition = {"vendor": "Test", "model": "relay-only", "firmware_version": "1", "kind": "smart_switch",
                  "reporting_interval_s": 600, "measurements": ["relay_on"],
                  "uplinks": {"3": {"codec": {"type": "network_server_object"}, "mapping": [
                      {"from": "relay", "to": "relay_on", "values": {"open": False, "close": True}}]}}}
    with psycopg.connect(database_url) as conn:
        profiles.create(conn, f"{lpwa.app}-relay", None, ProfileDefinition.model_validate(definition))
        profiles.assign(conn, lpwa.switch_id, f"{lpwa.app}-relay")
    eui = lpwa.eui[lpwa.switch_id]
    lpwa_worker()
    publish(mqtt_url, [(m.chirpstack_topic(lpwa.app, eui),
                        m.chirpstack_up(lpwa.app, eui, 60, 3, b"\x01", _now(), object={"relay": "close"}))])
    row = _stored(database_url, lpwa.switch_id, 60)
    assert (row["relay_on"], row["power_w"], row["energy_wh"], row["profile_version"]) == (True, None, None, 1)


def test_a_cayenne_lpp_tracker_without_a_mapping_keeps_its_altitude_and_needs_no_battery(
    database_url: str, mqtt_url: str, lpwa: LpwaPilot, lpwa_worker: Callable,
) -> None:
    definition = {"vendor": "Test", "model": "lpp-gps", "firmware_version": "1", "kind": "location_tracker",
                  "reporting_interval_s": 600, "measurements": ["lat", "lon", "altitude_m"],
                  "uplinks": {"4": {"codec": {"type": "cayenne_lpp"}}}}
    with psycopg.connect(database_url) as conn:
        profiles.create(conn, f"{lpwa.app}-gps", None, ProfileDefinition.model_validate(definition))
        profiles.assign(conn, lpwa.tracker_id, f"{lpwa.app}-gps")
    eui = lpwa.eui[lpwa.tracker_id]
    data = cayenne_lpp.encode([cayenne_lpp.LppValue(3, "gps", (52.3702, 4.8952, 12.5)),
                               cayenne_lpp.LppValue(4, "barometer", 1013.2)])
    lpwa_worker()
    publish(mqtt_url, [(m.chirpstack_topic(lpwa.app, eui), m.chirpstack_up(lpwa.app, eui, 70, 4, data, _now()))])
    row = _stored(database_url, lpwa.tracker_id, 70)
    assert (row["lat"], row["lon"], row["altitude_m"], row["fix_type"]) == (52.3702, 4.8952, 12.5, "3d")
    assert (row["battery_pct"], row["extra"]) == (None, {"barometer_4": 1013.2})
