"""Kind cores through profiles. A model has its kind's core (a switch's relay state, a tracker's
position, an environment measurement): its profile must declare it. A frame is a reading when it
carries one of its kind's measurements: a switch frame with metering but not the relay's state is
stored (relay_on null), a tracker frame without a position is a no-fix report, and a frame with
none is an invalid_payload dead letter. A relay-only switch and a Cayenne LPP tracker with no
battery field are stored; the tracker's altitude has its column."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import psycopg
import pytest

from devices.codecs import cayenne_lpp
from devices.profiles import ProfileDefinition
from store import profiles
from tests.lpwa import messages as m
from tests.lpwa.conftest import LpwaPilot, profile_definition, use_profile
from tests.lpwa.test_profiles_decoding import _now, _stored
from tests.support import publish, wait_until


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


# --- a frame with some of its kind's measurements ---------------------------------------------------

METERED_SWITCH = {"3": {"codec": {"type": "network_server_object"}, "mapping": [
    {"from": "relay", "to": "relay_on", "values": {"ON": True, "OFF": False}},
    {"from": "power", "to": "power_w"}, {"from": "energy_kwh", "to": "energy_wh", "unit": "kWh->Wh"}]}}


def _publish_objects(mqtt_url: str, lpwa: LpwaPilot, device_id: str, objects: dict[int, dict[str, Any]]) -> None:
    """Each object as the ChirpStack-decoded object of a frame on fPort 3 with that frame counter."""
    eui = lpwa.eui[device_id]
    publish(mqtt_url, [(m.chirpstack_topic(lpwa.app, eui), m.chirpstack_up(lpwa.app, eui, fcnt, 3, b"\x00", _now(),
                                                                            object=decoded))
                       for fcnt, decoded in objects.items()])


def _dead_letter(database_url: str, lpwa: LpwaPilot, device_id: str, fcnt: int) -> tuple[str, str]:
    """(reason, detail) of the device's ChirpStack frame `fcnt`, once dead-lettered."""
    def probe() -> tuple[str, str] | None:
        with psycopg.connect(database_url) as conn:
            for payload, reason, detail in conn.execute(
                    "SELECT payload, reason, detail FROM dead_letter WHERE topic = %s",
                    (m.chirpstack_topic(lpwa.app, lpwa.eui[device_id]),)):
                if orjson.loads(payload)["fCnt"] == fcnt:
                    return reason, detail
        return None
    return wait_until(probe, 15, what=f"dead letter of frame {fcnt}")


def _switch_metering_without_relay_state(database_url: str, mqtt_url: str, lpwa: LpwaPilot,
                                         lpwa_worker: Callable) -> None:
    use_profile(database_url, lpwa.switch_id, f"{lpwa.app}-metered",
                profile_definition("smart_switch", ["relay_on", "power_w", "energy_wh"], METERED_SWITCH))
    lpwa_worker()
    _publish_objects(mqtt_url, lpwa, lpwa.switch_id, {80: {"power": 41.5, "voltage": 229.1}, 81: {"energy_kwh": 1.25},
                                                      82: {"voltage": 229.1}, 83: {"relay": "OFF"}})
    powered, metered, switched = (_stored(database_url, lpwa.switch_id, seq) for seq in (80, 81, 83))
    assert (powered["relay_on"], powered["power_w"], powered["energy_wh"]) == (None, 41.5, None)
    assert (powered["trigger"], powered["extra"], powered["profile_version"]) == ("heartbeat", {"voltage": 229.1}, 1)
    assert (metered["relay_on"], metered["power_w"], metered["energy_wh"]) == (None, None, 1250.0)
    assert (switched["relay_on"], switched["power_w"], switched["energy_wh"]) == (False, None, None)
    reason, detail = _dead_letter(database_url, lpwa, lpwa.switch_id, 82)
    assert reason == "invalid_payload" and "relay_on, power_w or energy_wh" in detail, detail


def test_a_switch_frame_with_metering_but_not_the_relay_state_is_a_reading_and_one_with_neither_is_refused(
    database_url: str, mqtt_url: str, lpwa: LpwaPilot, lpwa_worker: Callable,
) -> None:
    _switch_metering_without_relay_state(database_url, mqtt_url, lpwa, lpwa_worker)


@pytest.mark.timescaledb
def test_a_switch_reading_without_the_relay_state_is_stored_on_timescaledb_too(
    database_url: str, mqtt_url: str, lpwa: LpwaPilot, lpwa_worker: Callable,
) -> None:
    _switch_metering_without_relay_state(database_url, mqtt_url, lpwa, lpwa_worker)


def test_through_a_profile_a_tracker_frame_without_a_position_is_a_no_fix_report(
    database_url: str, mqtt_url: str, lpwa: LpwaPilot, lpwa_worker: Callable,
) -> None:
    use_profile(database_url, lpwa.tracker_id, f"{lpwa.app}-trk", profile_definition(
        "location_tracker", ["lat", "lon", "battery_pct"], {"3": {"codec": {"type": "network_server_object"}, "mapping": [
            {"from": "gps.lat", "to": "lat"}, {"from": "gps.lon", "to": "lon"}, {"from": "battery", "to": "battery_pct"}]}}))
    lpwa_worker()
    _publish_objects(mqtt_url, lpwa, lpwa.tracker_id, {90: {"battery": 80}, 91: {"searching": True}})
    battery_only, nothing_mapped = (_stored(database_url, lpwa.tracker_id, seq) for seq in (90, 91))
    assert (battery_only["fix_type"], battery_only["lat"], battery_only["battery_pct"]) == ("none", None, 80)
    assert (nothing_mapped["fix_type"], nothing_mapped["lat"], nothing_mapped["extra"]) == ("none", None, {"searching": True})


def test_through_a_profile_an_environment_frame_needs_an_environment_measurement(
    database_url: str, mqtt_url: str, lpwa: LpwaPilot, lpwa_worker: Callable,
) -> None:
    use_profile(database_url, lpwa.env_id, f"{lpwa.app}-env", profile_definition(
        "env_sensor", ["temperature_c", "battery_pct"], {"3": {"codec": {"type": "network_server_object"}, "mapping": [
            {"from": "t", "to": "temperature_c"}, {"from": "battery", "to": "battery_pct"}]}}))
    lpwa_worker()
    _publish_objects(mqtt_url, lpwa, lpwa.env_id, {95: {"battery": 80}, 96: {"t": 21.5}})
    assert _stored(database_url, lpwa.env_id, 96)["temperature_c"] == 21.5
    reason, detail = _dead_letter(database_url, lpwa, lpwa.env_id, 95)
    assert reason == "invalid_payload" and "needs at least one measurement" in detail, detail
