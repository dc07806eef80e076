"""One pilot's page: the pilot, its latest stored daily score with each gate, its newest records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from pilotlab.errors import NotFound

RECORDS_SHOWN = 50


@dataclass(frozen=True)
class PilotView:
    id: str
    name: str
    firm_id: str
    firm_name: str
    site: str
    stage: int
    status: str
    timezone: str
    starts_at: datetime
    ends_at: datetime | None


@dataclass(frozen=True)
class LatestScore:
    scored_on: date
    rubric_version: str
    score: float
    verdict: str
    window_start: datetime
    window_end: datetime
    scored_at: datetime
    summary: dict[str, Any]


@dataclass(frozen=True)
class RecordRow:
    id: str
    issued_at: datetime
    rubric_version: str
    verdict: str
    score: float


def pilot(conn: psycopg.Connection, pilot_id: str) -> PilotView:
    with conn.cursor(row_factory=class_row(PilotView)) as cur:
        found = cur.execute(
            "SELECT p.id, p.name, p.firm_id, f.name AS firm_name, p.site, p.stage, p.status, p.timezone, p.starts_at, "
            "p.ends_at FROM pilot p JOIN firm f ON f.id = p.firm_id WHERE p.id = %s", (pilot_id,)).fetchone()
    if found is None:
        raise NotFound(f"no pilot with id {pilot_id!r}")
    return found


def latest_score(conn: psycopg.Connection, pilot_id: str) -> LatestScore | None:
    with conn.cursor(row_factory=class_row(LatestScore)) as cur:
        return cur.execute(
            "SELECT scored_on, rubric_version, score, verdict, window_start, window_end, scored_at, summary "
            "FROM score_history WHERE pilot_id = %s ORDER BY scored_on DESC, scored_at DESC LIMIT 1", (pilot_id,)).fetchone()


def records(conn: psycopg.Connection, pilot_id: str) -> list[RecordRow]:
    with conn.cursor(row_factory=class_row(RecordRow)) as cur:
        return cur.execute(
            "SELECT id, issued_at, rubric_version, verdict, score FROM reference_record WHERE pilot_id = %s "
            "ORDER BY issued_at DESC, id LIMIT %s", (pilot_id, RECORDS_SHOWN)).fetchall()
