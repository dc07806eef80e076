"""The pilots overview's rows: each pilot the session may see, with its latest stored daily score
(score_history, as GET /scores lists it) and its gates, and its newest record.

Nothing is scored here: a page of PAGE_SIZE pilots costs one statement, each pilot a few index
probes (its devices, its newest score_history and reference_record rows), so the page stays fast
whatever the fleet's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import psycopg
from psycopg.rows import class_row

from access.api_keys import Principal
from access.policy import ApiRole

PAGE_SIZE = 100


@dataclass(frozen=True)
class PilotRow:
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
    kinds: list[str]
    devices: int
    scored_on: date | None
    rubric_version: str | None
    score: float | None
    verdict: str | None
    window_start: datetime | None
    window_end: datetime | None
    scored_at: datetime | None
    gates_passed: int
    gates_failed: list[str]
    record_id: str | None
    record_issued_at: datetime | None


@dataclass(frozen=True)
class Filters:
    firm_id: str | None = None
    kind: str | None = None
    status: str | None = None


_ROWS = """
SELECT p.id, p.name, p.firm_id, f.name AS firm_name, p.site, p.stage, p.status, p.timezone, p.starts_at, p.ends_at,
       coalesce(d.kinds, '{}') AS kinds, coalesce(d.devices, 0) AS devices,
       h.scored_on, h.rubric_version, h.score, h.verdict, h.window_start, h.window_end, h.scored_at,
       coalesce(g.passed, 0) AS gates_passed, coalesce(g.failed, '{}') AS gates_failed,
       r.id AS record_id, r.issued_at AS record_issued_at
FROM pilot p
JOIN firm f ON f.id = p.firm_id
LEFT JOIN LATERAL (SELECT array_agg(DISTINCT kind ORDER BY kind) AS kinds, count(*)::int AS devices
                   FROM device WHERE pilot_id = p.id) d ON true
LEFT JOIN LATERAL (SELECT * FROM score_history s WHERE s.pilot_id = p.id
                   ORDER BY scored_on DESC, scored_at DESC LIMIT 1) h ON true
LEFT JOIN LATERAL (SELECT count(*) FILTER (WHERE (x ->> 'passed')::boolean)::int AS passed,
                          array_agg(x ->> 'name' ORDER BY n) FILTER (WHERE NOT (x ->> 'passed')::boolean) AS failed
                   FROM jsonb_array_elements(CASE WHEN jsonb_typeof(h.summary -> 'gates') = 'array'
                                                  THEN h.summary -> 'gates' ELSE '[]' END) WITH ORDINALITY AS e(x, n)) g ON true
LEFT JOIN LATERAL (SELECT id, issued_at FROM reference_record rr WHERE rr.pilot_id = p.id
                   ORDER BY issued_at DESC, id LIMIT 1) r ON true
WHERE (%(firm_id)s::text IS NULL OR p.firm_id = %(firm_id)s)
  AND (%(status)s::text IS NULL OR p.status = %(status)s)
  AND (%(kind)s::text IS NULL OR EXISTS (SELECT 1 FROM device k WHERE k.pilot_id = p.id AND k.kind = %(kind)s))
  AND (%(scope_firm)s::text IS NULL OR p.firm_id = %(scope_firm)s)
  AND (%(scope_pilots)s::text[] IS NULL OR p.id = ANY(%(scope_pilots)s))
ORDER BY p.id
LIMIT %(limit)s OFFSET %(offset)s
"""


def _scope(principal: Principal) -> dict[str, object]:
    return {"scope_firm": principal.firm_id if principal.role is ApiRole.FIRM else None,
            "scope_pilots": sorted(principal.pilot_ids) if principal.role is ApiRole.PILOT_MANAGER else None}


def pilot_rows(conn: psycopg.Connection, principal: Principal, filters: Filters, offset: int = 0) -> tuple[list[PilotRow], bool]:
    """A page of the pilots `principal` may see that match `filters`, by id; and whether more follow."""
    params = {"firm_id": filters.firm_id, "kind": filters.kind, "status": filters.status,
              "limit": PAGE_SIZE + 1, "offset": offset, **_scope(principal)}
    with conn.cursor(row_factory=class_row(PilotRow)) as cur:
        rows = cur.execute(_ROWS, params).fetchall()
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def visible_firms(conn: psycopg.Connection, principal: Principal) -> list[tuple[str, str]]:
    """(id, name) of the firms whose pilots `principal` may see, for the firm filter."""
    scope = _scope(principal)
    rows = conn.execute(
        "SELECT f.id, f.name FROM firm f WHERE (%(scope_firm)s::text IS NULL OR f.id = %(scope_firm)s) "
        "AND (%(scope_pilots)s::text[] IS NULL OR EXISTS (SELECT 1 FROM pilot p WHERE p.firm_id = f.id "
        "AND p.id = ANY(%(scope_pilots)s))) ORDER BY f.id LIMIT 1000", scope).fetchall()
    return [(row[0], row[1]) for row in rows]
