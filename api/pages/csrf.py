"""CSRF tokens of the pages' forms: every form carries one in a hidden field, every POST is
refused (403) unless it sends the one expected.

Signed in, the token is the session's (page_session.csrf_token, made with it, never sent but in
forms). Before sign-in (the sign-in forms themselves), it is a random value in a cookie of its own
that the form repeats (double submit): a cross-site page can neither read the cookie nor set it.
"""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

from api.pages.cookies import set_cookie
from api.pages.sessions import PageSession

FIELD = "csrf_token"
ANONYMOUS_COOKIE = "pilotlab_csrf"


def expected(request: Request, session: PageSession | None) -> str | None:
    """The token a POST of this request's sender must carry; None if it has none yet."""
    return session.csrf_token if session is not None else request.cookies.get(ANONYMOUS_COOKIE)


def form_token(request: Request, session: PageSession | None) -> str:
    """The token to put in a form; a new anonymous one is kept on request.state until
    `remember` sets its cookie on the response."""
    token = expected(request, session) or getattr(request.state, "new_csrf", None)
    if token is None:
        token = request.state.new_csrf = secrets.token_urlsafe(32)
    return token


def remember(request: Request, response: Response) -> None:
    new = getattr(request.state, "new_csrf", None)
    if new is not None:
        set_cookie(response, request, ANONYMOUS_COOKIE, new)


def valid(request: Request, session: PageSession | None, sent: object) -> bool:
    want = expected(request, session)
    return bool(want) and isinstance(sent, str) and hmac.compare_digest(sent.encode(), str(want).encode())
