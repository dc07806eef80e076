"""The pilot scorecard's figures: one row per device from the scoring breakdown (scoring.breakdown,
as GET /pilots/{id}/score/devices gives it), and the score history as a plot's data.

The per-device breakdown is the one stored with the pilot's latest stored score
(scoring.stored_breakdowns), so the table and the stored verdict above it speak of the same days,
and a view reads it rather than computing it (~1 s for 1,000 devices x 14 days)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

import psycopg

from api.pages.pilot_query import LatestScore
from scoring import stored_breakdowns
from scoring.rubric import Rubric
from scoring.stored_breakdowns import HistoryEntry

HISTORY_SHOWN = 366


@dataclass(frozen=True)
class DeviceRow:
    device_id: str
    kind: str
    availability: float | None
    completeness: float | None
    latency_p50_s: float | None
    latency_p95_s: float | None
    qc_fail: dict[str, int]  # failed readings per QC test
    qc_fail_share: float | None
    rejected: int
    duplicates: int
    outages: int
    down_s: float
    battery_projected_days: float | None
    battery_claimed_days: float | None
    battery_ratio: float | None


def _row(b: dict[str, Any]) -> DeviceRow:
    qc, deliveries, battery = b["qc"], b["deliveries"], b["battery"]
    return DeviceRow(
        device_id=b["device_id"], kind=b["kind"], availability=b["availability"]["value"],
        completeness=b["completeness"]["value"], latency_p50_s=b["latency"]["p50_s"], latency_p95_s=b["latency"]["p95_s"],
        qc_fail={name: counts.get("fail", 0) for name, counts in qc["tests"].items()},
        qc_fail_share=qc["fail"] / qc["counted"] if qc["counted"] else None,
        rejected=deliveries["rejected"]["total"],
        duplicates=deliveries["duplicates"]["dropped_at_ingest"] + deliveries["duplicates"]["repeated_device_time"],
        outages=b["outages"]["count"], down_s=b["outages"]["down_s"],
        battery_projected_days=battery["projected_days"], battery_claimed_days=battery["claimed_days"],
        battery_ratio=battery["ratio"])


def latest_rows(conn: psycopg.Connection, pilot_id: str, rubric: Rubric, latest: LatestScore) -> list[DeviceRow]:
    """The device rows of the pilot's latest stored score: its stored breakdowns (stored with the
    score by the daily rescoring and `pilotlab score --save`). A score stored without them (before
    migration 0026, or by a writer that keeps none) has them computed here, as they would have been
    stored, and kept for the next views when `rubric` is the score's."""
    entry = HistoryEntry(pilot_id, latest.scored_on, latest.rubric_version, latest.scored_at)
    devices = stored_breakdowns.stored(conn, entry)
    if devices is None:
        devices = stored_breakdowns.computed(conn, pilot_id, rubric, latest.window_end)
        if rubric.version == latest.rubric_version:
            stored_breakdowns.keep(conn, entry, devices)
    return [_row(b) for b in devices]


def qc_tests(rows: list[DeviceRow]) -> list[str]:
    """The QC tests that failed a reading of some device: one column each (a pilot runs dozens)."""
    return sorted({name for row in rows for name, failed in row.qc_fail.items() if failed})


def history_plot(conn: psycopg.Connection, pilot_id: str, timezone: str) -> dict[str, Any]:
    """The stored daily scores, oldest first, at noon UTC of their day (one point a day)."""
    rows = conn.execute(
        "SELECT scored_on, score FROM (SELECT DISTINCT ON (scored_on) scored_on, score FROM score_history "
        "WHERE pilot_id = %s ORDER BY scored_on DESC, scored_at DESC LIMIT %s) h ORDER BY scored_on",
        (pilot_id, HISTORY_SHOWN)).fetchall()
    return {"x": [datetime.combine(day, time(12), UTC).timestamp() for day, _ in rows], "tz": timezone,
            "y_label": "score", "y_range": [0, 100],
            "series": [{"label": "Score", "values": [float(score) for _, score in rows], "color": "#1f6feb"}]}
