"""The program's rolling plan beside what its pilots achieved in the year (README, *Rolling plan*).

Years are each pilot's own calendar year, in its time zone (pilot.timezone, as its stored scores'
days are). For year Y:

    pilots run       pilots with a stored daily score (score_history) whose window ends in Y; a
                     window ending at midnight on 1 January counts for the year before (its last
                     day is 31 December). The newest such score of each pilot is its *year score*
                     (latest window end, then the latest stored).
    devices          the devices each year score scored (its summary's fleet.scored), summed
    availability     per device kind, pooled by slots over the devices of that kind in the year
                     scores: slots hit / slots, each device's figures over its year score's window
                     from the stored daily summaries (as the scorecard's device table), with the
                     year score's rubric
    stage-4 firms    firms with a pilot whose newest reference record issued in Y (not `invalid`)
                     verifies with the records' key and has the verdict `eligible`

Each measure is `met` when the achieved figure is at least the planned one (a kind with a target and
no device achieved nothing). Figures are exact counts, and shares rounded to 6 decimals.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from psycopg.rows import class_row

from pilotlab.errors import PilotlabError, RecordInvalid
from scoring.metrics import device_metrics
from scoring.records import verify
from scoring.rubric import Rubric, load_rubric
from scoring.window import load_pilot, pilot_window
from store import program_plans
from store.program_plans import Plan

DECIMALS = 6
_YEAR_BOUNDS = ("make_timestamptz(%(year)s, 1, 1, 0, 0, 0, p.timezone)",
                "make_timestamptz(%(year)s + 1, 1, 1, 0, 0, 0, p.timezone)")


@dataclass(frozen=True)
class YearScore:
    """A pilot's newest stored score of the year, and what its devices achieved by kind."""

    pilot_id: str
    pilot_name: str
    firm_id: str
    firm_name: str
    timezone: str
    scored_on: date
    rubric_version: str
    window_start: datetime
    window_end: datetime
    score: float
    verdict: str
    summary: dict[str, Any]
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> devices, slots_hit, slots

    @property
    def devices(self) -> int:
        return int(self.summary.get("fleet", {}).get("scored", 0))


@dataclass(frozen=True)
class Stage4Firm:
    firm_id: str
    firm_name: str
    pilot_id: str
    timezone: str   # the pilot's: its record's issue time is of the year there
    record_id: str
    issued_at: datetime
    score: float


@dataclass(frozen=True)
class Row:
    measure: str         # pilots, devices, stage4_firms, availability
    kind: str | None     # availability: the device kind
    planned: float | None
    achieved: float | None

    @property
    def met(self) -> bool | None:
        if self.planned is None:
            return None
        return self.achieved is not None and self.achieved >= self.planned


@dataclass(frozen=True)
class Comparison:
    year: int
    plan: Plan | None
    pilots: list[YearScore]
    stage4: list[Stage4Firm]
    availability: dict[str, float | None]   # achieved, by kind
    devices_by_kind: dict[str, int]
    rows: list[Row]


def year_scores(conn: psycopg.Connection, year: int) -> list[YearScore]:
    """Each pilot's year score (module doc), without the per-kind figures."""
    with conn.cursor(row_factory=class_row(YearScore)) as cur:
        return cur.execute(
            "SELECT DISTINCT ON (h.pilot_id) h.pilot_id, p.name AS pilot_name, p.firm_id, f.name AS firm_name, "
            "p.timezone, h.scored_on, h.rubric_version, h.window_start, h.window_end, h.score, h.verdict, h.summary "
            "FROM score_history h JOIN pilot p ON p.id = h.pilot_id JOIN firm f ON f.id = p.firm_id "
            f"WHERE h.window_end > {_YEAR_BOUNDS[0]} AND h.window_end <= {_YEAR_BOUNDS[1]} "
            "ORDER BY h.pilot_id, h.window_end DESC, h.scored_at DESC", {"year": year}).fetchall()


def _by_kind(conn: psycopg.Connection, s: YearScore, rubric: Rubric) -> dict[str, dict[str, int]]:
    pilot = load_pilot(conn, s.pilot_id)
    scored = pilot_window(conn, pilot, rubric, s.window_end).scored
    found: dict[str, dict[str, int]] = {}
    for m in device_metrics(conn, rubric, scored, {}, timezone=pilot.timezone):  # availability needs no delivery ratios
        kind = found.setdefault(m.kind, {"devices": 0, "slots_hit": 0, "slots": 0})
        kind["devices"] += 1
        kind["slots_hit"] += m.slots_hit
        kind["slots"] += m.slots
    return found


def stage4_firms(conn: psycopg.Connection, year: int, public: Ed25519PublicKey) -> list[Stage4Firm]:
    """The firms reaching stage 4 in the year (module doc), each with its newest qualifying record."""
    rows = conn.execute(
        "SELECT DISTINCT ON (r.pilot_id) p.firm_id, f.name, r.pilot_id, p.timezone, r.id, r.issued_at, r.score, r.document "
        "FROM reference_record r JOIN pilot p ON p.id = r.pilot_id JOIN firm f ON f.id = p.firm_id "
        "LEFT JOIN transparency_leaf tl ON tl.record_id = r.id "
        f"WHERE r.verdict <> 'invalid' AND r.issued_at >= {_YEAR_BOUNDS[0]} AND r.issued_at < {_YEAR_BOUNDS[1]} "
        "ORDER BY r.pilot_id, r.issued_at DESC, tl.leaf_index DESC NULLS LAST, r.id", {"year": year}).fetchall()
    best: dict[str, Stage4Firm] = {}
    for firm_id, firm_name, pilot_id, timezone, record_id, issued_at, score, document in rows:
        try:
            record = verify(bytes(document), public)
        except RecordInvalid:
            continue  # not valid: never evidence
        if record.get("verdict") != "eligible":
            continue
        found = Stage4Firm(firm_id, firm_name, pilot_id, timezone, record_id, issued_at, float(score))
        if firm_id not in best or (found.issued_at, found.record_id) > (best[firm_id].issued_at, best[firm_id].record_id):
            best[firm_id] = found
    return sorted(best.values(), key=lambda f: f.firm_id)


def _share(hit: int, slots: int) -> float | None:
    return round(hit / slots, DECIMALS) if slots else None


def compare(conn: psycopg.Connection, year: int, public: Ed25519PublicKey,
            rubric_for: Callable[[str], Rubric]) -> Comparison:
    """The year's plan (None if none is set) beside what its pilots achieved."""
    plan = program_plans.find(conn, year)
    pilots = [replace(s, by_kind=_by_kind(conn, s, rubric_for(s.rubric_version))) for s in year_scores(conn, year)]
    stage4 = stage4_firms(conn, year, public)
    totals: dict[str, dict[str, int]] = {}
    for s in pilots:
        for kind, figures in s.by_kind.items():
            into = totals.setdefault(kind, dict.fromkeys(figures, 0))
            for name, value in figures.items():
                into[name] += value
    availability = {kind: _share(t["slots_hit"], t["slots"]) for kind, t in sorted(totals.items())}
    targets = plan.availability if plan else {}
    rows = [Row("pilots", None, plan.pilots if plan else None, len(pilots)),
            Row("devices", None, plan.devices if plan else None, sum(s.devices for s in pilots)),
            Row("stage4_firms", None, plan.stage4_firms if plan else None, len(stage4))]
    rows += [Row("availability", kind, targets.get(kind), availability.get(kind))
             for kind in sorted(set(targets) | set(availability))]
    return Comparison(year, plan, pilots, stage4, availability,
                      {kind: t["devices"] for kind, t in sorted(totals.items())}, rows)


def rubric_chooser(configured: Rubric) -> Callable[[str], Rubric]:
    """The rubric a stored score was computed with: the configured one if of its version, else the
    bundled file of that version (else, for a version pilotlab does not ship, the configured one)."""
    def choose(version: str) -> Rubric:
        if configured.version == version:
            return configured
        try:
            return load_rubric(version=version).rubric
        except PilotlabError:
            return configured

    return choose


def _number(value: float | None, share: bool) -> str:
    if value is None:
        return ""
    return f"{value:.{DECIMALS}f}" if share else str(int(value))


CSV_HEADER = ("year", "measure", "kind", "planned", "achieved", "met")


def as_csv(c: Comparison) -> str:
    """The plan beside the achieved figures, one measure a line (CSV_HEADER; met: yes, no, or empty
    where nothing was planned)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for r in c.rows:
        share = r.measure == "availability"
        writer.writerow([c.year, r.measure, r.kind or "", _number(r.planned, share), _number(r.achieved, share),
                         "" if r.met is None else ("yes" if r.met else "no")])
    return out.getvalue()
