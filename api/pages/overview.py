"""The pilots overview (/ui/pilots): every pilot the session may see, filtered by firm, device
kind and status, with its latest stored score, verdict band, gates and newest record."""

from __future__ import annotations

from typing import Annotated, get_args

from fastapi import APIRouter, HTTPException, Query, Request
from starlette.responses import Response

from api.database import Db
from api.pages.overview_query import PAGE_SIZE, Filters, pilot_rows, visible_firms
from api.pages.templates import render
from api.schemas import PilotStatus
from devices.kinds import DeviceKind

router = APIRouter()
KINDS = [k.value for k in DeviceKind]
STATUSES = list(get_args(PilotStatus))


def _choice(name: str, given: str, allowed: list[str]) -> str | None:
    """A filter's value ("" from a form's "any" option: no filter); 422 for one not offered."""
    if given and given not in allowed:
        raise HTTPException(422, f"no {name} {given!r}: choose one of {', '.join(allowed)}")
    return given or None


@router.get("/pilots")
def overview(request: Request, conn: Db, firm: Annotated[str, Query(max_length=64)] = "",
             kind: Annotated[str, Query(max_length=64)] = "", status: Annotated[str, Query(max_length=64)] = "",
             page: Annotated[int, Query(ge=1, le=10_000)] = 1) -> Response:
    principal = request.state.page_session.principal
    filters = Filters(firm or None, _choice("device kind", kind, KINDS), _choice("status", status, STATUSES))
    rows, more = pilot_rows(conn, principal, filters, offset=(page - 1) * PAGE_SIZE)
    return render(request, "overview.html", {
        "rows": rows, "more": more, "page": page, "filters": filters, "firms": visible_firms(conn, principal),
        "kinds": KINDS, "statuses": STATUSES})
