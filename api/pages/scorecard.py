"""The pilot scorecard's figures: one row per device from the scoring breakdown (scoring.breakdown,
as GET /pilots/{id}/score/devices gives it), and the score history as a plot's data.

The per-device breakdown is computed for the window of the pilot's latest stored score, so the
table and the stored verdict above it speak of the same days."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

import psycopg

from scoring import breakdown
from scoring.ingest_counts import ingest_counts
from scoring.lpwa import delivery_ratios
from scoring.metrics import device_metrics
from scoring.rubric import Rubric
from scoring.window import load_pilot, pilot_window

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


class _Recent:
    """The device rows of the last few stored scores shown, by (pilot, window end, when stored,
    rubric): computing them costs ~0.75 s for 1,000 devices x 14 days (bench/pages.py), and they
    change only when the pilot is scored again, which stores a new score."""

    SIZE = 16

    def __init__(self) -> None:
        self._rows: OrderedDict[tuple[str, datetime, datetime, str], list[DeviceRow]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, datetime, datetime, str]) -> list[DeviceRow] | None:
        with self._lock:
            if key in self._rows:
                self._rows.move_to_end(key)
            return self._rows.get(key)

    def put(self, key: tuple[str, datetime, datetime, str], rows: list[DeviceRow]) -> None:
        with self._lock:
            self._rows[key] = rows
            while len(self._rows) > self.SIZE:
                self._rows.popitem(last=False)


_RECENT = _Recent()


def stored_score_rows(conn: psycopg.Connection, pilot_id: str, rubric: Rubric, window_end: datetime,
                      scored_at: datetime) -> list[DeviceRow]:
    """device_rows for the stored score of `scored_at`, kept for the next views of the same score."""
    key = (pilot_id, window_end, scored_at, rubric.version)
    rows = _RECENT.get(key)
    if rows is None:
        rows = device_rows(conn, pilot_id, rubric, window_end)
        _RECENT.put(key, rows)
    return rows


def device_rows(conn: psycopg.Connection, pilot_id: str, rubric: Rubric, window_end: datetime) -> list[DeviceRow]:
    """Every scored device's breakdown up to `window_end`, from the daily summaries: the metrics
    score_pilot computes, without what only a score needs (fleet pooling, daily counts, the
    evidence digest)."""
    pilot = load_pilot(conn, pilot_id)
    scored = pilot_window(conn, pilot, rubric, window_end).scored
    metrics = device_metrics(conn, rubric, scored, delivery_ratios(conn, scored), timezone=pilot.timezone,
                             ingest=ingest_counts(conn, scored))
    return [_row(breakdown.device(m, breakdown.HISTOGRAM)) for m in metrics]


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
