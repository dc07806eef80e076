"""Schema migrations: numbered SQL files applied once each, for the mode the database uses.

A version is `NNNN_<name>.sql` (both modes) and/or `NNNN_<name>.plain.sql` /
`NNNN_<name>.timescaledb.sql` (one mode; run after the common file, in the same transaction).
Everything the schema holds, derived objects included (the continuous aggregate, views,
TimescaleDB policies), is made by these files, so an edit is a new version and reaches every
existing database, whatever its mode. Nothing is re-created at every start.

The mode (store.timeseries.detect_timescaledb) is TimescaleDB when the server can run it, and is
recorded in `store_capability`. A plain database on a server that can now run TimescaleDB is
converted: the `.timescaledb.sql` files of the versions it has are run in order, in one
transaction. So a `.timescaledb.sql` file must work both right after its version on a TimescaleDB
database and after a plain database's whole history (dropping what its `.plain.sql` made).
Every migration must be safe on `telemetry` as a hypertable with compression enabled and
compressed chunks (no ADD COLUMN with a volatile default: see 0005).

Safe to run from several processes at once (an advisory lock serialises them) and on every start:
applied versions are recorded in `schema_migration`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from importlib import resources

import psycopg

from pilotlab.errors import ConfigError
from store.connection import connect
from store.timeseries import Capabilities, detect_timescaledb, record_mode, recorded_mode

log = logging.getLogger(__name__)

_LOCK_KEY = 0x70696C6F  # "pilo"
_FILE = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+?)(?:\.(?P<mode>plain|timescaledb))?\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str                 # as recorded in schema_migration: "0002_telemetry.sql"
    common: str | None = None
    plain: str | None = None
    timescaledb: str | None = None

    def statements(self, timescaledb: bool) -> list[str]:
        """The SQL to run for this version in a database of the given mode."""
        return [sql for sql in (self.common, self.timescaledb if timescaledb else self.plain) if sql]


@dataclass
class MigrationReport:
    applied: list[str] = field(default_factory=list)
    capabilities: Capabilities = Capabilities(False)
    converted: bool = False   # a plain database was converted to TimescaleDB


def migrations() -> list[Migration]:
    """Every bundled migration, in version order."""
    parts: dict[int, dict[str, str]] = {}
    names: dict[int, str] = {}
    for entry in resources.files("store.sql").iterdir():
        match = _FILE.match(entry.name)
        if not match:
            continue
        version = int(match["version"])
        name = f"{match['version']}_{match['name']}.sql"
        if names.setdefault(version, name) != name:
            raise RuntimeError(f"two migrations share version {version}: {names[version]} and {name}")
        parts.setdefault(version, {})[match["mode"] or "common"] = entry.read_text(encoding="utf-8")
    return [Migration(version, names[version], **parts[version]) for version in sorted(parts)]


def migrate(database_url: str, *, target: int | None = None) -> MigrationReport:
    """Bring the database to the newest version (or to `target`, for upgrade tests), in its mode."""
    report = MigrationReport()
    with connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            # Before any DDL: in a database with the extension on a server that does not preload
            # it, DDL fires TimescaleDB's event triggers, which end the connection.
            caps = report.capabilities = detect_timescaledb(conn, database_url)
            recorded = recorded_mode(conn)
            if recorded and not caps.timescaledb:
                raise ConfigError(f"this database was set up with TimescaleDB, which this server cannot run now: {caps.note}")
            (log.warning if caps.fallback else log.info)("%s", caps.note)
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migration ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migration")}
            every = migrations()
            if caps.timescaledb and recorded is False:
                _convert(conn, [m for m in every if m.version in done])
                report.converted = True
            for migration in every:
                if migration.version in done or (target is not None and migration.version > target):
                    continue
                with conn.transaction():
                    for sql in migration.statements(caps.timescaledb):
                        conn.execute(sql)  # type: ignore[call-overload]  # trusted, bundled file
                    conn.execute("INSERT INTO schema_migration (version, name) VALUES (%s, %s)",
                                 (migration.version, migration.name))
                    if _has_capability_table(conn):  # from 0002 on; in the same transaction as the version
                        record_mode(conn, caps.timescaledb)
                report.applied.append(migration.name)
        finally:
            if not conn.closed:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return report


def _convert(conn: psycopg.Connection, applied: list[Migration]) -> None:
    """Turn a plain database into a TimescaleDB one: its versions' TimescaleDB parts, in one transaction."""
    log.warning("converting this plain PostgreSQL database to TimescaleDB (telemetry's rows move into chunks)")
    with conn.transaction():
        for migration in applied:
            if migration.timescaledb:
                conn.execute(migration.timescaledb)  # type: ignore[call-overload]  # trusted, bundled file
        record_mode(conn, True)


def _has_capability_table(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT to_regclass('store_capability') IS NOT NULL").fetchone() == (True,)


def current_version(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migration").fetchone()
    return int(row[0]) if row else 0
