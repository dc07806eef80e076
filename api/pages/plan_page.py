"""The program's rolling plan (/ui/plan?year=Y, for admins and city departments): the year's plan
beside what its pilots achieved (api.program_plan, as GET /plans/{year}), the pilots and firms
counted, the years planned, and the same as CSV (/ui/plan/csv?year=Y, as GET /plans/{year}/csv).
Without ?year: the current year (UTC)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from api import program_plan
from api.database import Db
from api.pages.templates import render
from api.routes.plans import comparison, csv_response
from store import program_plans

router = APIRouter()
PageYear = Annotated[int | None, Query(ge=2000, le=2100)]


def _year(year: int | None) -> int:
    return year if year is not None else datetime.now(UTC).year


@router.get("/plan")
def plan_page(request: Request, conn: Db, year: PageYear = None) -> Response:
    shown = _year(year)
    return render(request, "plan.html", {"c": comparison(request, conn, shown),
                                         "years": [p.year for p in program_plans.all_plans(conn)]})


@router.get("/plan/csv")
def plan_csv(request: Request, conn: Db, year: PageYear = None) -> Response:
    shown = _year(year)
    return csv_response(program_plan.as_csv(comparison(request, conn, shown)), shown)
