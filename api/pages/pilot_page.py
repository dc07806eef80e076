"""One pilot's scorecard (/ui/pilots/{pilot_id}): its registry entry; its latest stored score with
the verdict, each gate's value beside its threshold and the components; a sortable table of every
device's breakdown over that score's window (scorecard.py); the score history plotted; its records
to download. Another firm's pilot is 404 (guard)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.database import ScoringDb
from api.pages import pilot_query, scorecard
from api.pages.templates import render

router = APIRouter()


@router.get("/pilots/{pilot_id}")
def pilot_page(request: Request, pilot_id: str, conn: ScoringDb) -> Response:
    pilot = pilot_query.pilot(conn, pilot_id)
    latest = pilot_query.latest_score(conn, pilot_id)
    rows = [] if latest is None else scorecard.latest_rows(conn, pilot_id, request.app.state.scoring.rubric().rubric, latest)
    return render(request, "pilot.html", {"pilot": pilot, "latest": latest, "devices": rows,
                                          "qc_tests": scorecard.qc_tests(rows),
                                          "history": scorecard.history_plot(conn, pilot_id, pilot.timezone),
                                          "records": pilot_query.records(conn, pilot_id)})
