"""One pilot (/ui/pilots/{pilot_id}): its registry entry, latest stored score with each gate's
value beside its threshold, and its records to download. Another firm's pilot is 404 (guard)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.database import Db
from api.pages import pilot_query
from api.pages.templates import render

router = APIRouter()


@router.get("/pilots/{pilot_id}")
def pilot_page(request: Request, pilot_id: str, conn: Db) -> Response:
    return render(request, "pilot.html", {"pilot": pilot_query.pilot(conn, pilot_id),
                                          "latest": pilot_query.latest_score(conn, pilot_id),
                                          "records": pilot_query.records(conn, pilot_id)})
