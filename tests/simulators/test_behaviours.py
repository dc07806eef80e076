"""Simulated devices say only what the contract accepts, and behave like the things they play."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from statistics import mean

import orjson
import pytest

from devices.contract import decode_payload
from devices.kinds import Channel, DeviceKind
from simulators.device import SimulatedDevice, behaviour_for
from simulators.environment import EnvSensor
from simulators.firmware import Firmware, Reading
from simulators.switch import SmartSwitch
from simulators.tracker import ROUTES, LocationTracker

START = datetime(2024, 5, 6, tzinfo=UTC)  # a Monday


def run(behaviour: Firmware, hours: float, interval_s: float, start: datetime = START) -> list[Reading]:
    out: list[Reading] = []
    for i in range(int(hours * 3600 / interval_s)):
        out += behaviour.tick(start + timedelta(seconds=i * interval_s))
    return out


@pytest.mark.parametrize("kind", list(DeviceKind))
def test_every_payload_of_a_three_day_run_passes_the_contract_models(kind: DeviceKind) -> None:
    channels: Counter[Channel] = Counter()
    for seed in (1, 2, 3, 4):
        device = SimulatedDevice(f"dev-{kind}-{seed}", "p", kind, 60)
        for reading in run(behaviour_for(device, seed=seed), hours=72, interval_s=60):
            decode_payload(kind, reading.channel, orjson.dumps(reading.payload))  # raises if invalid
            channels[reading.channel] += 1
    assert channels[Channel.TELEMETRY] >= 4 * 72 * 60
    assert channels[Channel.STATUS] > 0
    assert channels[Channel.EVENT] > 0


@pytest.mark.parametrize("kind", list(DeviceKind))
def test_seq_numbers_are_consecutive_per_device_across_channels_and_ts_never_goes_back(kind: DeviceKind) -> None:
    readings = run(behaviour_for(SimulatedDevice("d", "p", kind, 30), seed=7), hours=24, interval_s=30)
    assert [r.payload["seq"] for r in readings] == list(range(len(readings)))
    stamps = [datetime.fromisoformat(r.payload["ts"]) for r in readings]
    assert stamps == sorted(stamps)
    assert len({r.channel for r in readings}) == 3


def test_the_same_seed_and_ticks_give_the_same_messages_and_another_seed_does_not() -> None:
    device = SimulatedDevice("same", "p", DeviceKind.LOCATION_TRACKER, 30)
    first = run(behaviour_for(device, seed=5), hours=2, interval_s=30)
    assert first == run(behaviour_for(device, seed=5), hours=2, interval_s=30)
    assert first != run(behaviour_for(device, seed=6), hours=2, interval_s=30)


def test_telemetry_only_devices_still_number_their_messages_consecutively() -> None:
    device = SimulatedDevice("t", "p", DeviceKind.SMART_SWITCH, 60)
    readings = run(behaviour_for(device, seed=1, channels={Channel.TELEMETRY}), hours=24, interval_s=60)
    assert {r.channel for r in readings} == {Channel.TELEMETRY}
    assert [r.payload["seq"] for r in readings] == list(range(len(readings)))


def test_the_switch_sends_heartbeats_and_toggles_with_realistic_triggers_and_its_energy_never_decreases() -> None:
    telemetry = [r.payload for s in range(5)
                 for r in run(SmartSwitch(f"sw-{s}", seed=s), hours=72, interval_s=60)
                 if r.channel is Channel.TELEMETRY]
    triggers = Counter(p["trigger"] for p in telemetry)
    assert triggers["heartbeat"] == 5 * 72 * 60
    assert triggers["schedule"] > 0 and triggers["button"] + triggers["app"] > 0
    for s in range(5):
        own = [p for r in run(SmartSwitch(f"sw-{s}", seed=s), hours=72, interval_s=60)
               if r.channel is Channel.TELEMETRY for p in [r.payload]]
        energy = [p["energy_wh"] for p in own]
        assert energy == sorted(energy)
        assert all((p["power_w"] > 0) == p["relay_on"] for p in own)
        assert any(p["relay_on"] for p in own) and energy[-1] > energy[0]


def test_the_switch_trips_on_overload_with_an_event_and_the_relay_off() -> None:
    events = []
    for s in range(20):
        readings = run(SmartSwitch(f"ov-{s}", seed=s), hours=72, interval_s=300)
        for i, r in enumerate(readings):
            if r.channel is Channel.EVENT and r.payload["event"] == "overload":
                events.append(r)
                after = readings[i + 1].payload
                assert after["trigger"] == "overload" and after["relay_on"] is False
    assert events


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_the_tracker_stays_near_its_route_and_loses_its_fix_now_and_then(route) -> None:  # type: ignore[no-untyped-def]
    tracker = LocationTracker("trk", seed=3, route=route)
    fixes = [r.payload for r in run(tracker, hours=24, interval_s=30) if r.channel is Channel.TELEMETRY]
    with_position = [p for p in fixes if p["fix_type"] != "none"]
    assert 0 < len(fixes) - len(with_position) < 0.2 * len(fixes)
    assert all("lat" not in p and "lon" not in p for p in fixes if p["fix_type"] == "none")
    for p in with_position:
        assert route.distance_from_route_m((p["lat"], p["lon"])) <= 3 * p["accuracy_m"] * 1.5
    close = [p for p in with_position if route.distance_from_route_m((p["lat"], p["lon"])) <= 30]
    assert len(close) >= 0.9 * len(with_position)


def test_the_tracker_moves_along_its_route_and_crosses_its_geofence() -> None:
    tracker = LocationTracker("walker", seed=1, route=ROUTES[0])
    readings = run(tracker, hours=6, interval_s=30)
    events = [r.payload["event"] for r in readings if r.channel is Channel.EVENT]
    assert "geofence_exit" in events and "geofence_enter" in events
    positions = {(r.payload["lat"], r.payload["lon"]) for r in readings
                 if r.channel is Channel.TELEMETRY and "lat" in r.payload}
    assert len(positions) > 100


def test_the_tracker_battery_drains_over_time_until_it_is_recharged() -> None:
    tracker = LocationTracker("bat", seed=2)
    battery = [r.payload["battery_pct"] for r in run(tracker, hours=12, interval_s=60)
               if r.channel is Channel.TELEMETRY]
    assert battery == sorted(battery, reverse=True)
    assert battery[0] - battery[-1] > 10
    long_run = run(LocationTracker("bat", seed=2), hours=120, interval_s=300)
    assert any(r.payload.get("event") == "charging" for r in long_run)
    assert any(r.payload.get("state") == "low_battery" for r in long_run if r.channel is Channel.STATUS)


def test_the_environment_sensor_is_warmer_at_14_00_than_at_04_00() -> None:
    for s in range(5):
        by_hour: dict[int, list[float]] = {}
        for r in run(EnvSensor(f"env-{s}", seed=s), hours=72, interval_s=600):
            ts = datetime.fromisoformat(r.payload["ts"])
            if r.channel is Channel.TELEMETRY and ts.minute < 10:
                by_hour.setdefault((ts + timedelta(seconds=1)).hour, []).append(r.payload["temperature_c"])
        assert mean(by_hour[14]) > mean(by_hour[4]) + 5


def test_the_environment_sensor_sees_rush_hour_pollution_on_weekdays() -> None:
    pm25: dict[int, list[float]] = {}
    for s in range(5):
        for r in run(EnvSensor(f"air-{s}", seed=s), hours=24 * 5, interval_s=300):  # Monday to Friday
            if r.channel is Channel.TELEMETRY:
                hour = (datetime.fromisoformat(r.payload["ts"]) + timedelta(seconds=1)).hour
                pm25.setdefault(hour, []).append(r.payload["pm25_ugm3"])
    assert mean(pm25[8]) > 1.5 * mean(pm25[3])
    assert mean(pm25[17]) > 1.5 * mean(pm25[3])
