"""A valid message of every kind and channel comes out of the database as it went in, physically
impossible values included: judging them is quality control's work, in scoring."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import psycopg
import pytest

from devices.contract import topic_for
from devices.profiles import ProfileDefinition
from store import profiles
from tests.ingest import payloads
from tests.support import RegisteredPilot, publish, wait_until


def _stored(database_url: str, device_id: str, seq: int) -> dict | None:
    with psycopg.connect(database_url) as conn:
        cur = conn.execute("SELECT * FROM telemetry WHERE device_id = %s AND seq = %s", (device_id, seq))
        row = cur.fetchone()
        return dict(zip([c.name for c in cur.description], row, strict=True)) if row else None


@pytest.mark.parametrize(
    ("device", "make", "expected"),
    [
        ("switch_id", payloads.switch, {"relay_on": True, "power_w": 41.5, "energy_wh": 1200.0, "trigger": "button"}),
        ("tracker_id", payloads.tracker, {"lat": 37.5665, "lon": 126.978, "accuracy_m": 4.0, "speed_mps": 1.4,
                                          "fix_type": "3d", "battery_pct": 87.0}),
        ("env_id", payloads.environment, {"temperature_c": 21.5, "humidity_pct": 44.0, "pm25_ugm3": 12.0,
                                          "pm10_ugm3": 20.0, "co2_ppm": 640.0, "noise_dba": 48.0,
                                          "battery_pct": 93.0}),
    ],
)
def test_telemetry_of_each_kind_is_stored_with_its_values_times_and_size(
    database_url: str, mqtt_url: str, pilot: RegisteredPilot, thread_worker: Callable,
    device: str, make: Callable, expected: dict,
) -> None:
    device_id = getattr(pilot, device)
    body = payloads.encode(make(seq=7))
    thread_worker()
    publish(mqtt_url, [(topic_for(pilot.pilot_id, device_id, "telemetry"), body)])

    row = wait_until(lambda: _stored(database_url, device_id, 7), 10, what="the reading")
    assert {key: row[key] for key in expected} == expected
    assert row["channel"] == "telemetry"
    assert row["size_bytes"] == len(body)
    assert row["ingest_time"] >= row["device_time"]


def test_device_time_keeps_milliseconds_and_ingest_time_follows_it(
    database_url: str, mqtt_url: str, pilot: RegisteredPilot, thread_worker: Callable,
) -> None:
    payload = payloads.switch(seq=1, ts=1_764_000_000_123)
    thread_worker()
    publish(mqtt_url, [(topic_for(pilot.pilot_id, pilot.switch_id, "telemetry"), payloads.encode(payload))])
    row = wait_until(lambda: _stored(database_url, pilot.switch_id, 1), 10, what="the reading")
    assert row["device_time"].timestamp() == pytest.approx(1_764_000_000.123)
    assert row["ingest_time"] > row["device_time"]


def test_status_and_event_messages_are_stored_on_their_channel(
    database_url: str, mqtt_url: str, pilot: RegisteredPilot, thread_worker: Callable,
) -> None:
    thread_worker()
    publish(mqtt_url, [
        (topic_for(pilot.pilot_id, pilot.tracker_id, "status"), payloads.encode(payloads.status(seq=10))),
        (topic_for(pilot.pilot_id, pilot.tracker_id, "event"), payloads.encode(payloads.event(seq=11))),
    ])
    status = wait_until(lambda: _stored(database_url, pilot.tracker_id, 10), 10, what="the status")
    event = wait_until(lambda: _stored(database_url, pilot.tracker_id, 11), 10, what="the event")
    assert (status["channel"], status["state"], status["rssi_dbm"], status["uptime_s"], status["firmware"]) == (
        "status", "online", -67.0, 3600, "1.4.2")
    assert (event["channel"], event["event"], event["detail"]) == ("event", "geofence_exit", {"zone": "park"})


def test_a_timestamp_may_be_rfc3339_with_an_offset(
    database_url: str, mqtt_url: str, pilot: RegisteredPilot, thread_worker: Callable,
) -> None:
    payload = payloads.environment(seq=3, ts="2026-11-25T18:30:00.250+09:00")
    thread_worker()
    publish(mqtt_url, [(topic_for(pilot.pilot_id, pilot.env_id, "telemetry"), payloads.encode(payload))])
    row = wait_until(lambda: _stored(database_url, pilot.env_id, 3), 10, what="the reading")
    assert row["device_time"].isoformat().startswith("2026-11-25T09:30:00.250")


# --- impossible values are stored for quality control to judge (issue 15) ----------------------

@pytest.mark.parametrize(
    ("device", "make", "impossible"),
    [
        ("env_id", payloads.environment, {"temperature_c": 150.0, "humidity_pct": 140.0, "pm25_ugm3": -3.0,
                                          "co2_ppm": 250_000.0, "noise_dba": 0.0, "battery_pct": 104.0}),
        ("switch_id", payloads.switch, {"power_w": -5.0, "energy_wh": -1.0}),
        ("tracker_id", payloads.tracker, {"speed_mps": 400.0, "accuracy_m": -2.0, "altitude_m": 90_000.0}),
    ],
)
def test_a_well_formed_reading_with_physically_impossible_values_is_stored_as_sent(
    database_url: str, mqtt_url: str, pilot: RegisteredPilot, thread_worker: Callable,
    device: str, make: Callable, impossible: dict,
) -> None:
    device_id = getattr(pilot, device)
    thread_worker()
    publish(mqtt_url, [(topic_for(pilot.pilot_id, device_id, "telemetry"), payloads.encode(make(seq=21, **impossible)))])
    row = wait_until(lambda: _stored(database_url, device_id, 21), 10, what="the impossible reading")
    assert {key: row[key] for key in impossible} == impossible


def test_a_status_with_an_impossible_signal_strength_is_stored_as_sent(
    database_url: str, mqtt_url: str, pilot: RegisteredPilot, thread_worker: Callable,
) -> None:
    thread_worker()
    publish(mqtt_url, [(topic_for(pilot.pilot_id, pilot.switch_id, "status"),
                        payloads.encode(payloads.status(seq=22, rssi_dbm=35.0, battery_pct=-1.0)))])
    row = wait_until(lambda: _stored(database_url, pilot.switch_id, 22), 10, what="the status")
    assert (row["rssi_dbm"], row["battery_pct"]) == (35.0, -1.0)


def test_a_frame_read_through_a_profile_with_an_impossible_value_is_stored_as_sent(
    database_url: str, mqtt_url: str, pilot: RegisteredPilot, thread_worker: Callable, unique_id: Callable[[str], str],
) -> None:
    definition = {"vendor": "Test", "model": "wifi-env", "firmware_version": "1", "kind": "env_sensor",
                  "reporting_interval_s": 60, "measurements": ["temperature_c", "humidity_pct"],
                  "native": {"telemetry": {"mapping": [
                      {"from": "time", "to": "ts"}, {"from": "n", "to": "seq"},
                      {"from": "t", "to": "temperature_c"}, {"from": "rh", "to": "humidity_pct"}]}}}
    profile_id = unique_id("native-env")
    with psycopg.connect(database_url) as conn:
        profiles.create(conn, profile_id, None, ProfileDefinition.model_validate(definition))
        profiles.assign(conn, pilot.env_id, profile_id)
    thread_worker()
    publish(mqtt_url, [(topic_for(pilot.pilot_id, pilot.env_id, "telemetry"),
                        orjson.dumps({"time": payloads.now_ms(), "n": 23, "t": 150.0, "rh": 140.0}))])
    row = wait_until(lambda: _stored(database_url, pilot.env_id, 23), 10, what="the profile's reading")
    assert (row["temperature_c"], row["humidity_pct"], row["profile_version"]) == (150.0, 140.0, 1)


@pytest.mark.parametrize(("device", "make", "refused"), [
    ("env_id", payloads.environment, {"temperature_c": 1.5e12}),  # past what storage and scoring can sum
    ("tracker_id", payloads.tracker, {"lat": 90.5}),  # a coordinate off the globe
    ("tracker_id", payloads.tracker, {"lon": -180.5}),
])
def test_a_value_past_the_storable_bound_or_a_coordinate_off_the_globe_is_refused_as_out_of_range(
    database_url: str, mqtt_url: str, pilot: RegisteredPilot, thread_worker: Callable,
    device: str, make: Callable, refused: dict,
) -> None:
    device_id = getattr(pilot, device)
    topic = topic_for(pilot.pilot_id, device_id, "telemetry")
    body = payloads.encode(make(seq=24, **refused))
    thread_worker()
    publish(mqtt_url, [(topic, body)])

    def reason() -> str | None:
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT reason FROM dead_letter WHERE topic = %s AND payload = %s", (topic, body)).fetchone()
        return row[0] if row else None

    assert wait_until(reason, 10, what="the dead letter") == "out_of_range"
    assert _stored(database_url, device_id, 24) is None
