"""Readings that arrive days late reach every aggregate read by dashboards, the API and scoring:
telemetry_hourly, on TimescaleDB through its refresh policy (late rows fall below the aggregate's
materialised range, some into compressed chunks), on plain PostgreSQL because the view reads the
raw rows; and scoring's per-day summaries. Each must equal the raw data."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest

from scoring.metrics import device_metrics, raw_device_metrics
from scoring.rubric import load_rubric
from scoring.window import load_pilot, pilot_window
from tests.ingest.conftest import ThreadWorker
from tests.scoring.conftest import ENV_OK, PilotBuilder
from tests.store.filling import Row, compress_old_chunks, hourly_expected, refresh_hourly
from tests.support import count_rows, publish, register_pilot, wait_until


def _aggregate(url: str, device_id: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT device_id, bucket, messages, readings, mean_temperature_c FROM telemetry_hourly "
                            "WHERE device_id = %s ORDER BY bucket", (device_id,)).fetchall()


def test_readings_days_late_reach_the_hourly_aggregate(database_url: str, mqtt_url: str, database_server: str,
                                                       thread_worker: Callable[..., ThreadWorker],
                                                       unique_id: Callable[[str], str]) -> None:
    pilot = register_pilot(database_url, unique_id("late"))
    device = pilot.env_id
    with psycopg.connect(database_url) as conn:  # in service for the whole month
        conn.execute("UPDATE device SET commissioned_at = now() - interval '30 days' WHERE id = %s", (device,))
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    ten_days, five_days = hour - timedelta(days=10), hour - timedelta(days=5)
    on_time = [(ten_days + timedelta(minutes=10 * k), 20.0 + k) for k in range(3)] + \
              [(five_days + timedelta(minutes=10 * k), 10.0 + k) for k in range(3)] + \
              [(hour - timedelta(hours=2, minutes=-10 * k), 15.0) for k in range(3)]
    late = [(ten_days + timedelta(minutes=35), 40.0), (five_days + timedelta(minutes=45), 30.0)]
    sent: list[Row] = []

    def send(readings: list[tuple[datetime, float]]) -> None:
        messages = []
        for at, temperature in readings:
            seq = len(sent)
            sent.append((device, seq, at, "telemetry", temperature))
            messages.append((f"pilotlab/v1/{pilot.pilot_id}/{device}/telemetry",
                             orjson.dumps({"ts": at.isoformat(), "seq": seq, "temperature_c": temperature})))
        publish(mqtt_url, messages)
        wait_until(lambda: count_rows(database_url, "SELECT count(*) FROM telemetry WHERE device_id = %s",
                                      (device,)) == len(sent), timeout_s=20, what="the readings stored")

    thread_worker()
    send(on_time)
    refresh_hourly(database_url)  # the aggregate materialised...
    if database_server == "timescaledb":
        with psycopg.connect(database_url, autocommit=True) as conn:
            compress_old_chunks(conn)  # ...and the chunk of 10 days ago compressed
            assert conn.execute("SELECT bool_and(is_compressed) FROM timescaledb_information.chunks "
                                "WHERE hypertable_name = 'telemetry' AND range_start <= %s AND range_end > %s",
                                (ten_days, ten_days)).fetchone() == (True,)
    assert _aggregate(database_url, device) == hourly_expected(sent)

    send(late)  # a backlog: 10 days late (into the compressed chunk) and 5 days late
    refresh_hourly(database_url)
    assert _aggregate(database_url, device) == hourly_expected(sent)


@pytest.mark.timescaledb
def test_the_scheduled_refresh_brings_a_late_reading_into_the_aggregate(database_url: str,
                                                                        unique_id: Callable[[str], str]) -> None:
    """Through TimescaleDB's own scheduler, not a CALL: on PostgreSQL 15.20 the run is logged as
    failed ("cannot drop portal"), and the reading must reach the aggregate all the same."""
    pilot = register_pilot(database_url, unique_id("sched"))
    at = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=4)
    rows: list[Row] = [(pilot.env_id, 0, at, "telemetry", 21.0)]
    with psycopg.connect(database_url, autocommit=True) as conn:
        refresh_hourly(database_url)  # the aggregate is materialised past the late reading's hour
        conn.execute("INSERT INTO telemetry (device_id, seq, device_time, ingest_time, channel, size_bytes, "
                     "temperature_c) VALUES (%s, 0, %s, now(), 'telemetry', 40, 21.0)", (pilot.env_id, at))
        job, runs = conn.execute(
            "SELECT j.job_id, coalesce(s.total_runs, 0) FROM timescaledb_information.jobs j "
            "LEFT JOIN timescaledb_information.job_stats s USING (job_id) "
            "WHERE j.hypertable_name = 'telemetry_hourly'").fetchone()
        conn.execute("SELECT alter_job(%s, next_start => now())", (job,))
        wait_until(lambda: conn.execute("SELECT total_runs > %s AND last_run_status IS NOT NULL "
                                        "FROM timescaledb_information.job_stats WHERE job_id = %s",
                                        (runs, job)).fetchone() == (True,),
                   timeout_s=60, what="the scheduler to run the refresh policy")
    assert _aggregate(database_url, pilot.env_id) == hourly_expected(rows)


def test_late_readings_in_a_compressed_chunk_reach_the_scoring_summaries(database_url: str, database_server: str,
                                                                        unique_id: Callable[[str], str]) -> None:
    """Scoring's per-day summaries (scoring_day, a table pilotlab maintains) find late rows by
    stored_at, which must hold for a row stored into a chunk TimescaleDB has compressed."""
    rubric = load_rubric().rubric
    firm, pilot_id = unique_id("firm"), unique_id("pilot")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO firm (id, name) VALUES (%s, 'Acme')", (firm,))
        conn.execute("INSERT INTO pilot (id, firm_id, name, site, starts_at, ends_at, status) "
                     "VALUES (%s, %s, 'Air', 'Old Town', '2024-01-01Z', NULL, 'running')", (pilot_id, firm))
        pilot = PilotBuilder(conn, pilot_id)
        env = pilot.device("env")
        pilot.series(env, "2024-01-01Z", 4 * 1440, 60, ENV_OK, skip="i BETWEEN 100 AND 159")  # an hour's gap on day 1
        as_of = datetime(2024, 1, 5, tzinfo=UTC)
        window = pilot_window(conn, load_pilot(conn, pilot_id), rubric, as_of)
        device_metrics(conn, rubric, window.scored, {})  # the days are summarised
        if database_server == "timescaledb":
            compress_old_chunks(conn)
            assert conn.execute("SELECT is_compressed FROM timescaledb_information.chunks WHERE hypertable_name = "
                                "'telemetry' AND range_start <= '2024-01-01T01:00Z' AND range_end > '2024-01-01T01:00Z'"
                                ).fetchone() == (True,)
        pilot.series(env, "2024-01-01T01:40Z", 60, 60, ENV_OK, first_seq=50_000)  # the gap, stored late
        summed = device_metrics(conn, rubric, window.scored, {})
        raw = raw_device_metrics(conn, rubric, window.scored, {})
    assert [(m.device_id, m.valid, m.readings) for m in summed] == [(m.device_id, m.valid, m.readings) for m in raw]
    assert {m.device_id: m.readings for m in summed}[env] == 4 * 1440
