"""Saved requirements of city departments (the `requirement` table, migration 0022) and the
records matching reads: each pilot's newest record that is not `invalid`, for pilots with a device
of a kind. What a requirement asks and how a record is judged against it: api.matching."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row

from pilotlab.errors import NotFound

BANDS = ("not_eligible", "conditional", "eligible")  # verdict bands a requirement may ask for, worst to best


@dataclass(frozen=True)
class Requirement:
    id: int
    name: str
    kind: str
    min_availability: float | None
    min_completeness: float | None
    max_qc_fail_share: float | None
    min_battery_ratio: float | None
    min_pilot_days: float | None
    min_verdict: str
    created_by: str
    created_at: datetime
    checked_at: datetime | None


_COLUMNS = ("id, name, kind, min_availability, min_completeness, max_qc_fail_share, min_battery_ratio, min_pilot_days, "
            "min_verdict, created_by, created_at, checked_at")
THRESHOLDS = ("min_availability", "min_completeness", "max_qc_fail_share", "min_battery_ratio", "min_pilot_days")


def create(conn: psycopg.Connection, *, name: str, kind: str, min_verdict: str, created_by: str,
           **thresholds: float | None) -> Requirement:
    with conn.cursor(row_factory=class_row(Requirement)) as cur:
        row = cur.execute(
            f"INSERT INTO requirement (name, kind, min_verdict, created_by, {', '.join(THRESHOLDS)}) "
            f"VALUES (%s, %s, %s, %s, {', '.join(['%s'] * len(THRESHOLDS))}) RETURNING {_COLUMNS}",
            (name, kind, min_verdict, created_by, *(thresholds.get(t) for t in THRESHOLDS))).fetchone()
    assert row is not None
    return row


def all_requirements(conn: psycopg.Connection) -> list[Requirement]:
    with conn.cursor(row_factory=class_row(Requirement)) as cur:
        return cur.execute(f"SELECT {_COLUMNS} FROM requirement ORDER BY created_at DESC, id DESC").fetchall()


def get(conn: psycopg.Connection, requirement_id: int) -> Requirement:
    with conn.cursor(row_factory=class_row(Requirement)) as cur:
        row = cur.execute(f"SELECT {_COLUMNS} FROM requirement WHERE id = %s", (requirement_id,)).fetchone()
    if row is None:
        raise NotFound(f"no requirement with id {requirement_id}")
    return row


def mark_checked(conn: psycopg.Connection, requirement_id: int) -> None:
    conn.execute("UPDATE requirement SET checked_at = now() WHERE id = %s", (requirement_id,))


@dataclass(frozen=True)
class CandidateRecord:
    firm_id: str
    firm_name: str
    pilot_id: str
    record_id: str
    issued_at: datetime
    score: float
    document: bytes
    recorded_at: datetime  # when it was stored: its transparency-log leaf's time (else its issue time)


def latest_records(conn: psycopg.Connection, kind: str) -> list[CandidateRecord]:
    """Each pilot's newest record whose verdict is not `invalid`, for pilots with a device of `kind`.
    Issue times are whole seconds (scoring.issuing), so records of one second are ordered by their
    place in the transparency log, which is the order they were stored in."""
    with conn.cursor(row_factory=class_row(CandidateRecord)) as cur:
        return cur.execute(
            "SELECT DISTINCT ON (rr.pilot_id) p.firm_id, f.name AS firm_name, rr.pilot_id, rr.id AS record_id, "
            "rr.issued_at, rr.score, rr.document, coalesce(tl.appended_at, rr.issued_at) AS recorded_at "
            "FROM reference_record rr JOIN pilot p ON p.id = rr.pilot_id JOIN firm f ON f.id = p.firm_id "
            "LEFT JOIN transparency_leaf tl ON tl.record_id = rr.id WHERE rr.verdict <> 'invalid' "
            "AND EXISTS (SELECT 1 FROM device d WHERE d.pilot_id = p.id AND d.kind = %s) "
            "ORDER BY rr.pilot_id, rr.issued_at DESC, tl.leaf_index DESC NULLS LAST, rr.id", (kind,)).fetchall()
