"""Every page declares who may see it (access.policy.PAGES), and answers as its rule says for
every role, without a session, and over TLS: enumerated from the pages' own routes, so a new page
cannot forget. (Plain HTTP: no browser needed to read a status.)"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import fastapi.routing
import httpx
import psycopg
import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount

from access.policy import ApiRole, page_rule_for
from api.app import create_app
from api.pages import sessions
from api.pages.guard import PREFIX
from pilotlab.settings import Settings
from store import requirements
from tests.web import seed
from tests.web.conftest import Site


def page_routes() -> list[tuple[str, str]]:
    app = create_app(Settings(database_url="postgresql://unused"))
    pages = next(r for r in app.routes if isinstance(r, Mount) and r.path == PREFIX)
    return sorted((method, f"{PREFIX}{rc.path}") for rc in fastapi.routing.iter_route_contexts(pages.routes)
                  if isinstance(rc.original_route, APIRoute) for method in rc.original_route.methods or ())


@pytest.fixture(scope="module")
def own(site: Site) -> dict[str, str]:
    import uuid

    suffix = uuid.uuid4().hex[:8]
    firm = seed.firm(site.database_url, f"rules-{suffix}", "Rules")
    with psycopg.connect(site.database_url, autocommit=True) as conn:
        requirement = requirements.create(conn, name="rules", kind="env_sensor", min_verdict="conditional", created_by="")
    return {"firm_id": firm, "pilot_id": seed.pilot(site.database_url, f"rules-{suffix}", firm), "token": "x",
            "record_id": "0" * 64, "report_id": "0" * 64, "device_id": f"rules-{suffix}-d0", "requirement_id": str(requirement.id)}


@pytest.fixture(scope="module")
def session_of(site: Site, own: dict[str, str]) -> Iterator[Callable[[ApiRole], httpx.Client]]:
    """A client signed in with a new key of a role (scoped to `own`'s firm or pilot)."""
    clients: list[httpx.Client] = []

    def signed_in(role: ApiRole) -> httpx.Client:
        scope: dict[ApiRole, dict[str, object]] = {ApiRole.FIRM: {"firm_id": own["firm_id"]},
                                                   ApiRole.PILOT_MANAGER: {"pilot_ids": [own["pilot_id"]]}}
        token = site.key(role.value, **scope.get(role, {}))
        with psycopg.connect(site.database_url, autocommit=True) as conn:
            cookie = sessions.start(conn, token.split("_")[1])
        client = httpx.Client(base_url=site.url, cookies={sessions.SESSION_COOKIE: cookie}, follow_redirects=False)
        clients.append(client)
        return client

    yield signed_in
    for client in clients:
        client.close()


def test_every_page_declares_an_access_rule() -> None:
    routes = page_routes()
    undeclared = [f"{m} {p}" for m, p in routes if page_rule_for(m, p) is None]
    assert not undeclared, f"add these to access.policy.PAGES: {undeclared}"
    assert {("GET", "/ui/pilots"), ("GET", "/ui/pilots/{pilot_id}"), ("POST", "/ui/signin"), ("GET", "/ui/verify")} <= set(routes)


def test_every_signed_in_page_answers_each_role_as_its_rule_says(site: Site, own: dict[str, str],
                                                                session_of: Callable[[ApiRole], httpx.Client]) -> None:
    wrong: list[str] = []
    checked = 0
    with httpx.Client(base_url=site.url, follow_redirects=False) as anonymous:
        for method, template in page_routes():
            rule = page_rule_for(method, template)
            assert rule is not None
            if rule.public or method != "GET":
                continue
            path = re.sub(r"\{(\w+)\}", lambda m: own[m[1]], template)
            checked += 1
            answer = anonymous.get(path)
            if answer.status_code != 303 or not answer.headers["location"].startswith("/ui/signin?next="):
                wrong.append(f"{template} without a session: {answer.status_code}")
            for role in ApiRole:
                got = session_of(role).get(path).status_code
                allowed = role in rule.roles
                # a record or report id naming none: 404 for those allowed (it does not exist), 403 for the others
                expected = (404 if "record_id" in template or "report_id" in template else 200) if allowed else 403
                if got != expected:
                    wrong.append(f"{template} as {role.value}: {got}, expected {expected}")
    assert not wrong, "\n".join(wrong)
    assert checked >= 3


def test_the_session_cookie_is_secure_when_the_request_came_over_tls(site: Site) -> None:
    """Behind a TLS-terminating proxy on the same host (uvicorn trusts 127.0.0.1's X-Forwarded-Proto)."""
    with httpx.Client(base_url=site.url, follow_redirects=False, headers={"X-Forwarded-Proto": "https"}) as client:
        form = client.get("/ui/signin")
        assert "Secure" in form.headers["set-cookie"]  # the anonymous CSRF cookie
        csrf = form.text.split('name="csrf_token" value="')[1].split('"')[0]
        client.cookies.set("pilotlab_csrf", form.cookies["pilotlab_csrf"])  # httpx keeps no Secure cookie over http
        signed_in = client.post("/ui/signin", data={"api_key": site.key("reviewer"), "csrf_token": csrf})
    assert signed_in.status_code == 303
    cookie = signed_in.headers["set-cookie"].lower()
    assert cookie.startswith("pilotlab_session=") and "; secure" in cookie and "; httponly" in cookie
    assert "samesite=lax" in cookie and "path=/ui" in cookie
