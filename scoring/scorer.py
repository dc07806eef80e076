"""Score a pilot: window -> per-device metrics (from daily summaries) -> fleet verdict -> record body; history.

`score_pilot` is what the CLI (`pilotlab score`), the API and the daily rescoring call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from pilotlab import __version__
from scoring import breakdown
from scoring.commands import SwitchCommands, switch_commands
from scoring.daily import device_parts
from scoring.evidence import daily_counts, daily_counts_from_parts, evidence_digest
from scoring.fleet import FleetScore, aggregate
from scoring.ingest_counts import ingest_counts
from scoring.latency import exact_latencies
from scoring.lpwa import delivery_ratios, loss_table_present
from scoring.metrics import DeviceMetrics, metrics_from_parts, raw_device_metrics
from scoring.records import RECORD_FORMAT, plain
from scoring.residents import ResidentsFeedback, residents_feedback
from scoring.rubric import LoadedRubric
from scoring.window import PilotWindow, load_pilot, local_day, local_midnight, pilot_window

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class PilotScore:
    window: PilotWindow
    rubric: LoadedRubric
    devices: list[DeviceMetrics]
    fleet: FleetScore
    daily_counts: list[list[Any]]
    evidence_sha256: str
    delivery_ratio_source: str | None
    latency_method: str  # scoring.breakdown: HISTOGRAM or EXACT
    residents: ResidentsFeedback | None = None  # rubric v3: residents' feedback of the window
    commands: SwitchCommands | None = None  # the switches' command round trip (None: no switch scored)

    def fleet_breakdown(self) -> dict[str, Any]:
        return breakdown.fleet(self.devices, self.fleet, self.latency_method,
                               self.commands.fleet.breakdown() if self.commands else None)

    def device_breakdowns(self) -> list[dict[str, Any]]:
        per_switch = self.commands.per_switch if self.commands else {}
        return [breakdown.device(m, self.latency_method,
                                 per_switch[m.device_id].breakdown() if m.device_id in per_switch else None)
                for m in self.devices]


def default_as_of(conn: psycopg.Connection, pilot_id: str, now: datetime | None = None) -> datetime:
    """The start of today in the pilot's time zone: a same-day rescoring sees the same window."""
    pilot = load_pilot(conn, pilot_id)
    return local_midnight(now or datetime.now(UTC), pilot.timezone)


def score_pilot(conn: psycopg.Connection, pilot_id: str, rubric: LoadedRubric, *, as_of: datetime | None = None,
                progress: Progress | None = None, raw: bool = False, exact: bool = False) -> PilotScore:
    """Score the pilot from per-day summaries (built for any closed day that lacks one), or with
    `raw` from one pass over the raw readings (the reference; exact percentiles, much slower).
    With `exact` (a signed record) the latency percentiles are the exact ones, read from the raw
    rows (scoring.latency), and so are the figures built on them (timeliness, score, verdict)."""
    pilot = load_pilot(conn, pilot_id)
    end = as_of or local_midnight(datetime.now(UTC), pilot.timezone)
    if as_of is None and end <= pilot.starts_at:  # started today: score up to the current minute
        end = datetime.now(UTC).replace(second=0, microsecond=0)
    window = pilot_window(conn, pilot, rubric.rubric, end)
    scored = window.scored
    ratios = delivery_ratios(conn, scored)
    ingest = ingest_counts(conn, scored)
    if raw:
        metrics = raw_device_metrics(conn, rubric.rubric, scored, ratios, progress=progress, ingest=ingest)
        counts = daily_counts(conn, scored, pilot.timezone)
    else:
        parts = device_parts(conn, rubric.rubric, pilot.timezone, scored, datetime.now(UTC), progress)
        metrics = metrics_from_parts(rubric.rubric, scored, parts, ratios, ingest)
        counts = daily_counts_from_parts(parts)
        if exact:
            found = exact_latencies(conn, rubric.rubric, scored)
            metrics = [replace(m, latency_p50_s=found[m.device_id][0], latency_p95_s=found[m.device_id][1])
                       if m.device_id in found else m for m in metrics]
    residents = (None if rubric.rubric.residents is None else
                 residents_feedback(conn, pilot.id, window.start, window.end, rubric.rubric.residents))
    commands = switch_commands(conn, scored)
    command_rules = rubric.rubric.switch_commands
    fleet = aggregate(rubric.rubric, window, metrics, residents=None if residents is None else residents.component,
                      switch_commands=commands.component(command_rules.min_commands)
                      if commands is not None and command_rules is not None else None)
    device_rows = [plain(m) for m in metrics]
    digest = evidence_digest(device_rows, counts, commands.evidence_rows() if commands is not None else None)
    return PilotScore(window, rubric, metrics, fleet, counts, digest,
                      "uplink_loss_hourly" if loss_table_present(conn) else None,
                      breakdown.EXACT if raw or exact else breakdown.HISTOGRAM, residents, commands)


def record_body(score: PilotScore, issued_at: datetime) -> dict[str, Any]:
    """The reference record before signing (see scoring.records)."""
    w, p, f = score.window, score.window.pilot, score.fleet
    return plain({
        "format": RECORD_FORMAT,
        "pilot": {"id": p.id, "name": p.name, "site": p.site, "stage": p.stage, "timezone": p.timezone},
        "firm": {"id": p.firm_id, "name": p.firm_name},
        "window": {"start": w.start, "end": w.end},
        "fleet": f.fleet,
        "metrics": f.pooled,
        "components": f.components,
        "gates": f.gates,
        "score": f.score,
        "verdict": f.verdict,
        "rubric": {"version": score.rubric.rubric.version, "sha256": score.rubric.sha256},
        "evidence": {"sha256": score.evidence_sha256, "devices": len(score.devices),
                     "daily_counts": len(score.daily_counts),
                     "delivery_ratio_source": score.delivery_ratio_source,
                     "fleet_breakdown": score.fleet_breakdown(), "device_breakdowns": score.device_breakdowns(),
                     **_residents(score)},
        "software": {"name": "pilotlab", "version": __version__},
        "issued_at": issued_at,
    })


def summary(score: PilotScore) -> dict[str, Any]:
    """Score, verdict, pooled metrics, gates and the fleet's breakdown: what the API lists and
    history keeps."""
    f = score.fleet
    return plain({"pilot_id": score.window.pilot.id, "window": {"start": score.window.start, "end": score.window.end},
                  "timezone": score.window.pilot.timezone, "rubric_version": score.rubric.rubric.version,
                  "score": f.score, "verdict": f.verdict, "fleet": f.fleet, "metrics": f.pooled,
                  "components": f.components, "gates": f.gates, "breakdown": score.fleet_breakdown(),
                  **_residents(score)})


def _residents(score: PilotScore) -> dict[str, Any]:
    """`residents`: the feedback the residents' component was computed from (rubric v3), else nothing."""
    return {} if score.residents is None else {"residents": score.residents.evidence()}


def save_history(conn: psycopg.Connection, score: PilotScore) -> date:
    """Keep the score as the pilot's entry for the local day its window ends on (replacing a rerun)."""
    pilot = score.window.pilot
    day = local_day(score.window.end, pilot.timezone)
    with conn.transaction():
        conn.execute(
            "INSERT INTO score_history (pilot_id, scored_on, rubric_version, window_start, window_end, score, verdict, summary) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (pilot_id, scored_on, rubric_version) DO UPDATE SET window_start = EXCLUDED.window_start, "
            "window_end = EXCLUDED.window_end, score = EXCLUDED.score, verdict = EXCLUDED.verdict, "
            "summary = EXCLUDED.summary, scored_at = now()",
            (pilot.id, day, score.rubric.rubric.version, score.window.start, score.window.end,
             round(score.fleet.score, 6), score.fleet.verdict, Jsonb(summary(score))))
    return day


def history(conn: psycopg.Connection, pilot_id: str, limit: int = 366) -> list[dict[str, Any]]:
    load_pilot(conn, pilot_id)
    rows = conn.execute(
        "SELECT scored_on, rubric_version, window_start, window_end, score, verdict, scored_at FROM score_history "
        "WHERE pilot_id = %s ORDER BY scored_on DESC, rubric_version LIMIT %s", (pilot_id, limit)).fetchall()
    keys = ("scored_on", "rubric_version", "window_start", "window_end", "score", "verdict", "scored_at")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def running_pilots(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT id FROM pilot WHERE status = 'running' ORDER BY id")]
