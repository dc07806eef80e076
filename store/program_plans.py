"""The program's rolling plan per year (tables `program_plan` and `program_plan_availability`,
migration 0027): pilots, devices and firms reaching stage 4 expected in a year, and a target
availability per device kind. This module is their one writer. What the plan is compared with:
api.program_plan."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

import psycopg
from psycopg.rows import class_row

from pilotlab.errors import NotFound


@dataclass(frozen=True)
class Plan:
    year: int
    pilots: int
    devices: int
    stage4_firms: int
    note: str
    updated_by: str
    updated_at: datetime
    availability: dict[str, float] = field(default_factory=dict)  # target share by device kind


_COLUMNS = "year, pilots, devices, stage4_firms, note, updated_by, updated_at"


def _with_targets(conn: psycopg.Connection, plans: list[Plan]) -> list[Plan]:
    targets: dict[int, dict[str, float]] = {}
    for year, kind, share in conn.execute("SELECT year, kind, availability FROM program_plan_availability "
                                          "WHERE year = ANY(%s) ORDER BY year, kind", ([p.year for p in plans],)):
        targets.setdefault(year, {})[kind] = share
    return [replace(p, availability=targets.get(p.year, {})) for p in plans]


def put(conn: psycopg.Connection, year: int, *, pilots: int, devices: int, stage4_firms: int,
        availability: dict[str, float], note: str = "", updated_by: str = "") -> Plan:
    """Set the year's plan, replacing the one it had (targets of kinds not given are removed)."""
    with conn.transaction():
        conn.execute(f"INSERT INTO program_plan ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, now()) "
                     "ON CONFLICT (year) DO UPDATE SET pilots = EXCLUDED.pilots, devices = EXCLUDED.devices, "
                     "stage4_firms = EXCLUDED.stage4_firms, note = EXCLUDED.note, updated_by = EXCLUDED.updated_by, "
                     "updated_at = now()", (year, pilots, devices, stage4_firms, note, updated_by))
        conn.execute("DELETE FROM program_plan_availability WHERE year = %s", (year,))
        for kind, share in sorted(availability.items()):
            conn.execute("INSERT INTO program_plan_availability (year, kind, availability) VALUES (%s, %s, %s)",
                         (year, kind, share))
    return get(conn, year)


def find(conn: psycopg.Connection, year: int) -> Plan | None:
    with conn.cursor(row_factory=class_row(Plan)) as cur:
        found = cur.execute(f"SELECT {_COLUMNS} FROM program_plan WHERE year = %s", (year,)).fetchone()
    return _with_targets(conn, [found])[0] if found is not None else None


def get(conn: psycopg.Connection, year: int) -> Plan:
    found = find(conn, year)
    if found is None:
        raise NotFound(f"no program plan for {year}")
    return found


def all_plans(conn: psycopg.Connection) -> list[Plan]:
    """Every year's plan, newest year first."""
    with conn.cursor(row_factory=class_row(Plan)) as cur:
        plans = cur.execute(f"SELECT {_COLUMNS} FROM program_plan ORDER BY year DESC").fetchall()
    return _with_targets(conn, plans)
