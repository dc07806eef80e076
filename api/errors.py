"""Errors to HTTP answers: every failure is `{"detail": "..."}` saying what to fix, with the status
pilotlab.errors.ANSWERS gives the error's class (the one table, shared with the CLI):

    ConfigError (misconfigured server)    503   names the setting the operator must set; the
                                                message, which may name server files, is logged
    ServiceUnavailable                    503
    InvalidRequest                        422   (UnknownReference, InvalidValue, InvalidWindow, …)
    NotFound                              404
    Conflict (id taken, referenced)       409
    request validation                    422   plus `errors: [{field, message}]`

Errors of the libraries below answer as the pilotlab class they amount to (`_FOREIGN`): a
database refusal as Conflict or InvalidRequest, an unreachable database or a statement past
Settings.api_statement_timeout_s as ServiceUnavailable. Tracebacks are logged for bugs only,
never sent.
"""

from __future__ import annotations

import logging

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout

from pilotlab.errors import ConfigError, Conflict, InvalidRequest, PilotlabError, ServiceUnavailable, answer_for

log = logging.getLogger(__name__)

# Library errors, nearest class first, and the pilotlab class each answers as.
_FOREIGN: dict[type[Exception], type[PilotlabError]] = {
    psycopg.errors.QueryCanceled: ServiceUnavailable,  # statement_timeout; an OperationalError, said apart
    psycopg.IntegrityError: Conflict,
    psycopg.DataError: InvalidRequest,
    psycopg.OperationalError: ServiceUnavailable,
    PoolTimeout: ServiceUnavailable,
}


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


async def _pilotlab(request: Request, exc: Exception) -> JSONResponse:
    status = answer_for(exc).http_status
    if isinstance(exc, ConfigError):
        log.error("%s %s: misconfigured: %s", request.method, request.url.path, exc)
        what = f"its operator must set {exc.setting}" if exc.setting else "its operator must fix its settings"
        return _problem(status, f"this server is misconfigured for this request: {what} (its log says what is wrong)")
    if isinstance(exc, ServiceUnavailable):
        log.warning("unavailable: %s", exc)
        return _problem(status, "the database is unreachable; try again shortly")
    return _problem(status, str(exc))


async def _foreign(request: Request, exc: Exception) -> JSONResponse:
    kind = next(ours for theirs, ours in _FOREIGN.items() if isinstance(exc, theirs))
    status = answer_for(kind()).http_status
    if isinstance(exc, psycopg.errors.QueryCanceled):
        limit = request.app.state.settings.api_statement_timeout_s
        log.warning("%s %s: a statement ran past the %g s statement timeout", request.method, request.url.path, limit)
        return _problem(status, f"the request's database work ran past the {limit:g} s limit "
                                f"(PILOTLAB_API_STATEMENT_TIMEOUT_S); narrow the request or try again later")
    if isinstance(exc, psycopg.IntegrityError):
        return _problem(status, f"the database refused the change: {exc.diag.message_primary}")
    if isinstance(exc, psycopg.DataError):
        return _problem(status, f"a value cannot be stored: {exc.diag.message_primary or exc}")
    log.warning("database unavailable: %s", exc)
    return _problem(status, "the database is unreachable; try again shortly")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(PilotlabError, _pilotlab)
    for foreign in _FOREIGN:
        app.add_exception_handler(foreign, _foreign)
