"""Errors to HTTP answers: every failure is `{"detail": "..."}` saying what to fix.

    NotFound                          404
    Conflict (id taken, referenced)   409
    UnknownReference, InvalidValue    422   (the body names something absent or inconsistent)
    request validation                422   plus `errors: [{field, message}]`
    psycopg IntegrityError            409   (a rule the store did not translate)
    statement timeout                 503   (the request's work ran past Settings.api_statement_timeout_s)
    database unreachable              503

Tracebacks are logged for bugs only, never sent.
"""

from __future__ import annotations

import logging

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout

from pilotlab.errors import Conflict, NotFound, ServiceUnavailable
from store.registry import InvalidValue, UnknownReference

log = logging.getLogger(__name__)


def _problem(status: int, detail: str, errors: list[dict[str, str]] | None = None) -> JSONResponse:
    body: dict[str, object] = {"detail": detail}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(status_code=status, content=body)


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [{"field": _field(tuple(e["loc"])), "message": str(e["msg"]).removeprefix("Value error, ")}
              for e in exc.errors()]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:3])
    if len(errors) > 3:
        summary += f" (and {len(errors) - 3} more)"
    return _problem(422, f"invalid request: {summary}", errors)


async def _not_found(_: Request, exc: Exception) -> JSONResponse:
    return _problem(404, str(exc))


async def _conflict(_: Request, exc: Exception) -> JSONResponse:
    status = 422 if isinstance(exc, (UnknownReference, InvalidValue)) else 409
    return _problem(status, str(exc))


async def _integrity(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, psycopg.IntegrityError)
    return _problem(409, f"the database refused the change: {exc.diag.message_primary}")


async def _data_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, psycopg.DataError)
    return _problem(422, f"a value cannot be stored: {exc.diag.message_primary or exc}")


async def _timed_out(request: Request, exc: Exception) -> JSONResponse:
    limit = request.app.state.settings.api_statement_timeout_s
    log.warning("%s %s: a statement ran past the %g s statement timeout", request.method, request.url.path, limit)
    return _problem(503, f"the request's database work ran past the {limit:g} s limit "
                         f"(PILOTLAB_API_STATEMENT_TIMEOUT_S); narrow the request or try again later")


async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", exc)
    return _problem(503, "the database is unreachable; try again shortly")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(Conflict, _conflict)
    app.add_exception_handler(psycopg.IntegrityError, _integrity)
    app.add_exception_handler(psycopg.DataError, _data_error)
    app.add_exception_handler(psycopg.errors.QueryCanceled, _timed_out)
    for unreachable in (psycopg.OperationalError, PoolTimeout, ServiceUnavailable):
        app.add_exception_handler(unreachable, _unavailable)
