"""Readings a device sent during a conformance run before its pilot started stay out of the pilot's
score: a device's scoring window starts at the pilot's start (or its commissioning + burn-in).
Scoring places a reading by its device time, so the pilot here starts 3 minutes after the run: the
drifting-clock device's readings are up to ~2.5 minutes ahead of pilotlab's clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from scoring.rubric import load_rubric
from scoring.window import load_pilot, pilot_window
from tests.conformance.conftest import RunOutcome


def test_readings_of_a_run_before_the_pilot_starts_are_outside_every_devices_scoring_window(
        conformance_run: RunOutcome) -> None:
    rubric = load_rubric().rubric
    with psycopg.connect(conformance_run.database_url, autocommit=True) as conn:
        last_run_reading = conn.execute(
            "SELECT max(ingest_time), max(device_time), count(*) FROM telemetry WHERE device_id = ANY(%s)",
            (list(conformance_run.device.values()),)).fetchone()
        assert last_run_reading is not None and last_run_reading[2] > 0
        starts = datetime.now(UTC) + timedelta(minutes=3)  # the pilot starts after the run
        conn.execute("UPDATE pilot SET starts_at = %s, status = 'running' WHERE id = %s", (starts, conformance_run.pilot_id))
        window = pilot_window(conn, load_pilot(conn, conformance_run.pilot_id), rubric, starts + timedelta(minutes=1))
    assert {d.device.id for d in window.scored} == set(conformance_run.device.values())
    for device in window.scored:
        assert device.start >= starts > max(last_run_reading[0], last_run_reading[1])
