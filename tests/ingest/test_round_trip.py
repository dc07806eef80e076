"""A valid message of every kind and channel comes out of the database as it went in."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from devices.contract import topic_for
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
