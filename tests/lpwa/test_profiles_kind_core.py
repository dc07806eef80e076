"""A relay-only LoRaWAN switch (no metering) is stored through its profile: the kind's minimal
core is the relay state."""

from __future__ import annotations

from collections.abc import Callable

import psycopg

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
