"""Authentication and authorisation of every request: `Authorization: Bearer <API key>`.

`authorize` is an app-wide FastAPI security dependency. It finds the endpoint's rule in
access.policy.RULES, then answers
    401  no key, or a key that is unknown, malformed or revoked (public endpoints need none);
    403  the key's role may not use this endpoint, or a scoped key lists without its scope;
    404  the path names an object outside the key's scope (as if it did not exist);
    422  a scoped key creates something in a pilot outside its scope (as if the pilot did not exist).
The key is never logged; only its public id is (`request.state.principal.key_id`).
"""

from __future__ import annotations

import logging
from typing import Annotated

import orjson
import psycopg
from fastapi import HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import ConnectionPool
from starlette.concurrency import run_in_threadpool

from access import api_keys
from access.api_keys import Principal
from access.policy import SCOPED, ApiRole, Rule, rule_for

log = logging.getLogger(__name__)

bearer = HTTPBearer(auto_error=False, scheme_name="API key",
                    description="`Authorization: Bearer plk_…`: an API key from `pilotlab apikey create` or POST /api-keys")

_ADMIN_ONLY = Rule(frozenset({ApiRole.ADMIN}))
_NOUN = {"firm_id": "firm", "pilot_id": "pilot", "device_id": "device", "gateway_id": "gateway", "record_id": "record"}
# (firm, pilot) of the object a path or query parameter names
_OWNER = {
    "firm_id": "SELECT id, NULL FROM firm WHERE id = %s",
    "pilot_id": "SELECT firm_id, id FROM pilot WHERE id = %s",
    "device_id": "SELECT p.firm_id, p.id FROM device d JOIN pilot p ON p.id = d.pilot_id WHERE d.id = %s",
    "gateway_id": "SELECT p.firm_id, p.id FROM gateway g JOIN pilot p ON p.id = g.pilot_id WHERE g.id = %s",
    "record_id": "SELECT p.firm_id, p.id FROM reference_record r JOIN pilot p ON p.id = r.pilot_id WHERE r.id = %s",
}


def _unauthenticated(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def in_scope(conn: psycopg.Connection, principal: Principal, param: str, value: str) -> bool:
    """Does the object `param`=`value` exist and lie within a scoped principal's pilots?"""
    row = conn.execute(_OWNER[param], (value,)).fetchone()  # type: ignore[arg-type]  # fixed queries above
    if row is None:
        return False
    firm_id, pilot_id = row
    if principal.role is ApiRole.FIRM:
        return bool(firm_id == principal.firm_id)
    if pilot_id is not None:
        return pilot_id in principal.pilot_ids
    owned = conn.execute("SELECT 1 FROM pilot WHERE firm_id = %s AND id = ANY(%s)",
                         (firm_id, list(principal.pilot_ids))).fetchone()
    return owned is not None


def _check(pool: ConnectionPool, token: str, rule: Rule, path_params: dict[str, str],
           query: dict[str, str], body: dict[str, object] | None) -> Principal:
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
                raise HTTPException(404, f"no {_NOUN[param]} with id {value!r}")
        if rule.list_scope is not None:
            listed = query.get(rule.list_scope)
            if listed is None:
                raise HTTPException(403, f"a {principal.role.value} key lists only within its scope: "
                                         f"add ?{rule.list_scope}=<one of yours>")
            if not in_scope(conn, principal, rule.list_scope, listed):
                raise HTTPException(404, f"no {_NOUN[rule.list_scope]} with id {listed!r}")
        if rule.body_scope is not None and body is not None:
            named = body.get(rule.body_scope)
            if isinstance(named, str) and not in_scope(conn, principal, rule.body_scope, named):
                raise HTTPException(422, f"{rule.body_scope} {named!r} names no {_NOUN[rule.body_scope]}; "
                                         f"register the {_NOUN[rule.body_scope]} first")
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
    if rule.body_scope is not None:
        try:
            parsed = orjson.loads(await request.body() or b"null")
        except orjson.JSONDecodeError:
            parsed = None  # the endpoint's own validation answers 422
        body = parsed if isinstance(parsed, dict) else None
    principal = await run_in_threadpool(_check, request.app.state.pool, credentials.credentials, rule,
                                        dict(request.path_params), dict(request.query_params), body)
    request.state.principal = principal
    return principal
