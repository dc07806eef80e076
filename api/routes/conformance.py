"""Onboarding conformance over HTTP (conformance/, issue 17): start runs, follow them, fetch the
signed reports, and a pilot's requirement of a passed report before commissioning.

A run needs no connection of the API's while it lasts: the device publishes, ingest stores, and
the first read of the run after its end (or `pilotlab conformance finish`) judges what was stored
and signs the report with the records' key. A firm key runs and reads its own devices only
(access.policy; ids outside its scope answer as ids that do not exist, api.auth).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.database import Db
from api.routes.transparency import TreeSize
from api.schemas import Id, Problem
from conformance import runs
from conformance.thresholds import load_thresholds
from scoring.records import plain

router = APIRouter(tags=["conformance"], responses={404: {"model": Problem}, 422: {"model": Problem}})


class ConformanceRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device_ids: Annotated[list[Id], Field(min_length=1, max_length=runs.MAX_DEVICES,
                                          description="the devices to observe, all over the same window")]
    duration_s: int | None = Field(default=None, ge=1, le=7 * 86_400,
                                   description="how long to observe; default: the conformance profile's (900 s)")


class ConformanceRequirement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    required: bool = Field(description="a device of the pilot is commissioned only with a passed conformance report")


def _run(run: runs.Run) -> dict[str, Any]:
    return plain({**runs.run_json(run), "url": f"/conformance/runs/{run.id}",
                  "report_url": f"/conformance/reports/{run.report_id}" if run.report_id else None})


@router.post("/conformance/runs", status_code=202, summary="Start a conformance run of devices",
             description="Observes each device from now for `duration_s` through the ordinary ingest path: let it "
                         "publish as it will in the pilot. Its signed report is made at the first read of the run "
                         "after `report_due`. 422 if a device reports too seldom for the duration (a run lasts at "
                         "least the conformance profile's `run.min_intervals` reporting intervals); 409 for a "
                         "decommissioned device.")
def start_runs(body: ConformanceRunIn, conn: Db) -> list[dict[str, Any]]:
    thresholds = load_thresholds()
    seconds = body.duration_s or thresholds.thresholds.run.default_duration_s
    return [_run(r) for r in runs.start(conn, body.device_ids, seconds, thresholds)]


@router.get("/conformance/runs/{run_id}", summary="A conformance run: running, passed or failed",
            description="After `report_due` the first read judges the run and signs its report (then `report_url`).")
def get_run(run_id: str, conn: Db, request: Request) -> dict[str, Any]:
    return _run(runs.finish_if_due(conn, runs.get_run(conn, run_id), request.app.state.scoring.private_key))


@router.get("/conformance/reports/{report_id}", summary="A signed conformance report, byte for byte; or its bundle",
            description="The report in the records' form (RFC 8785 JSON signed with the records' key, GET "
                        "/records/public-key); with `bundle=true` also its inclusion proof in the transparency log and "
                        "the signed tree head (`tree_size`, default the newest). `pilotlab conformance verify FILE "
                        "--key KEY` checks either offline.")
def get_report(report_id: str, conn: Db, request: Request, bundle: bool = False, tree_size: TreeSize = None) -> Response:
    if bundle:
        return Response(runs.report_bundle(conn, report_id, request.app.state.scoring.private_key, tree_size),
                        media_type="application/json")
    return Response(runs.get_report(conn, report_id).document, media_type="application/json")


@router.get("/devices/{device_id}/conformance", summary="A device's conformance runs and reports, newest first")
def device_history(device_id: str, conn: Db, request: Request) -> dict[str, Any]:
    from conformance.observations import load_device

    load_device(conn, device_id)
    history = [runs.finish_if_due(conn, r, request.app.state.scoring.private_key) for r in runs.runs_of(conn, [device_id])]
    return {"device_id": device_id, "passed": any(r.passed for r in history), "runs": [_run(r) for r in history]}


@router.get("/pilots/{pilot_id}/conformance", summary="Whether the pilot requires a passed conformance report")
def get_requirement(pilot_id: str, conn: Db) -> dict[str, Any]:
    return {"pilot_id": pilot_id, "required": runs.requirement(conn, pilot_id)}


@router.put("/pilots/{pilot_id}/conformance", summary="Require (or not) a passed conformance report before commissioning",
            description="While required, registering a device of the pilot, or setting its `commissioned_at`, to a "
                        "time not in the future is refused (409) until the device has a passed report.")
def put_requirement(pilot_id: str, body: ConformanceRequirement, conn: Db) -> dict[str, Any]:
    return {"pilot_id": pilot_id, "required": runs.require(conn, pilot_id, body.required)}
