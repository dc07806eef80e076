"""The one place that knows whether TimescaleDB is there, and all of its SQL.

On TimescaleDB, `telemetry` becomes a hypertable with compression and retention policies and
`telemetry_hourly` a continuous aggregate kept fresh by a policy. On plain PostgreSQL the same
`telemetry_hourly` is an ordinary view computing the same columns, and `bucket_sql` uses
`date_bin` (PostgreSQL ≥ 14) in place of `time_bucket`; both bucket in UTC from a fixed origin,
so queries written against these names give the same answers on either server.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

CHUNK_INTERVAL = "1 day"
COMPRESS_AFTER = "7 days"
RETAIN_FOR = "730 days"
BUCKET_ORIGIN = "2000-01-03 00:00:00+00"  # time_bucket's own default origin

_HOURLY_SELECT = """
SELECT device_id,
       {bucket} AS bucket,
       count(*) AS messages,
       count(CASE WHEN channel = 'telemetry' THEN 1 END) AS readings,  -- no FILTER: older caggs refuse it
       sum(size_bytes) AS bytes,
       avg(extract(epoch FROM ingest_time - device_time)) AS mean_latency_s,
       max(extract(epoch FROM ingest_time - device_time)) AS max_latency_s,
       min(battery_pct) AS min_battery_pct,
       avg(battery_pct) AS mean_battery_pct,
       avg(power_w) AS mean_power_w,
       max(energy_wh) AS max_energy_wh,
       avg(temperature_c) AS mean_temperature_c,
       avg(humidity_pct) AS mean_humidity_pct,
       avg(pm25_ugm3) AS mean_pm25_ugm3,
       avg(pm10_ugm3) AS mean_pm10_ugm3,
       avg(co2_ppm) AS mean_co2_ppm,
       avg(noise_dba) AS mean_noise_dba
FROM telemetry
GROUP BY device_id, bucket
"""

TIMESCALE_DDL: tuple[str, ...] = (
    "CREATE EXTENSION IF NOT EXISTS timescaledb",
    f"""SELECT create_hypertable('telemetry', by_range('device_time', INTERVAL '{CHUNK_INTERVAL}'),
                                 if_not_exists => TRUE, migrate_data => TRUE)""",
    """ALTER TABLE telemetry SET (timescaledb.compress,
                                 timescaledb.compress_segmentby = 'device_id',
                                 timescaledb.compress_orderby = 'device_time DESC, seq DESC')""",
    f"SELECT add_compression_policy('telemetry', compress_after => INTERVAL '{COMPRESS_AFTER}', if_not_exists => TRUE)",
    f"SELECT add_retention_policy('telemetry', drop_after => INTERVAL '{RETAIN_FOR}', if_not_exists => TRUE)",
    "CREATE MATERIALIZED VIEW IF NOT EXISTS telemetry_hourly "
    "WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS "
    + _HOURLY_SELECT.format(bucket="time_bucket(INTERVAL '1 hour', device_time)")
    + " WITH NO DATA",
    """SELECT add_continuous_aggregate_policy('telemetry_hourly',
              start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 hour',
              schedule_interval => INTERVAL '30 minutes', if_not_exists => TRUE)""",
)

PLAIN_DDL: tuple[str, ...] = (
    "CREATE OR REPLACE VIEW telemetry_hourly AS "
    + _HOURLY_SELECT.format(bucket=f"date_bin(INTERVAL '1 hour', device_time, TIMESTAMPTZ '{BUCKET_ORIGIN}')"),
)


@dataclass(frozen=True)
class Capabilities:
    timescaledb: bool
    note: str = ""


def bucket_sql(timescaledb: bool, width_param: str = "%(bucket)s", column: str = "device_time") -> str:
    """SQL for the start of a `column` bucket of width `width_param` (an interval parameter)."""
    if timescaledb:
        return f"time_bucket({width_param}::interval, {column})"
    return f"date_bin({width_param}::interval, {column}, TIMESTAMPTZ '{BUCKET_ORIGIN}')"


def detect_timescaledb(conn: psycopg.Connection) -> Capabilities:
    """Whether the TimescaleDB extension is installed or can be created on this server."""
    installed = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    if installed:
        return Capabilities(True, "timescaledb extension installed")
    available = conn.execute(
        "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if not available:
        return Capabilities(False, "timescaledb is not available on this server: plain PostgreSQL mode")
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as exc:
        return Capabilities(False, f"timescaledb is available but cannot load ({exc.diag.message_primary}): plain PostgreSQL mode")
    return Capabilities(True, f"timescaledb {available[0]} created")


def apply_timeseries_ddl(conn: psycopg.Connection, caps: Capabilities) -> None:
    """Create the hypertable, policies and aggregate, or the plain equivalents. Idempotent.

    Runs one statement at a time on an autocommit connection: a continuous aggregate cannot be
    created inside a transaction block.
    """
    if caps.timescaledb:
        kind = conn.execute(
            "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = 'telemetry_hourly' AND n.nspname = current_schema()"
        ).fetchone()
        if kind and kind[0] == "v":  # a plain view from before the extension was installed
            conn.execute("DROP VIEW telemetry_hourly")
        for statement in TIMESCALE_DDL:
            conn.execute(statement)
    else:
        for statement in PLAIN_DDL:
            conn.execute(statement)
    conn.execute(
        "INSERT INTO store_capability (name, enabled) VALUES ('timescaledb', %s) "
        "ON CONFLICT (name) DO UPDATE SET enabled = EXCLUDED.enabled",
        (caps.timescaledb,),
    )


def read_capabilities(conn: psycopg.Connection) -> Capabilities:
    row = conn.execute("SELECT enabled FROM store_capability WHERE name = 'timescaledb'").fetchone()
    return Capabilities(bool(row and row[0]))
