"""Migrations build the same schema on plain PostgreSQL and TimescaleDB; queries written against
`telemetry` and `telemetry_hourly` work on both."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from store.migrate import migrate, migration_files
from store.timeseries import bucket_sql, read_capabilities
from tests.support import register_pilot


def _has_timescaledb(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()[0] > 0


def test_migrating_twice_applies_nothing_the_second_time(make_database: Callable[[], str]) -> None:
    url = make_database()  # already migrated once by the fixture
    report = migrate(url)
    assert report.applied == []
    with psycopg.connect(url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migration ORDER BY version")]
    assert versions == [v for v, _, _ in migration_files()]


def test_capability_flag_records_what_migrate_found(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        caps = read_capabilities(conn)
        installed = conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'").fetchone()[0]
    assert caps.timescaledb == bool(installed)


def test_hourly_view_counts_messages_and_averages_per_device_and_hour(database_url: str, unique_id: Callable) -> None:
    pilot = register_pilot(database_url, unique_id("hourly"))
    hour = datetime(2026, 3, 1, 10, tzinfo=UTC)
    with psycopg.connect(database_url) as conn:
        for seq, (minute, temperature) in enumerate([(5, 20.0), (35, 22.0), (65, 30.0)]):
            device_time = hour + timedelta(minutes=minute)
            conn.execute(
                "INSERT INTO telemetry (device_id, seq, device_time, ingest_time, channel, size_bytes, temperature_c) "
                "VALUES (%s, %s, %s, %s, 'telemetry', 50, %s)",
                (pilot.env_id, seq, device_time, device_time + timedelta(seconds=2), temperature),
            )
        conn.commit()
        if read_capabilities(conn).timescaledb:
            conn.autocommit = True
            conn.execute("CALL refresh_continuous_aggregate('telemetry_hourly', NULL, NULL)")
        rows = conn.execute(
            "SELECT bucket, messages, readings, mean_temperature_c, mean_latency_s FROM telemetry_hourly "
            "WHERE device_id = %s ORDER BY bucket", (pilot.env_id,)).fetchall()
    assert rows == [(hour, 2, 2, 21.0, 2.0), (hour + timedelta(hours=1), 1, 1, 30.0, 2.0)]


def test_bucket_expression_puts_times_in_utc_buckets_from_a_fixed_origin(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        timescale = read_capabilities(conn).timescaledb
        conn.execute("SET TIME ZONE 'Asia/Kolkata'")  # a half-hour offset must not shift buckets
        expr = bucket_sql(timescale, "%(bucket)s", column="%(t)s::timestamptz")
        got = conn.execute(f"SELECT {expr}", {"bucket": "15 minutes", "t": "2026-05-01T10:22:00Z"}).fetchone()[0]
    assert got == datetime(2026, 5, 1, 10, 15, tzinfo=UTC)


def test_plain_postgresql_gets_an_ordinary_view_in_place_of_the_continuous_aggregate(database_url: str) -> None:
    if _has_timescaledb(database_url):
        pytest.skip("this server has TimescaleDB; the plain path is checked on servers without it")
    with psycopg.connect(database_url) as conn:
        kind = conn.execute("SELECT relkind FROM pg_class WHERE relname = 'telemetry_hourly'").fetchone()[0]
    assert kind == "v"


@pytest.mark.timescaledb
def test_timescaledb_gets_a_hypertable_with_compression_retention_and_an_hourly_aggregate(
    database_url: str,
) -> None:
    if not _has_timescaledb(database_url):
        pytest.skip("TimescaleDB is not installed on this PostgreSQL server (no registry ships it); "
                    "the TimescaleDB path is verified on a TimescaleDB server")
    with psycopg.connect(database_url) as conn:
        hypertables = {r[0] for r in conn.execute("SELECT hypertable_name FROM timescaledb_information.hypertables")}
        compressed = conn.execute(
            "SELECT compression_enabled FROM timescaledb_information.hypertables WHERE hypertable_name = 'telemetry'"
        ).fetchone()[0]
        jobs = {r[0] for r in conn.execute("SELECT proc_name FROM timescaledb_information.jobs")}
        caggs = {r[0] for r in conn.execute("SELECT view_name FROM timescaledb_information.continuous_aggregates")}
    assert "telemetry" in hypertables
    assert compressed
    assert {"policy_compression", "policy_retention", "policy_refresh_continuous_aggregate"} <= jobs
    assert "telemetry_hourly" in caggs
