"""The program's rolling plan over HTTP: an admin sets a year's plan; admin and department keys read
it beside what the year's pilots achieved (api.program_plan), as JSON or CSV (access.policy)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api import program_plan
from api.database import Db
from api.schemas import Problem
from devices.kinds import DeviceKind
from scoring.records import plain
from store import program_plans

router = APIRouter(tags=["plan"], responses={404: {"model": Problem}, 422: {"model": Problem}})

Year = Annotated[int, Path(ge=2000, le=2100, description="the program year (each pilot's calendar year, in its time zone)")]


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pilots: int = Field(ge=0, description="pilots expected to run in the year")
    devices: int = Field(ge=0, description="devices expected to be scored in them")
    stage4_firms: int = Field(ge=0, description="firms expected to reach stage 4 (an `eligible` signed record)")
    availability: dict[DeviceKind, Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=dict, description="target availability (a share, 0-1) by device kind", examples=[{"env_sensor": 0.95}])
    note: str = Field(default="", max_length=2000)


def plan_json(plan: program_plans.Plan) -> dict[str, Any]:
    return plain(asdict(plan))


def comparison(request: Request, conn: Db, year: int) -> program_plan.Comparison:
    scoring = request.app.state.scoring
    return program_plan.compare(conn, year, scoring.private_key().public_key(),
                                program_plan.rubric_chooser(scoring.rubric().rubric))


@router.put("/plans/{year}", summary="Set the program's plan for a year (replacing the one it had)")
def put_plan(year: Year, body: PlanIn, conn: Db, request: Request) -> dict[str, Any]:
    saved = program_plans.put(conn, year, pilots=body.pilots, devices=body.devices, stage4_firms=body.stage4_firms,
                              availability={k.value: v for k, v in body.availability.items()}, note=body.note,
                              updated_by=request.state.principal.key_id)
    return plan_json(saved)


@router.get("/plans", summary="Every year's plan, newest year first")
def list_plans(conn: Db) -> list[dict[str, Any]]:
    return [plan_json(p) for p in program_plans.all_plans(conn)]


@router.get("/plans/{year}", summary="A year's plan beside what its pilots achieved",
            description="`rows`: each measure planned and achieved and whether it was met; `pilots`: the year score of "
                        "each pilot run (its devices by kind, slots hit and slots); `stage4_firms`: each firm's "
                        "qualifying record. `plan` is null for a year without one. README, *Rolling plan*, defines "
                        "achieved.")
def get_comparison(year: Year, conn: Db, request: Request) -> dict[str, Any]:
    c = comparison(request, conn, year)
    return plain({
        "year": year, "plan": plan_json(c.plan) if c.plan else None,
        "rows": [{**asdict(r), "met": r.met} for r in c.rows],
        "achieved": {"pilots": len(c.pilots), "devices": sum(s.devices for s in c.pilots), "stage4_firms": len(c.stage4),
                     "availability": c.availability, "devices_by_kind": c.devices_by_kind},
        "pilots": [{"pilot_id": s.pilot_id, "pilot_name": s.pilot_name, "firm_id": s.firm_id, "scored_on": s.scored_on,
                    "window_start": s.window_start, "window_end": s.window_end, "rubric_version": s.rubric_version,
                    "score": s.score, "verdict": s.verdict, "devices": s.devices, "by_kind": s.by_kind} for s in c.pilots],
        "stage4_firms": [{**asdict(f), "record_url": f"/records/{f.record_id}"} for f in c.stage4],
    })


@router.get("/plans/{year}/csv", summary="A year's plan beside what its pilots achieved, as CSV",
            response_class=Response, responses={200: {"content": {"text/csv": {}}}},
            description=f"One line a measure: {', '.join(program_plan.CSV_HEADER)} (met: yes, no, or empty where "
                        "nothing was planned); shares with 6 decimals.")
def get_csv(year: Year, conn: Db, request: Request) -> Response:
    return csv_response(program_plan.as_csv(comparison(request, conn, year)), year)


def csv_response(text: str, year: int) -> Response:
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="pilotlab-plan-{year}.csv"',
                             "Cache-Control": "no-store"})
