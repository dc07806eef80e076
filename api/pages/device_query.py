"""One device's page figures: its readings over the pilot's latest scored window with each
reading's QC flag (scoring.metrics.reading_flags, the flags scoring counts), its breakdown
(outages, battery against the claim: scoring.breakdown over scoring.metrics.device_metrics for this
device alone), its recent dead letters and its newest conformance report's checks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from api.pages.pilot_query import latest_score
from conformance.runs import StoredReport, get_report, runs_of
from devices.kinds import DeviceKind
from pilotlab.errors import NotFound
from scoring import breakdown
from scoring.ingest_counts import ingest_counts
from scoring.lpwa import delivery_ratios
from scoring.metrics import device_metrics, reading_flags
from scoring.quality import FAIL, SUSPECT
from scoring.rubric import Rubric
from scoring.window import DeviceWindow, PilotInfo, load_pilot, pilot_window
from store.readings import KIND_NUMERIC, DeadLetter, list_dead_letters

DEAD_LETTERS_SHOWN = 20
COLOURS = ("#1f6feb", "#8250df", "#1a7f37", "#bf8700", "#0969da", "#cf222e", "#57606a")
QC_FAIL_COLOUR, QC_SUSPECT_COLOUR, BATTERY_COLOUR, PROJECTION_COLOUR, CLAIM_COLOUR = (
    "#d1242f", "#fb8500", "#1a7f37", "#57606a", "#8250df")


@dataclass(frozen=True)
class DeviceView:
    id: str
    pilot_id: str
    kind: str
    timezone: str
    window: DeviceWindow | None
    breakdown: dict[str, Any] | None
    readings: dict[str, Any]
    arrivals: dict[str, Any]
    battery: dict[str, Any]
    dead_letters: list[DeadLetter]
    conformance: StoredReport | None
    checks: list[dict[str, Any]]


def _window(conn: psycopg.Connection, device_id: str, rubric: Rubric) -> tuple[PilotInfo, str, DeviceWindow | None]:
    """The device's pilot, kind and scored window up to the pilot's latest stored score's window end
    (as the scorecard's table; now if none is stored); None if the device is not scored."""
    row = conn.execute("SELECT pilot_id, kind FROM device WHERE id = %s", (device_id,)).fetchone()
    if row is None:
        raise NotFound(f"no device with id {device_id!r}")
    pilot = load_pilot(conn, row[0])
    latest = latest_score(conn, pilot.id)
    as_of = latest.window_end if latest is not None else datetime.now(UTC)
    if as_of <= pilot.starts_at:  # a pilot not started yet (its devices' conformance runs come then): nothing scored
        return pilot, row[1], None
    found = [w for w in pilot_window(conn, pilot, rubric, as_of).devices if w.device.id == device_id]
    return pilot, row[1], found[0] if found and found[0].status == "scored" else None


def _plot(x: list[float], tz: str, y_label: str, series: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"x": x, "tz": tz, "y_label": y_label, "series": series, **extra}


GAP_FACTOR = 3  # readings further apart than this many intervals are not joined by a line


def _with_breaks(rows: list[dict[str, Any]], interval_s: float) -> list[dict[str, Any]]:
    """The rows with an empty one one interval after each reading followed by a gap, so the plot's
    lines stop at a gap instead of bridging it."""
    out: list[dict[str, Any]] = []
    for row in rows:
        if out and row["te"] - out[-1]["te"] > GAP_FACTOR * interval_s:
            out.append({"te": out[-1]["te"] + interval_s, "qc": None})
        out.append(row)
    return out


def _readings_plot(rows: list[dict[str, Any]], kind: str, tz: str, interval_s: float) -> dict[str, Any]:
    rows = _with_breaks(rows, interval_s)
    x = [r["te"] for r in rows]
    measured = [m for m in KIND_NUMERIC[DeviceKind(kind)] if m != "battery_pct" and any(r.get(m) is not None for r in rows)]
    series: list[dict[str, Any]] = [{"label": m, "values": [r.get(m) for r in rows], "color": COLOURS[i % len(COLOURS)]}
              for i, m in enumerate(measured)]
    first = measured[0] if measured else None  # marks sit on the first measurement's line
    for flag, label, colour in ((FAIL, "QC fail", QC_FAIL_COLOUR), (SUSPECT, "QC suspect", QC_SUSPECT_COLOUR)):
        marks = [(r.get(first) if first else 0) if r["qc"] == flag else None for r in rows]
        if any(v is not None for v in marks):
            series.append({"label": f"{label} ({sum(v is not None for v in marks)})", "values": marks,
                           "color": colour, "points_only": True})
    return _plot(x, tz, "reading", series)


def _arrivals_plot(rows: list[dict[str, Any]], outages: list[dict[str, Any]], tz: str) -> dict[str, Any]:
    shade = [[p["start"].timestamp() if isinstance(p["start"], datetime) else p["start"],
              p["end"].timestamp() if isinstance(p["end"], datetime) else p["end"]] for p in outages]
    return _plot([r["te"] for r in rows], tz, "seconds late",
                 [{"label": "arrival (ingest − device time, s)", "values": [r["latency_s"] for r in rows],
                   "color": COLOURS[0], "points_only": True}], shade=shade)


def _battery_plot(rows: list[dict[str, Any]], battery: dict[str, Any], tz: str) -> dict[str, Any]:
    """Battery readings over the window, with two straight lines across it: the fitted trend
    (scoring's slope, through the last reading) and the decline the claimed life allows (100 % over
    the claimed days, from the first reading). A trend steeper than the claim's line falls short."""
    measured = {r["te"]: r["battery_pct"] for r in rows if r.get("battery_pct") is not None}
    if not measured:
        return _plot([], tz, "battery %", [])
    (t0, b0), (t1, b1) = min(measured.items()), max(measured.items())
    slope, claimed_days = battery.get("slope_pct_per_day"), battery.get("claimed_days")
    trend = {t: b1 + slope * (t - t1) / 86400 for t in (t0, t1)} if slope is not None else {}
    claimed = {t: b0 - 100 / claimed_days * (t - t0) / 86400 for t in (t0, t1)} if claimed_days else {}
    xs = sorted(measured)
    return _plot(xs, tz, "battery %", [
        {"label": "battery %", "values": [measured.get(t) for t in xs], "color": BATTERY_COLOUR},
        {"label": "trend", "values": [trend.get(t) for t in xs], "color": PROJECTION_COLOUR, "dash": True},
        {"label": "claimed life's rate", "values": [claimed.get(t) for t in xs], "color": CLAIM_COLOUR, "dash": True},
    ])


def device(conn: psycopg.Connection, device_id: str, rubric: Rubric) -> DeviceView:
    pilot, kind, window = _window(conn, device_id, rubric)
    tz = pilot.timezone
    rows: list[dict[str, Any]] = []
    found: dict[str, Any] | None = None
    if window is not None:
        rows = reading_flags(conn, rubric, window)
        metrics = device_metrics(conn, rubric, [window], delivery_ratios(conn, [window]), timezone=tz,
                                 ingest=ingest_counts(conn, [window]))
        found = breakdown.device(metrics[0], breakdown.HISTOGRAM)
    letters, _ = list_dead_letters(conn, device_id=device_id, limit=DEAD_LETTERS_SHOWN)
    runs = [r for r in runs_of(conn, [device_id]) if r.report_id is not None]
    report = get_report(conn, runs[0].report_id) if runs and runs[0].report_id else None
    # the report as signed ({"record": report, "signature": ...}: conformance.report.sign_report)
    checks = json.loads(report.document)["record"].get("checks", []) if report is not None else []
    return DeviceView(id=device_id, pilot_id=pilot.id, kind=kind, timezone=tz, window=window, breakdown=found,
                      readings=_readings_plot(rows, kind, tz, window.device.reporting_interval_s if window else 60),
                      arrivals=_arrivals_plot(rows, found["outages"]["periods"] if found else [], tz),
                      battery=_battery_plot(rows, found["battery"] if found else {}, tz),
                      dead_letters=letters, conformance=report, checks=checks)
