"""Demand-supply matching for city departments: save a requirement (a device kind and what its
pilots must have proved), list those saved, and see the firms whose latest valid signed records
meet one, ranked, each with its record's id (GET /records/{id}) and the evidence it was judged on
(api.matching). Admin and department keys only (access.policy)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from api import matching
from api.database import Db
from api.schemas import Problem
from devices.kinds import DeviceKind
from scoring.records import plain
from store import requirements

router = APIRouter(tags=["matching"], responses={404: {"model": Problem}, 422: {"model": Problem}})

Share = Annotated[float | None, Field(default=None, ge=0, le=1)]


class RequirementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, examples=["Air quality, school zones"])
    kind: DeviceKind
    min_availability: Share = None
    min_completeness: Share = None
    max_qc_fail_share: Share = None
    min_battery_ratio: float | None = Field(default=None, ge=0, description="projected battery life / claimed, at least")
    min_pilot_days: float | None = Field(default=None, ge=0, description="the record's window, days, at least")
    min_verdict: Literal["eligible", "conditional", "not_eligible"] = "conditional"


def requirement_json(r: requirements.Requirement) -> dict[str, Any]:
    return plain(asdict(r))


def match_json(m: matching.Match) -> dict[str, Any]:
    return plain({**asdict(m), "record_url": f"/records/{m.record_id}"})


@router.post("/requirements", status_code=201, summary="Save a requirement: a device kind and what its pilots must show")
def create_requirement(body: RequirementIn, conn: Db, request: Request) -> dict[str, Any]:
    principal = request.state.principal
    saved = requirements.create(conn, created_by=principal.key_id, **body.model_dump(mode="json"))
    return requirement_json(saved)


@router.get("/requirements", summary="Saved requirements, newest first")
def list_requirements(conn: Db) -> list[dict[str, Any]]:
    return [requirement_json(r) for r in requirements.all_requirements(conn)]


@router.get("/requirements/{requirement_id}/matches",
            summary="The firms whose latest valid signed records meet the requirement, best first")
def requirement_matches(requirement_id: Annotated[int, Path(ge=1)], conn: Db, request: Request) -> dict[str, Any]:
    r = requirements.get(conn, requirement_id)
    found = matching.matches(conn, r, request.app.state.scoring.private_key().public_key())
    return {"requirement": requirement_json(r), "matches": [match_json(m) for m in found]}
