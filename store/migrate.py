"""Schema migrations: numbered SQL files applied once each, then the time-series layer.

Safe to run from several processes at once (an advisory lock serialises them) and on every
start: applied files are recorded in `schema_migration`, the time-series step is idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

import psycopg

from store.connection import connect
from store.timeseries import Capabilities, apply_timeseries_ddl, detect_timescaledb

_LOCK_KEY = 0x70696C6F  # "pilo"


@dataclass
class MigrationReport:
    applied: list[str] = field(default_factory=list)
    capabilities: Capabilities = Capabilities(False)


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every bundled migration, in order."""
    found = []
    for entry in resources.files("store.sql").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def migrate(database_url: str) -> MigrationReport:
    report = MigrationReport()
    with connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migration ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migration")}
            for version, name, sql in migration_files():
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(sql)  # type: ignore[arg-type]  # trusted, bundled file
                    conn.execute(
                        "INSERT INTO schema_migration (version, name) VALUES (%s, %s)", (version, name)
                    )
                report.applied.append(name)
            report.capabilities = detect_timescaledb(conn)
            apply_timeseries_ddl(conn, report.capabilities)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return report


def current_version(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migration").fetchone()
    return int(row[0]) if row else 0
