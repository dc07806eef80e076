"""Who may see a page: the sub-app's one dependency, run before every page, like api.auth for
the API.

It finds the page's rule in access.policy.PAGES, reads the session cookie, and answers
    303 to the sign-in page  a page that needs a session, without a live one (`SignInRequired`);
    403  the session's role may not see this page, or a POST without the CSRF token expected
         (every POST, public ones too: api.pages.csrf);
    404  the path names an object outside a firm's or pilot manager's scope, as if it did not
         exist (the API's own check: api.auth.in_scope).
"""

from __future__ import annotations

from fastapi import HTTPException, Request
from psycopg_pool import ConnectionPool
from starlette.concurrency import run_in_threadpool

from access.policy import ADMIN_ONLY, SCOPED, page_rule_for
from api.auth import OWNED, in_scope
from api.pages import csrf, sessions
from api.pages.sessions import SESSION_COOKIE, PageSession

PREFIX = "/ui"


class SignInRequired(Exception):
    """Answered with a redirect to the sign-in page, which returns to `next` afterwards."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def _session(pool: ConnectionPool, token: str | None) -> PageSession | None:
    if not token:
        return None
    with pool.connection() as conn:
        conn.autocommit = True
        return sessions.find(conn, token)


def _outside_scope(pool: ConnectionPool, session: PageSession, path_params: dict[str, str]) -> str | None:
    """The first path parameter naming an object outside the session's scope, else None."""
    with pool.connection() as conn:
        conn.autocommit = True
        for param, value in path_params.items():
            if param in OWNED and not in_scope(conn, session.principal, param, value):
                return f"no {OWNED[param]} with id {value!r}"
    return None


async def authorize_page(request: Request) -> PageSession | None:
    route = request.scope.get("route")
    path = PREFIX + str(getattr(route, "path", request.url.path))
    rule = page_rule_for(request.method, path) or ADMIN_ONLY
    pool: ConnectionPool = request.app.state.pool
    session = await run_in_threadpool(_session, pool, request.cookies.get(SESSION_COOKIE))
    request.state.page_session = session
    if request.method == "POST":
        form = await request.form()
        if not csrf.valid(request, session, form.get(csrf.FIELD)):
            raise HTTPException(403, "this form was not sent from a page of this site (its CSRF token is missing or "
                                     "stale): reload the page and send it again")
    if rule.public:
        return session
    if session is None:
        raise SignInRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    if session.principal.role not in rule.roles:
        raise HTTPException(403, f"a {session.principal.role.value} key may not see this page")
    if session.principal.role in SCOPED:
        outside = await run_in_threadpool(_outside_scope, pool, session, dict(request.path_params))
        if outside is not None:
            raise HTTPException(404, outside)
    return session
