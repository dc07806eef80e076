"""Migrations build the same schema on plain PostgreSQL and TimescaleDB, run again as often as
the stack restarts, and upgrade a filled database from every earlier version; queries written
against `telemetry` and `telemetry_hourly` work on both. Each test runs on both servers."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import resources

import psycopg
import pytest

from pilotlab.cli import main
from store.migrate import migrate, migrations
from store.timeseries import bucket_sql, read_capabilities
from tests.store.filling import SchemaFill, fill_at, hourly_expected, refresh_hourly, telemetry_rows
from tests.support import register_pilot

HEAD = migrations()[-1].version


def test_migrating_twice_applies_nothing_the_second_time(empty_database: str, capsys: pytest.CaptureFixture[str]) -> None:
    url = empty_database
    migrate(url)
    with psycopg.connect(url) as conn:
        objects_before = _derived_objects(conn)
    for _ in range(2):  # a demo restart, a container start of the compose stack
        assert main(["db", "migrate", "--database-url", url]) == 0
    out = capsys.readouterr().out
    assert "migrations applied: none (schema up to date)" in out
    with psycopg.connect(url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migration ORDER BY version")]
        assert _derived_objects(conn) == objects_before
    assert versions == [m.version for m in migrations()]


def test_migrate_says_which_mode_it_chose_and_why(empty_database: str, database_server: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "migrate", "--database-url", empty_database]) == 0
    out = capsys.readouterr().out
    if database_server == "timescaledb":
        assert re.search(r"database mode: TimescaleDB 2\.\d+\.\d+ \(extension created\)", out)
    else:
        assert "database mode: plain PostgreSQL (the TimescaleDB extension is not installed on this server)" in out


def test_capability_flag_records_the_servers_mode(database_url: str, database_server: str) -> None:
    with psycopg.connect(database_url) as conn:
        caps = read_capabilities(conn)
        installed = conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'").fetchone()[0]
    assert caps.timescaledb is (database_server == "timescaledb")
    assert bool(installed) is caps.timescaledb


def test_each_server_gets_its_modes_objects(database_url: str, database_server: str) -> None:
    with psycopg.connect(database_url) as conn:
        kind = conn.execute("SELECT relkind FROM pg_class WHERE relname = 'telemetry_hourly'").fetchone()[0]
        if database_server == "postgres":
            assert kind == "v"  # an ordinary view
            return
        hypertables = {r[0] for r in conn.execute("SELECT hypertable_name FROM timescaledb_information.hypertables")}
        compressed = conn.execute("SELECT compression_enabled FROM timescaledb_information.hypertables "
                                  "WHERE hypertable_name = 'telemetry'").fetchone()[0]
        jobs = {(r[0], r[1], r[2]): r[3] for r in conn.execute(
            "SELECT proc_name, hypertable_name, schedule_interval, config FROM timescaledb_information.jobs "
            "WHERE hypertable_name IS NOT NULL AND fixed_schedule")}
        caggs = {r[0] for r in conn.execute("SELECT view_name FROM timescaledb_information.continuous_aggregates")}
    assert "telemetry" in hypertables and compressed
    assert "telemetry_hourly" in caggs
    assert jobs.keys() == {("policy_compression", "telemetry", timedelta(hours=12)),
                           ("policy_retention", "telemetry", timedelta(days=1)),
                           ("policy_refresh_continuous_aggregate", "telemetry_hourly", timedelta(minutes=30))}
    refresh = jobs["policy_refresh_continuous_aggregate", "telemetry_hourly", timedelta(minutes=30)]
    assert refresh["start_offset"] is None  # the whole history: late data is refreshed (0011)


def test_telemetry_hourly_has_the_same_columns_and_types_on_both_servers(database_url: str) -> None:
    expected = [("device_id", "text"), ("bucket", "timestamp with time zone"), ("messages", "bigint"),
                ("readings", "bigint"), ("bytes", "bigint"), ("mean_latency_s", "numeric"),
                ("max_latency_s", "numeric"), ("min_battery_pct", "double precision"),
                ("mean_battery_pct", "double precision"), ("mean_power_w", "double precision"),
                ("max_energy_wh", "double precision"), ("mean_temperature_c", "double precision"),
                ("mean_humidity_pct", "double precision"), ("mean_pm25_ugm3", "double precision"),
                ("mean_pm10_ugm3", "double precision"), ("mean_co2_ppm", "double precision"),
                ("mean_noise_dba", "double precision")]
    with psycopg.connect(database_url) as conn:
        columns = conn.execute("SELECT column_name, data_type FROM information_schema.columns "
                               "WHERE table_name = 'telemetry_hourly' ORDER BY ordinal_position").fetchall()
    assert columns == expected


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
        refresh_hourly(database_url)
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


def test_every_migration_file_names_one_version_and_at_most_one_mode() -> None:
    names = [entry.name for entry in resources.files("store.sql").iterdir() if entry.name.endswith(".sql")]
    pattern = re.compile(r"^\d{4}_[a-z0-9_]+(\.(plain|timescaledb))?\.sql$")
    assert [n for n in names if not pattern.match(n)] == []
    versions = [m.version for m in migrations()]
    assert versions == sorted(set(versions)) and versions[0] == 1
    for m in migrations():  # a mode's file never without the other mode's, unless the version is one mode's alone
        assert m.common or m.plain or m.timescaledb, m.name


EARLIER = [m.version for m in migrations() if m.version < HEAD]


@pytest.mark.parametrize("version", EARLIER, ids=[f"from-{v:04d}" for v in EARLIER])
def test_a_filled_database_at_an_earlier_version_upgrades_to_head_with_its_data_intact(
        empty_database: str, database_server: str, version: int) -> None:
    url = empty_database
    assert migrate(url, target=version).applied[-1].startswith(f"{version:04d}_")
    fill: SchemaFill = fill_at(url, version)  # registry, telemetry (old chunks compressed on TimescaleDB), ...
    report = migrate(url)
    assert [name[:4] for name in report.applied] == [f"{m.version:04d}" for m in migrations() if m.version > version]
    assert migrate(url).applied == []
    with psycopg.connect(url, autocommit=True) as conn:
        assert read_capabilities(conn).timescaledb is (database_server == "timescaledb")
        assert telemetry_rows(conn) == fill.telemetry
        if fill.telemetry:
            assert conn.execute("SELECT count(*) FROM telemetry WHERE stored_at IS NULL").fetchone()[0] == 0
            refresh_hourly(url)
            assert conn.execute("SELECT device_id, bucket, messages, readings, mean_temperature_c FROM telemetry_hourly "
                                "ORDER BY 1, 2").fetchall() == hourly_expected(fill.telemetry)
            late = fill.compressed_time or fill.telemetry[0][2]
            conn.execute("INSERT INTO telemetry (device_id, seq, device_time, ingest_time, channel, size_bytes) "
                         "VALUES (%s, 999, %s, now(), 'status', 10) ON CONFLICT DO NOTHING", (fill.device_id, late))
            assert conn.execute("SELECT stored_at > now() - interval '1 minute' FROM telemetry "
                                "WHERE device_id = %s AND seq = 999", (fill.device_id,)).fetchone() == (True,)
        assert conn.execute("SELECT count(*) FROM dead_letter WHERE topic_sha256 IS NOT NULL").fetchone()[0] == fill.dead_letters
        if fill.uplink_frames:
            lost = conn.execute("SELECT sum(lost) FROM uplink_loss_hourly WHERE device_id = %s",
                                (fill.device_id,)).fetchone()[0]
            assert lost == fill.uplink_lost
        if database_server == "timescaledb" and fill.compressed_time:
            assert conn.execute("SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'telemetry' "
                                "AND is_compressed").fetchone()[0] > 0


def _derived_objects(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    """Views and materialized views with their definitions, and TimescaleDB jobs with their config."""
    objects = [(r[0], "view", r[1]) for r in conn.execute(
        "SELECT viewname, definition FROM pg_views WHERE schemaname = current_schema() ORDER BY 1")]
    if read_capabilities(conn).timescaledb:
        objects += [(str(r[0]), r[1], str(r[2])) for r in conn.execute(
            "SELECT job_id, proc_name, config FROM timescaledb_information.jobs ORDER BY 1")]
    return objects
