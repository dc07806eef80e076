"""Every device's breakdown of a stored daily score, kept beside it (table score_device_breakdown)
so the scorecard reads one row instead of recomputing it from the day summaries: for a pilot of
1,000 devices x 14 days, ~1 s to compute against ~0.03 s to read (bench/pages.py; the row is
1.8 MB of JSON, 0.17 MB as stored).

The breakdowns are scoring.breakdown's dicts in device id order, as JSON with times in UTC RFC 3339
as scoring.records.plain writes them, but floats unrounded (and non-finite ones null): the page
shows exactly what it showed when it computed them, and `plain` of them is what the API and a
record's evidence carry. They belong to one storing of their score: each row
carries its score's `scored_at`, and a row whose `scored_at` is no longer its score's (the day was
scored again by a writer that keeps no breakdowns, e.g. scoring.scorer.save_history alone) is
never returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Json, set_json_loads

from scoring import breakdown
from scoring.ingest_counts import ingest_counts
from scoring.lpwa import delivery_ratios
from scoring.metrics import device_metrics
from scoring.rubric import Rubric
from scoring.scorer import PilotScore, save_history
from scoring.window import load_pilot, pilot_window


@dataclass(frozen=True)
class HistoryEntry:
    """One storing of a pilot's daily score: its score_history key and when it was stored."""

    pilot_id: str
    scored_on: date
    rubric_version: str
    scored_at: datetime


def save_score(conn: psycopg.Connection, score: PilotScore) -> date:
    """Keep the score as its day's history entry (scoring.scorer.save_history, replacing a rerun)
    with every device's breakdown, in one transaction: a reader sees both or neither."""
    with conn.transaction():
        day = save_history(conn, score)
        key = (score.window.pilot.id, day, score.rubric.rubric.version)
        row = conn.execute("SELECT scored_at FROM score_history WHERE pilot_id = %s AND scored_on = %s "
                           "AND rubric_version = %s", key).fetchone()
        assert row is not None  # written just above, in this transaction
        keep(conn, HistoryEntry(*key, scored_at=row[0]), score.device_breakdowns())
    return day


def keep(conn: psycopg.Connection, entry: HistoryEntry, devices: list[dict[str, Any]]) -> None:
    """Store `devices` (scoring.breakdown's dicts, or their stored form) as the breakdowns of
    `entry`, replacing those of an earlier storing; nothing if the score has been stored again
    since `entry` (they would be another score's)."""
    conn.execute(
        "INSERT INTO score_device_breakdown (pilot_id, scored_on, rubric_version, scored_at, devices) "
        "SELECT pilot_id, scored_on, rubric_version, scored_at, %s FROM score_history "
        "WHERE pilot_id = %s AND scored_on = %s AND rubric_version = %s AND scored_at = %s "
        "ON CONFLICT (pilot_id, scored_on, rubric_version) DO UPDATE SET scored_at = EXCLUDED.scored_at, "
        "devices = EXCLUDED.devices WHERE score_device_breakdown.scored_at < EXCLUDED.scored_at",
        (Json(devices, dumps=_json), entry.pilot_id, entry.scored_on, entry.rubric_version, entry.scored_at))


def stored(conn: psycopg.Connection, entry: HistoryEntry) -> list[dict[str, Any]] | None:
    """The breakdowns stored with `entry`, or None: a score stored before they were (migration
    0026), or stored again since by a writer that keeps none."""
    with conn.cursor() as cur:
        set_json_loads(orjson.loads, cur)  # 1,000 devices are 1.8 MB of JSON: 13 ms with orjson, 37 ms with json
        row = cur.execute(
            "SELECT devices FROM score_device_breakdown WHERE pilot_id = %s AND scored_on = %s AND rubric_version = %s "
            "AND scored_at = %s", (entry.pilot_id, entry.scored_on, entry.rubric_version, entry.scored_at)).fetchone()
    return None if row is None else list(row[0])


def computed(conn: psycopg.Connection, pilot_id: str, rubric: Rubric, window_end: datetime) -> list[dict[str, Any]]:
    """Every scored device's breakdown up to `window_end`, from the day summaries, as a daily score
    stores them: the metrics score_pilot computes, without what only a score needs (fleet pooling,
    daily counts, the evidence digest)."""
    pilot = load_pilot(conn, pilot_id)
    scored = pilot_window(conn, pilot, rubric, window_end).scored
    metrics = device_metrics(conn, rubric, scored, delivery_ratios(conn, scored), timezone=pilot.timezone,
                             ingest=ingest_counts(conn, scored))
    found: list[dict[str, Any]] = orjson.loads(_json([breakdown.device(m, breakdown.HISTOGRAM) for m in metrics]))
    return found


def _json(value: Any) -> bytes:
    """The stored form: JSON with exact floats (non-finite ones null) and times as plain writes them."""
    return orjson.dumps(value, default=_utc_time, option=orjson.OPT_PASSTHROUGH_DATETIME)


def _utc_time(value: object) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    raise TypeError(f"{type(value).__name__} is not JSON")
