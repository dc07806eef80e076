"""Sign-in with an API key, with a one-time link, and sign-out (pages: /ui/signin, /ui/signout).

An API key is checked as the API checks it (access.api_keys.authenticate), then exchanged for a
session cookie (api.pages.sessions); the key itself is never stored in the browser.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from starlette.responses import RedirectResponse, Response

from access import api_keys
from access.policy import ApiRole
from api.database import Db
from api.pages import signin_links
from api.pages.cookies import clear_cookie, set_cookie
from api.pages.guard import PREFIX
from api.pages.sessions import SESSION_COOKIE, SESSION_LIFETIME, end, start
from api.pages.templates import render

router = APIRouter()
HOME = f"{PREFIX}/pilots"


def _safe_next(given: str | None) -> str:
    """Where to go after signing in: a page of ours, never another site (no open redirect)."""
    if given and given.startswith(f"{PREFIX}/") and not given.startswith("//") and "\\" not in given:
        return given
    return HOME


def _signed_in(request: Request, conn: Db, key_id: str, to: str) -> Response:
    response = RedirectResponse(to, status_code=303)
    set_cookie(response, request, SESSION_COOKIE, start(conn, key_id), max_age=int(SESSION_LIFETIME.total_seconds()))
    return response


@router.get("/")
def home() -> Response:
    return RedirectResponse(HOME, status_code=303)


@router.get("/signin")
def signin_form(request: Request, next: str | None = None) -> Response:  # noqa: A002 - the query's name
    return render(request, "signin.html", {"next": _safe_next(next)})


@router.post("/signin")
def signin(request: Request, conn: Db, api_key: Annotated[str, Form()] = "",
           next: Annotated[str, Form()] = HOME) -> Response:  # noqa: A002
    principal = api_keys.authenticate(conn, api_key.strip())
    if principal is None:
        return render(request, "signin.html", {"next": _safe_next(next), "error": "this API key is unknown or revoked"},
                      status_code=401)
    to = _safe_next(next)
    if principal.role is ApiRole.DEPARTMENT and to == HOME:  # a department sees no pilots: its page is matching
        to = f"{PREFIX}/matching"
    return _signed_in(request, conn, principal.key_id, to)


@router.get("/signin/link/{token}")
def signin_link(request: Request, token: str, conn: Db) -> Response:
    found = signin_links.holder(conn, token)
    if found is None:
        raise HTTPException(404, "this sign-in link was used already or has expired: sign in with an API key")
    _, name, role = found
    return render(request, "signin_link.html", {"token": token, "key_name": name, "role": role})


@router.post("/signin/link")
def spend_signin_link(request: Request, conn: Db, token: Annotated[str, Form()] = "") -> Response:
    key_id = signin_links.spend(conn, token)
    if key_id is None:
        raise HTTPException(404, "this sign-in link was used already or has expired: sign in with an API key")
    return _signed_in(request, conn, key_id, HOME)


@router.post("/signout")
def signout(request: Request, conn: Db) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        end(conn, token)
    response = RedirectResponse(f"{PREFIX}/signin", status_code=303)
    clear_cookie(response, request, SESSION_COOKIE)
    return response
