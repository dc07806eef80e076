"""Authentication and authorisation of every request: `Authorization: Bearer <API key>`.

`authorize` is an app-wide FastAPI security dependency. It finds the endpoint's rule in
access.policy.RULES, then answers
    401  no key, or a key that is unknown, malformed or revoked (public endpoints need none);
    403  the key's role may not use this endpoint, or a scoped key lists without its scope;
    404  the path or the query names an object outside the key's scope (as if it did not exist);
    422  the body names an object outside the key's scope (as if it did not exist).
For firm and pilot_manager keys every id the request carries is checked, wherever it is: each path
and query parameter and each body field named in `OWNED` (`gateway_id` of a device, `pilot_id` of
a new gateway or network-server application, …), so no route can link to another firm's object,
and the answer for it is exactly the answer for an id that names nothing (no existence oracle).
The key is never logged; only its public id is (`request.state.principal.key_id`).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import orjson
import psycopg
from fastapi import FastAPI, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import ConnectionPool
from starlette.concurrency import run_in_threadpool

from access import api_keys
from access.api_keys import Principal
from access.policy import SCOPED, ApiRole, Rule, rule_for
from store.registry import unknown_reference

log = logging.getLogger(__name__)

bearer = HTTPBearer(auto_error=False, scheme_name="API key",
                    description="`Authorization: Bearer plk_…`: an API key from `pilotlab apikey create` or POST /api-keys")

_ADMIN_ONLY = Rule(frozenset({ApiRole.ADMIN}))
# Every parameter or body field that names an object of ours: its noun and a query for the
# object's (firm, pilot). A route taking an id under another name must be added here (the
# ownership test in tests/access/test_api_roles.py fails until it is).
OWNED = {"firm_id": "firm", "pilot_id": "pilot", "device_id": "device", "gateway_id": "gateway", "record_id": "record",
         "profile_id": "device profile", "run_id": "conformance run", "report_id": "conformance report",
         "command_id": "command"}
_OWNER = {
    "firm_id": "SELECT id, NULL FROM firm WHERE id = %s",
    "pilot_id": "SELECT firm_id, id FROM pilot WHERE id = %s",
    "device_id": "SELECT p.firm_id, p.id FROM device d JOIN pilot p ON p.id = d.pilot_id WHERE d.id = %s",
    "gateway_id": "SELECT p.firm_id, p.id FROM gateway g JOIN pilot p ON p.id = g.pilot_id WHERE g.id = %s",
    "record_id": "SELECT p.firm_id, p.id FROM reference_record r JOIN pilot p ON p.id = r.pilot_id WHERE r.id = %s",
    "run_id": "SELECT p.firm_id, p.id FROM conformance_run r JOIN device d ON d.id = r.device_id "
              "JOIN pilot p ON p.id = d.pilot_id WHERE r.id = %s",
    "report_id": "SELECT p.firm_id, p.id FROM conformance_report r JOIN device d ON d.id = r.device_id "
                 "JOIN pilot p ON p.id = d.pilot_id WHERE r.id = %s",
    "command_id": "SELECT p.firm_id, p.id FROM switch_command c JOIN device d ON d.id = c.device_id "
                  "JOIN pilot p ON p.id = d.pilot_id WHERE c.id = %s",
    # firm_id NULL: a public profile, which every key may see and use (api.routes.profiles)
    "profile_id": "SELECT coalesce(firm_id, ''), NULL FROM device_profile WHERE id = %s",
}
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def _unauthenticated(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def _owned_field(field: str) -> str:
    """The OWNED parameter a body field names ("pilot_ids" -> "pilot_id"), or ""."""
    single = field.removesuffix("s") if field.endswith("_ids") else field
    return single if single in _OWNER else ""


def in_scope(conn: psycopg.Connection, principal: Principal, param: str, value: str) -> bool:
    """Does the object `param`=`value` exist and lie within a scoped principal's pilots?"""
    row = conn.execute(_OWNER[param], (value,)).fetchone()  # type: ignore[arg-type]  # fixed queries above
    if row is None:
        return False
    firm_id, pilot_id = row
    if param == "profile_id" and firm_id == "":
        return True
    if principal.role is ApiRole.FIRM:
        return bool(firm_id == principal.firm_id)
    if pilot_id is not None:
        return pilot_id in principal.pilot_ids
    owned = conn.execute("SELECT 1 FROM pilot WHERE firm_id = %s AND id = ANY(%s)",
                         (firm_id, list(principal.pilot_ids))).fetchone()
    return owned is not None


def _check(pool: ConnectionPool, token: str, rule: Rule, path_params: dict[str, str],
           query: list[tuple[str, str]], body: dict[str, object] | None) -> Principal:
    with pool.connection() as conn:
        conn.autocommit = True
        principal = api_keys.authenticate(conn, token)
        if principal is None:
            raise _unauthenticated("the API key is unknown or revoked")
        if principal.role not in rule.roles:
            raise HTTPException(403, f"a {principal.role.value} key may not do this")
        if principal.role not in SCOPED:
            return principal
        for param, value in path_params.items():
            if param in _OWNER and not in_scope(conn, principal, param, value):
                raise HTTPException(404, f"no {OWNED[param]} with id {value!r}")
        if rule.list_scope is not None and rule.list_scope not in {param for param, _ in query}:
            raise HTTPException(403, f"a {principal.role.value} key lists only within its scope: "
                                     f"add ?{rule.list_scope}=<one of yours>")
        for param, given in query:
            if param in _OWNER and not in_scope(conn, principal, param, given):
                raise HTTPException(404, f"no {OWNED[param]} with id {given!r}")
        for field, sent in (body or {}).items():
            for one in sent if isinstance(sent, list) else [sent]:
                if isinstance(one, str) and _owned_field(field) and not in_scope(conn, principal, _owned_field(field), one):
                    raise HTTPException(422, str(unknown_reference(field, one, OWNED[_owned_field(field)])))
        return principal


async def authorize(request: Request,
                    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]) -> Principal | None:
    route = request.scope.get("route")
    path = getattr(route, "path", None) or request.url.path
    rule = rule_for(request.method, path)
    if rule is None:
        log.warning("%s %s declares no access rule (access.policy.RULES): admin only", request.method, path)
        rule = _ADMIN_ONLY
    if rule.public:
        return None
    if credentials is None:
        raise _unauthenticated("this endpoint needs an API key: Authorization: Bearer <key>")
    body: dict[str, object] | None = None
    if request.method in _WITH_BODY:
        try:
            parsed = orjson.loads(await request.body() or b"null")
        except orjson.JSONDecodeError:
            parsed = None  # the endpoint's own validation answers 422
        body = parsed if isinstance(parsed, dict) else None
    principal = await run_in_threadpool(_check, request.app.state.pool, credentials.credentials, rule,
                                        dict(request.path_params), request.query_params.multi_items(), body)
    request.state.principal = principal
    return principal


def document_public_routes(app: FastAPI) -> None:
    """Make the OpenAPI say `security: []` on the operations access.policy makes public: the
    app-wide `authorize` dependency would otherwise list the Bearer scheme on every operation."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()  # FastAPI builds it once and keeps it
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                rule = rule_for(method.upper(), path)
                if rule is not None and rule.public:
                    operation["security"] = []
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
