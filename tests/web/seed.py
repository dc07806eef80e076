"""Pilots, devices and stored daily scores written straight into the tables, so what the pages
must show is known by construction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import psycopg
from psycopg.types.json import Jsonb

STARTS = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # 09:00 in Seoul


@dataclass(frozen=True)
class Gate:
    name: str
    threshold: float
    value: float
    passed: bool


def firm(database_url: str, firm_id: str, name: str) -> str:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO firm (id, name) VALUES (%s, %s)", (firm_id, name))
    return firm_id


def pilot(database_url: str, pilot_id: str, firm_id: str, *, name: str = "Air quality", status: str = "running",
          timezone: str = "UTC", kinds: tuple[str, ...] = ("env_sensor",)) -> str:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO pilot (id, firm_id, name, site, stage, starts_at, status, timezone) "
                     "VALUES (%s, %s, %s, 'Old Town', 3, %s, %s, %s)", (pilot_id, firm_id, name, STARTS, status, timezone))
        for n, kind in enumerate(kinds):
            conn.execute("INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, commissioned_at) "
                         "VALUES (%s, %s, %s, 'wifi', 60, %s)", (f"{pilot_id}-d{n}", pilot_id, kind, STARTS))
    return pilot_id


def score(database_url: str, pilot_id: str, day: date, value: float, verdict: str, gates: list[Gate],
          scored_at: datetime) -> None:
    summary = {"score": value, "verdict": verdict, "gates": [g.__dict__ for g in gates]}
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO score_history (pilot_id, scored_on, rubric_version, window_start, window_end, score, "
                     "verdict, summary, scored_at) VALUES (%s, %s, '1', %s, %s, %s, %s, %s, %s)",
                     (pilot_id, day, STARTS, scored_at, value, verdict, Jsonb(summary), scored_at))
