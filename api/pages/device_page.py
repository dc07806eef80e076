"""One device (/ui/devices/{device_id}): readings over the pilot's latest scored window with QC
fails and suspects marked, message arrivals with outages shaded, the battery trend with its
projection against the claimed life, recent dead letters and the newest conformance report's
checks (device_query.py). Another firm's device is 404 (guard)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.database import ScoringDb
from api.pages import device_query
from api.pages.templates import render

router = APIRouter()


@router.get("/devices/{device_id}")
def device_page(request: Request, device_id: str, conn: ScoringDb) -> Response:
    view = device_query.device(conn, device_id, request.app.state.scoring.rubric().rubric)
    return render(request, "device.html", {"d": view})
