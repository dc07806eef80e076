"""Kind models with a minimal core: a switch needs its relay state, a tracker a position or a
no-fix report; metering and a battery gauge are optional. Over the real broker: a relay-only
switch and a battery-less tracker are stored (contract v1, and LoRaWAN through a profile). A device
model's profile must declare its kind's core (what a frame read through it carries:
tests/lpwa/test_profiles_kind_core.py)."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from pydantic import ValidationError

from devices.contract import topic_for
from devices.profiles import ProfileDefinition
from tests.ingest import payloads
from tests.lpwa.test_profiles_decoding import _stored
from tests.support import RegisteredPilot, publish, wait_until


def _payload_without(payload: dict, *names: str) -> dict:
    return {k: v for k, v in payload.items() if k not in names}


def test_a_relay_only_switch_and_a_battery_less_tracker_are_stored_from_contract_v1(
    database_url: str, mqtt_url: str, pilot: RegisteredPilot, thread_worker: Callable,
) -> None:
    switch = _payload_without(payloads.switch(seq=3), "power_w", "energy_wh")
    no_fix = {k: v for k, v in payloads.tracker(seq=4).items() if k in ("ts", "seq")} | {"fix_type": "none"}
    fix = _payload_without(payloads.tracker(seq=5), "battery_pct")
    thread_worker()
    publish(mqtt_url, [(topic_for(pilot.pilot_id, pilot.switch_id, "telemetry"), payloads.encode(switch)),
                       (topic_for(pilot.pilot_id, pilot.tracker_id, "telemetry"), payloads.encode(no_fix)),
                       (topic_for(pilot.pilot_id, pilot.tracker_id, "telemetry"), payloads.encode(fix))])
    row = _stored(database_url, pilot.switch_id, 3)
    assert (row["relay_on"], row["power_w"], row["energy_wh"]) == (switch["relay_on"], None, None)
    row = _stored(database_url, pilot.tracker_id, 4)
    assert (row["fix_type"], row["lat"], row["battery_pct"]) == ("none", None, None)
    row = _stored(database_url, pilot.tracker_id, 5)
    assert (row["fix_type"], row["lat"], row["battery_pct"]) == ("3d", fix["lat"], None)


def test_contract_v1_still_requires_a_switchs_relay_state(
    database_url: str, mqtt_url: str, pilot: RegisteredPilot, thread_worker: Callable,
) -> None:
    topic = topic_for(pilot.pilot_id, pilot.switch_id, "telemetry")
    thread_worker()
    publish(mqtt_url, [(topic, payloads.encode(_payload_without(payloads.switch(seq=7), "relay_on")))])
    reason, detail = wait_until(lambda: _dead_letter(database_url, topic), 10, what="the dead letter")
    assert reason == "invalid_payload" and detail.startswith("relay_on: "), detail


def _dead_letter(database_url: str, topic: str) -> tuple[str, str] | None:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT reason, detail FROM dead_letter WHERE topic = %s", (topic,)).fetchone()


def test_a_trackers_altitude_is_stored(database_url: str, mqtt_url: str, pilot: RegisteredPilot,
                                       thread_worker: Callable) -> None:
    fix = payloads.tracker(seq=6) | {"altitude_m": 312.5}
    thread_worker()
    publish(mqtt_url, [(topic_for(pilot.pilot_id, pilot.tracker_id, "telemetry"), payloads.encode(fix))])
    row = _stored(database_url, pilot.tracker_id, 6)
    assert (row["lat"], row["lon"], row["altitude_m"]) == (fix["lat"], fix["lon"], 312.5)


CORES = [
    ("smart_switch", ["power_w", "energy_wh"], "a smart_switch profile must declare relay_on"),
    ("location_tracker", ["lat", "battery_pct"], "a location_tracker profile must declare lat and lon"),
    ("env_sensor", ["battery_pct"], "an env_sensor profile must declare one of"),
]


@pytest.mark.parametrize(("kind", "declared", "says"), CORES, ids=[kind for kind, _, _ in CORES])
def test_a_models_core_is_its_profiles_a_profile_without_it_is_refused_in_one_line(
        kind: str, declared: list[str], says: str) -> None:
    definition = {"vendor": "Test", "model": "coreless", "firmware_version": "1", "kind": kind,
                  "reporting_interval_s": 600, "measurements": declared}
    with pytest.raises(ValidationError) as refused:
        ProfileDefinition.model_validate(definition)
    message = refused.value.errors()[0]["msg"]
    assert says in message and "\n" not in message
