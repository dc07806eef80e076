"""Demand-supply matching: the firms whose latest valid signed records meet what a city department
requires of a device kind (a saved requirement: store.requirements).

A firm's evidence is, for each of its pilots, the newest reference record that verifies with the
records' key and whose verdict is not `invalid` (records of format 2: they carry each device's
breakdown). Over that record's devices of the required kind:

    availability      pooled: slots hit / slots, over those devices
    completeness      pooled: numerator / expected
    QC fail share     failed / counted readings
    battery vs claim  mean of the devices' ratios (projected life / claimed), as the battery component
    pilot length      the record's window, in days
    verdict           the record's: eligible > conditional > not_eligible, at least the band asked

A firm qualifies if one of its pilots' records meets every threshold the requirement sets; firms
are ranked by that record's score (their best), then availability. A record issued after the
requirement's matches were last shown (`checked_at`; stored after it: its transparency-log leaf's
time) is marked new.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from pilotlab.errors import RecordInvalid
from scoring.records import RECORD_FORMAT, verify
from store.requirements import BANDS, Requirement, latest_records


@dataclass(frozen=True)
class Evidence:
    """What one record shows of one device kind."""

    availability: float | None
    completeness: float | None
    qc_fail_share: float | None
    battery_ratio: float | None
    pilot_days: float
    verdict: str
    devices: int


@dataclass(frozen=True)
class Match:
    firm_id: str
    firm_name: str
    pilot_id: str
    record_id: str
    issued_at: datetime
    score: float
    evidence: Evidence
    new: bool


def _pooled(devices: list[dict[str, Any]], part: str, numerator: str, denominator: str) -> float | None:
    total = sum(d[part][denominator] or 0 for d in devices)
    return sum(d[part][numerator] or 0 for d in devices) / total if total else None


def evidence(record: dict[str, Any], kind: str) -> Evidence | None:
    """What the record shows of `kind`; None if it has no device of the kind (or no breakdown)."""
    devices = [d for d in record.get("evidence", {}).get("device_breakdowns") or [] if d.get("kind") == kind]
    if not devices:
        return None
    ratios = [d["battery"]["ratio"] for d in devices if d["battery"]["ratio"] is not None]
    window = record["window"]
    days = (datetime.fromisoformat(window["end"]) - datetime.fromisoformat(window["start"])).total_seconds() / 86400
    return Evidence(availability=_pooled(devices, "availability", "numerator", "denominator"),
                    completeness=_pooled(devices, "completeness", "numerator", "denominator"),
                    qc_fail_share=_pooled(devices, "qc", "fail", "counted"),
                    battery_ratio=sum(ratios) / len(ratios) if ratios else None,
                    pilot_days=days, verdict=record["verdict"], devices=len(devices))


def meets(r: Requirement, e: Evidence) -> bool:
    def at_least(value: float | None, floor: float | None) -> bool:
        return floor is None or (value is not None and value >= floor)

    return (at_least(e.availability, r.min_availability) and at_least(e.completeness, r.min_completeness)
            and (r.max_qc_fail_share is None or (e.qc_fail_share is not None and e.qc_fail_share <= r.max_qc_fail_share))
            and at_least(e.battery_ratio, r.min_battery_ratio) and at_least(e.pilot_days, r.min_pilot_days)
            and e.verdict in BANDS and BANDS.index(e.verdict) >= BANDS.index(r.min_verdict))


def matches(conn: psycopg.Connection, r: Requirement, public: Ed25519PublicKey) -> list[Match]:
    """The firms whose latest valid records meet `r`, best first: one match per firm (its best record)."""
    best: dict[str, Match] = {}
    for c in latest_records(conn, r.kind):
        try:
            record = verify(bytes(c.document), public)
        except RecordInvalid:
            continue  # not valid: never evidence
        if record.get("format") != RECORD_FORMAT:
            continue
        found = evidence(record, r.kind)
        if found is None or not meets(r, found):
            continue
        match = Match(c.firm_id, c.firm_name, c.pilot_id, c.record_id, c.issued_at, float(c.score), found,
                      new=r.checked_at is not None and c.recorded_at > r.checked_at)
        mine = best.get(c.firm_id)
        if mine is None or (match.score, match.issued_at) > (mine.score, mine.issued_at):
            best[c.firm_id] = match
    return sorted(best.values(), key=lambda m: (-m.score, -(m.evidence.availability or 0), m.firm_id))
