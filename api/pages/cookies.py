"""The pages' cookies: HttpOnly, SameSite=Lax, Secure whenever the request came over TLS.

Lax, not Strict: a link to a page from a mail or a chat opens it signed in (Strict would show the
sign-in form on every first visit from elsewhere); cross-site POSTs carry no cookie under Lax, and
every form checks its CSRF token besides (api.pages.guard). Behind a TLS-terminating proxy, run
uvicorn with --proxy-headers (its default for 127.0.0.1) so the request's scheme is https.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

PATH = "/ui"


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path=PATH, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https")


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(name, path=PATH, httponly=True, samesite="lax", secure=request.url.scheme == "https")
