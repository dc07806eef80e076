"""A device's conformance runs and reports (/ui/devices/{device_id}/conformance, linked from the
device page): its history, the newest report's checks with what to fix (conformance_query.py), a
form to start a run, a button to make a due run's report, and the report files to download (the
signed report, or its bundle), which /ui/verify checks offline.

The same work and the same roles as the API's conformance endpoints (api.routes.conformance;
access.policy.PAGES takes their rules): starting is conformance.runs.start, making the report is
conformance.runs.finish (the API makes it at the first read after the run's end). Another firm's
device, run or report is 404 (guard)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from access.policy import page_rule_for
from api.database import Db
from api.pages import conformance_query
from api.pages.guard import PREFIX
from api.pages.templates import render
from conformance import runs
from conformance.thresholds import load_thresholds
from pilotlab.errors import PilotlabError, answer_for

router = APIRouter()
MAX_DURATION_S = 7 * 86_400  # as the API's duration_s


def _page(request: Request, conn: Db, device_id: str, error: str | None = None, status_code: int = 200) -> Response:
    start_rule = page_rule_for("POST", f"{PREFIX}/devices/{{device_id}}/conformance/runs")
    can_start = start_rule is not None and request.state.page_session.principal.role in start_rule.roles
    return render(request, "conformance.html", {"c": conformance_query.conformance(conn, device_id),
                                                "can_start": can_start, "error": error,
                                                "max_duration_s": MAX_DURATION_S}, status_code=status_code)


def _refused(request: Request, conn: Db, device_id: str, exc: PilotlabError) -> Response:
    return _page(request, conn, device_id, str(exc), answer_for(exc).http_status)


@router.get("/devices/{device_id}/conformance")
def conformance_page(request: Request, device_id: str, conn: Db) -> Response:
    return _page(request, conn, device_id)


@router.post("/devices/{device_id}/conformance/runs")
def start_run(request: Request, device_id: str, conn: Db, duration_s: Annotated[str, Form()] = "") -> Response:
    try:
        seconds = int(duration_s)
    except ValueError:
        seconds = 0
    if not 1 <= seconds <= MAX_DURATION_S:
        return _page(request, conn, device_id, f"the duration must be 1-{MAX_DURATION_S} whole seconds "
                                               f"(got {duration_s!r})", status_code=422)
    try:
        runs.start(conn, [device_id], seconds, load_thresholds())
    except PilotlabError as exc:
        return _refused(request, conn, device_id, exc)
    return RedirectResponse(f"{PREFIX}/devices/{device_id}/conformance", status_code=303)


@router.post("/conformance/runs/{run_id}/finish")
def finish_run(request: Request, run_id: str, conn: Db) -> Response:
    run = runs.get_run(conn, run_id)
    try:
        runs.finish(conn, run_id, request.app.state.scoring.private_key())
    except PilotlabError as exc:
        return _refused(request, conn, run.device_id, exc)
    return RedirectResponse(f"{PREFIX}/devices/{run.device_id}/conformance#report", status_code=303)


@router.get("/conformance/reports/{report_id}")
def report_file(request: Request, report_id: str, conn: Db, bundle: Annotated[bool, Query()] = False) -> Response:
    if bundle:
        document = runs.report_bundle(conn, report_id, request.app.state.scoring.private_key)
        name = f"pilotlab-conformance-{report_id[:16]}.bundle.json"
    else:
        document = runs.get_report(conn, report_id).document
        name = f"pilotlab-conformance-{report_id[:16]}.json"
    return Response(document, media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})
