"""The one place that knows whether TimescaleDB is there: the mode a database uses, the queries
that differ between modes, and the health of TimescaleDB's background jobs and compression.

What each mode builds lives in numbered migrations (store/sql/NNNN_*.timescaledb.sql and
NNNN_*.plain.sql, applied by store.migrate): on TimescaleDB `telemetry` is a hypertable with
compression and retention policies and `telemetry_hourly` a continuous aggregate kept fresh by a
policy; on plain PostgreSQL `telemetry_hourly` is an ordinary view with the same columns. Both
bucket in UTC from one fixed origin (`bucket_sql`: `time_bucket` or `date_bin`), so queries
written against these names give the same answers on either server.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from pilotlab.errors import ConfigError
from store.connection import CONNECT_TIMEOUT_S

BUCKET_ORIGIN = "2000-01-03 00:00:00+00"  # time_bucket's own default origin

# TimescaleDB 2.28 on PostgreSQL 15.20 logs every scheduled job run as failed with this error
# after the job's work is done (deploy/README.md, *TimescaleDB jobs*). Reported as a failure all the same.
_PORTAL_SQLSTATE, _PORTAL_MESSAGE = "24000", "cannot drop portal"
PORTAL_CAUSE = ("known fault of TimescaleDB 2.28 on PostgreSQL 15.20: the run is logged as failed after "
                "its work is done (deploy/README.md, TimescaleDB jobs)")


@dataclass(frozen=True)
class Capabilities:
    """The database's mode and why it was chosen. `fallback`: TimescaleDB is on the server but
    cannot be used (not preloaded, or the extension could not be created), so plain was chosen."""

    timescaledb: bool
    note: str = ""
    fallback: bool = False


def bucket_sql(timescaledb: bool, width_param: str = "%(bucket)s", column: str = "device_time") -> str:
    """SQL for the start of a `column` bucket of width `width_param` (an interval parameter)."""
    if timescaledb:
        return f"time_bucket({width_param}::interval, {column})"
    return f"date_bin({width_param}::interval, {column}, TIMESTAMPTZ '{BUCKET_ORIGIN}')"


def detect_timescaledb(conn: psycopg.Connection, database_url: str) -> Capabilities:
    """The mode this database is to use, and why; creates the extension when it can be used.

    On a server that has the extension's files but does not preload its library, CREATE EXTENSION
    ends the connection (FATAL), so the preload is checked first, and the extension is created on a
    connection of its own: whatever happens there, `conn` (which holds migrate's lock) survives.
    A database that already has the extension but whose server no longer preloads it is a
    ConfigError: its hypertable would silently read and write the wrong table.
    """
    installed = _one(conn, "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
    available = _one(conn, "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'")
    preloaded, preload_note = _preloaded(conn)
    if installed:
        if not preloaded:
            raise ConfigError(f"this database uses TimescaleDB {installed} but the server does not preload it "
                              f"({preload_note}): add timescaledb to shared_preload_libraries and restart PostgreSQL")
        return Capabilities(True, f"database mode: TimescaleDB {installed} (the extension is installed in this database)")
    if not available:
        return Capabilities(False, "database mode: plain PostgreSQL (the TimescaleDB extension is not installed on this server)")
    if not preloaded:
        return Capabilities(False, f"database mode: plain PostgreSQL, although TimescaleDB {available} is installed on "
                                   f"the server: it is not preloaded ({preload_note}); add timescaledb to "
                                   "shared_preload_libraries, restart PostgreSQL and migrate again to convert",
                            fallback=True)
    failure = _create_extension(database_url)
    if failure:
        return Capabilities(False, f"database mode: plain PostgreSQL, although TimescaleDB {available} is preloaded: "
                                   f"CREATE EXTENSION timescaledb failed ({failure}); once an administrator has "
                                   "created it in this database, migrate again to convert", fallback=True)
    return Capabilities(True, f"database mode: TimescaleDB {available} (extension created)")


def _one(conn: psycopg.Connection, query: str) -> str | None:
    row = conn.execute(query).fetchone()  # type: ignore[call-overload]  # constant SQL
    return None if row is None or row[0] is None else str(row[0])


def _preloaded(conn: psycopg.Connection) -> tuple[bool, str]:
    """Whether the server preloads TimescaleDB's library, and what that was read from."""
    try:
        with conn.transaction():
            setting = _one(conn, "SELECT current_setting('shared_preload_libraries')") or ""
    except psycopg.errors.InsufficientPrivilege:
        # Only superusers and pg_read_all_settings read shared_preload_libraries; the preloaded
        # loader's own setting is visible to every role (pg_settings hides mere placeholders).
        loader = _one(conn, "SELECT name FROM pg_settings WHERE name = 'timescaledb.disable_load'")
        return loader is not None, f"its loader setting timescaledb.disable_load is {'present' if loader else 'absent'}"
    libraries = [entry.strip().strip('"').rsplit("/", 1)[-1] for entry in setting.split(",")]
    return "timescaledb" in libraries, f"shared_preload_libraries = '{setting}'"


def _create_extension(database_url: str) -> str | None:
    """None once the extension exists, else the server's reason (first line)."""
    try:
        with psycopg.connect(database_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as side:
            side.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as exc:
        text = str(exc).strip()
        return text.splitlines()[0] if text else type(exc).__name__
    return None


def record_mode(conn: psycopg.Connection, timescaledb: bool) -> None:
    """Store the mode where the queries that differ read it (`read_capabilities`)."""
    conn.execute(
        "INSERT INTO store_capability (name, enabled) VALUES ('timescaledb', %s) "
        "ON CONFLICT (name) DO UPDATE SET enabled = EXCLUDED.enabled",
        (timescaledb,),
    )


def recorded_mode(conn: psycopg.Connection) -> bool | None:
    """The mode migrate recorded; None before `store_capability` exists or holds it."""
    if _one(conn, "SELECT to_regclass('store_capability')::text") is None:
        return None
    row = conn.execute("SELECT enabled FROM store_capability WHERE name = 'timescaledb'").fetchone()
    return bool(row[0]) if row else None


def read_capabilities(conn: psycopg.Connection) -> Capabilities:
    row = conn.execute("SELECT enabled FROM store_capability WHERE name = 'timescaledb'").fetchone()
    return Capabilities(bool(row and row[0]))


# --- health of TimescaleDB's background jobs and compression ------------------------------------


@dataclass(frozen=True)
class JobHealth:
    """One background job (timescaledb_information.jobs, job_stats) and its latest error (job_errors)."""

    job_id: int
    proc_name: str
    target: str | None            # the hypertable or continuous aggregate it works on
    schedule_interval: timedelta
    last_run_status: str | None   # 'Success', 'Failed', or None before its first run
    last_run_started_at: datetime | None
    last_successful_finish: datetime | None
    next_start: datetime | None
    total_runs: int
    total_failures: int
    last_error: str | None
    last_error_at: datetime | None
    known_cause: str | None       # PORTAL_CAUSE when the latest error is that known fault

    @property
    def failing(self) -> bool:
        return self.last_run_status == "Failed"


@dataclass(frozen=True)
class CompressionHealth:
    """Chunks of one hypertable with compression enabled."""

    hypertable: str
    chunks: int
    compressed_chunks: int
    overdue_chunks: int           # entirely older than the compression policy's compress_after, still uncompressed
    bytes_before: int | None      # of the compressed chunks, before and after compression
    bytes_after: int | None


@dataclass(frozen=True)
class TimeseriesHealth:
    jobs: tuple[JobHealth, ...]
    compression: tuple[CompressionHealth, ...]

    @property
    def failing_jobs(self) -> int:
        return sum(job.failing for job in self.jobs)


_JOBS_SQL = """
SELECT j.job_id, j.proc_name, j.hypertable_name, j.schedule_interval,
       s.last_run_status,
       CASE WHEN isfinite(s.last_run_started_at) THEN s.last_run_started_at END,  -- -infinity: never
       CASE WHEN isfinite(s.last_successful_finish) THEN s.last_successful_finish END,
       CASE WHEN isfinite(s.next_start) THEN s.next_start END,
       coalesce(s.total_runs, 0), coalesce(s.total_failures, 0),
       e.err_message, e.finish_time, e.sqlerrcode
FROM timescaledb_information.jobs j
LEFT JOIN timescaledb_information.job_stats s ON s.job_id = j.job_id
LEFT JOIN LATERAL (SELECT err_message, finish_time, sqlerrcode FROM timescaledb_information.job_errors x
                   WHERE x.job_id = j.job_id ORDER BY x.finish_time DESC NULLS LAST LIMIT 1) e ON TRUE
ORDER BY j.job_id
"""

# Chunks per hypertable with compression enabled; "overdue" compares a chunk's end with the
# compression policy's compress_after (none without a policy).
_COMPRESSION_SQL = """
SELECT h.hypertable_name, count(c.chunk_name), count(c.chunk_name) FILTER (WHERE c.is_compressed),
       count(c.chunk_name) FILTER (WHERE NOT c.is_compressed
                                    AND c.range_end < now() - (p.config ->> 'compress_after')::interval),
       st.before_compression_total_bytes, st.after_compression_total_bytes
FROM timescaledb_information.hypertables h
LEFT JOIN timescaledb_information.chunks c
       ON c.hypertable_schema = h.hypertable_schema AND c.hypertable_name = h.hypertable_name
LEFT JOIN timescaledb_information.jobs p
       ON p.hypertable_schema = h.hypertable_schema AND p.hypertable_name = h.hypertable_name
      AND p.proc_name = 'policy_compression'
LEFT JOIN LATERAL hypertable_compression_stats(format('%I.%I', h.hypertable_schema, h.hypertable_name)::regclass) st ON TRUE
WHERE h.compression_enabled
GROUP BY h.hypertable_schema, h.hypertable_name, p.config, st.before_compression_total_bytes,
         st.after_compression_total_bytes
ORDER BY h.hypertable_name
"""


def read_timeseries_health(conn: psycopg.Connection) -> TimeseriesHealth | None:
    """The jobs and compression state of a TimescaleDB database; None on plain PostgreSQL."""
    if not read_capabilities(conn).timescaledb:
        return None
    jobs = tuple(
        JobHealth(job_id=r[0], proc_name=r[1], target=r[2], schedule_interval=r[3], last_run_status=r[4],
                  last_run_started_at=r[5], last_successful_finish=r[6], next_start=r[7],
                  total_runs=r[8], total_failures=r[9], last_error=r[10], last_error_at=r[11],
                  known_cause=PORTAL_CAUSE if r[12] == _PORTAL_SQLSTATE and (r[10] or "").startswith(_PORTAL_MESSAGE) else None)
        for r in conn.execute(_JOBS_SQL))
    compression = tuple(CompressionHealth(*row) for row in conn.execute(_COMPRESSION_SQL))
    return TimeseriesHealth(jobs, compression)

