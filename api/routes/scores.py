"""Scores for reviewers: each pilot's current score and verdict with the fleet's breakdown, the
per-device breakdown (scoring.breakdown: numerators and denominators, QC per test, duplicates,
rejected messages, outages and quality incidents), the daily score history, and the scoring
settings (pilot time zone, claimed battery life). Latency percentiles here are histogram figures
(within 1 %, labelled `method`); a signed record carries exact ones.

Scores are computed from telemetry on request (`as_of` default: start of today in the pilot's time
zone; bounded, see scoring.window: 422 for a window in the future or too long), at most
api.database.SCORING_SLOTS at once; `/scores` lists the latest daily rescoring of every pilot
(scoring.schedule).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime, BaseModel, Field

from api.database import Db, ScoringDb
from api.schemas import DeviceScoresOut, Problem, ScoreOut
from scoring.records import plain
from scoring.rubric import LoadedRubric
from scoring.scorer import history, score_pilot, summary
from scoring.window import load_pilot, zone
from store import registry

router = APIRouter(tags=["scores"], responses={404: {"model": Problem}, 422: {"model": Problem}})

AsOf = Annotated[AwareDatetime | None, Query(description="window end, up to now (past the pilot's end: its end); "
                                                         "default: start of today in the pilot's time zone")]


def rubric_of(request: Request) -> LoadedRubric:
    loaded: LoadedRubric = request.app.state.scoring.rubric()
    return loaded


class TimezoneIn(BaseModel):
    timezone: str = Field(examples=["Asia/Seoul"], description="IANA time zone: days and daily counts use it")


class BatteryClaimIn(BaseModel):
    claimed_battery_days: float | None = Field(gt=0, description="battery life the firm claims, days; null: mains powered")


@router.get("/scores", summary="Every pilot with its latest daily score and verdict")
def list_scores(conn: Db) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT p.id, p.firm_id, p.status, p.timezone, h.scored_on, h.rubric_version, h.score, h.verdict "
        "FROM pilot p LEFT JOIN LATERAL (SELECT * FROM score_history s WHERE s.pilot_id = p.id "
        "ORDER BY scored_on DESC, scored_at DESC LIMIT 1) h ON true ORDER BY p.id").fetchall()
    keys = ("pilot_id", "firm_id", "status", "timezone", "scored_on", "rubric_version", "score", "verdict")
    return [plain(dict(zip(keys, row, strict=True))) for row in rows]


@router.get("/pilots/{pilot_id}/score", response_model=ScoreOut,
            summary="The pilot's score, verdict, pooled metrics, gates and the fleet's breakdown, computed now")
def pilot_score(pilot_id: str, conn: ScoringDb, request: Request, as_of: AsOf = None) -> dict[str, Any]:
    return summary(score_pilot(conn, pilot_id, rubric_of(request), as_of=as_of))


@router.get("/pilots/{pilot_id}/score/devices", response_model=DeviceScoresOut,
            summary="Per-device breakdown: every metric of every device, and what each figure is made of")
def pilot_devices(pilot_id: str, conn: ScoringDb, request: Request, as_of: AsOf = None) -> dict[str, Any]:
    result = score_pilot(conn, pilot_id, rubric_of(request), as_of=as_of)
    statuses = [{"device_id": d.device.id, "kind": d.device.kind, "status": d.status,
                 "window_start": d.start, "window_end": d.end} for d in result.window.devices]
    return plain({"pilot_id": pilot_id, "window": {"start": result.window.start, "end": result.window.end},
                  "devices": statuses, "metrics": result.devices, "breakdown": result.device_breakdowns()})


@router.get("/pilots/{pilot_id}/score/history", summary="Daily score history (newest first)")
def score_history(pilot_id: str, conn: Db, limit: Annotated[int, Query(ge=1, le=3660)] = 366) -> list[dict[str, Any]]:
    return [plain(row) for row in history(conn, pilot_id, limit)]


@router.put("/pilots/{pilot_id}/timezone", summary="Set the pilot's time zone (days and daily counts)")
def set_timezone(pilot_id: str, body: TimezoneIn, conn: Db) -> dict[str, str]:
    zone(body.timezone)  # InvalidRequest -> 422 naming the zone
    load_pilot(conn, pilot_id)
    conn.execute("UPDATE pilot SET timezone = %s WHERE id = %s", (body.timezone, pilot_id))
    return {"pilot_id": pilot_id, "timezone": body.timezone}


@router.put("/devices/{device_id}/battery-claim", summary="Set the battery life the firm claims for a device")
def set_battery_claim(device_id: str, body: BatteryClaimIn, conn: Db) -> dict[str, Any]:
    registry.get(conn, registry.DEVICES, device_id)
    conn.execute("UPDATE device SET claimed_battery_days = %s WHERE id = %s", (body.claimed_battery_days, device_id))
    return {"device_id": device_id, "claimed_battery_days": body.claimed_battery_days}
