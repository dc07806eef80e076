"""Demand-supply matching for city departments (/ui/matching): a form to write a requirement,
the requirements saved, and one requirement's matching firms ranked (/ui/matching/{id}), each
linked to its record file and its pilot's scorecard, records issued since the last look marked
new (api.matching, as GET /requirements/{id}/matches). Percentages in the form, shares stored."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from api import matching
from api.database import Db
from api.pages.guard import PREFIX
from api.pages.templates import render
from api.routes.matching import RequirementIn
from devices.kinds import DeviceKind
from store import requirements

router = APIRouter()
PERCENT_FIELDS = ("min_availability", "min_completeness", "max_qc_fail_share", "min_battery_ratio")


def _form(request: Request, conn: Db, error: str | None = None, values: dict[str, str] | None = None,
          status_code: int = 200) -> Response:
    return render(request, "matching.html", {"kinds": [k.value for k in DeviceKind], "bands": requirements.BANDS,
                                             "saved": requirements.all_requirements(conn), "error": error,
                                             "values": values or {}}, status_code=status_code)


@router.get("/matching")
def matching_form(request: Request, conn: Db) -> Response:
    return _form(request, conn)


@router.post("/matching")
def save_requirement(request: Request, conn: Db, name: Annotated[str, Form()] = "", kind: Annotated[str, Form()] = "",
                     min_availability: Annotated[str, Form()] = "", min_completeness: Annotated[str, Form()] = "",
                     max_qc_fail_share: Annotated[str, Form()] = "", min_battery_ratio: Annotated[str, Form()] = "",
                     min_pilot_days: Annotated[str, Form()] = "", min_verdict: Annotated[str, Form()] = "") -> Response:
    values = {"name": name, "kind": kind, "min_availability": min_availability, "min_completeness": min_completeness,
              "max_qc_fail_share": max_qc_fail_share, "min_battery_ratio": min_battery_ratio,
              "min_pilot_days": min_pilot_days, "min_verdict": min_verdict}
    try:
        given = {k: (float(v) / 100 if k in PERCENT_FIELDS else float(v) if k == "min_pilot_days" else v)
                 for k, v in values.items() if v.strip()}
        body = RequirementIn.model_validate(given)
    except ValueError as exc:
        reason = ("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                  if isinstance(exc, ValidationError) else "thresholds must be numbers")
        return _form(request, conn, reason, values, status_code=422)
    saved = requirements.create(conn, created_by=request.state.page_session.principal.key_id,
                                **body.model_dump(mode="json"))
    return RedirectResponse(f"{PREFIX}/matching/{saved.id}", status_code=303)


@router.get("/matching/{requirement_id}")
def requirement_page(request: Request, requirement_id: int, conn: Db) -> Response:
    r = requirements.get(conn, requirement_id)
    found = matching.matches(conn, r, request.app.state.scoring.private_key().public_key())
    requirements.mark_checked(conn, requirement_id)
    return render(request, "requirement.html", {"r": r, "matches": found})
