"""Errors of the pages as pages: the same statuses as the API (pilotlab.errors.ANSWERS), a
sentence saying what to do, and the sign-in redirect."""

from __future__ import annotations

import logging
from urllib.parse import quote

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from api.pages.guard import PREFIX, SignInRequired
from api.pages.templates import render
from pilotlab.errors import PilotlabError, answer_for

log = logging.getLogger(__name__)


def _page(request: Request, status: int, detail: str) -> Response:
    return render(request, "error.html", {"status": status, "detail": detail}, status_code=status)


async def _sign_in(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    return RedirectResponse(f"{PREFIX}/signin?next={quote(exc.next_path)}", status_code=303)


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if exc.status_code != 404 or exc.detail != "Not Found" else "there is no such page"
    return _page(request, exc.status_code, str(detail))


async def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    fields = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3])
    return _page(request, 422, f"this address asks for something the page cannot show ({fields})")


async def _pilotlab(request: Request, exc: Exception) -> Response:
    status = answer_for(exc).http_status
    if status >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return _page(request, status, "the server cannot answer this now (its log says why); try again shortly")
    return _page(request, status, str(exc))


async def _database(request: Request, exc: Exception) -> Response:
    log.warning("%s %s: database: %s", request.method, request.url.path, exc)
    return _page(request, 503, "the database is unreachable; try again shortly")


def install(app: FastAPI) -> None:
    app.add_exception_handler(SignInRequired, _sign_in)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(PilotlabError, _pilotlab)
    for foreign in (psycopg.Error, PoolTimeout):
        app.add_exception_handler(foreign, _database)
