"""Signing in to the pages with an API key or a one-time link, signing out, and the session
cookie: HttpOnly, SameSite=Lax, ended by sign-out and by revoking the key."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import psycopg

from access import api_keys
from api.pages import signin_links
from tests.web.conftest import Browser, Site


def _session_cookie(browser: Browser) -> dict[str, object]:
    cookies = browser.page.context.cookies()  # type: ignore[attr-defined]
    return next(c for c in cookies if c["name"] == "pilotlab_session")


def test_an_api_key_signs_in_to_a_session_cookie_and_sign_out_ends_it(browser: Browser, site: Site) -> None:
    token = site.key("reviewer")
    browser.open("/ui/pilots")
    assert browser.page.url.startswith(f"{site.url}/ui/signin?next=")  # type: ignore[attr-defined]
    browser.sign_in(token)

    assert browser.page.url == f"{site.url}/ui/pilots"  # type: ignore[attr-defined]
    assert "(reviewer)" in browser.page.get_by_test_id("signed-in-as").inner_text()  # type: ignore[attr-defined]
    cookie = _session_cookie(browser)
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax" and cookie["secure"] is False  # plain http here
    assert token not in str(browser.page.context.cookies())  # type: ignore[attr-defined]

    browser.page.click("button:text('Sign out')")  # type: ignore[attr-defined]
    browser.snap("signed-out")
    assert browser.page.url == f"{site.url}/ui/signin"  # type: ignore[attr-defined]
    browser.open("/ui/pilots")
    assert "/ui/signin" in browser.page.url  # type: ignore[attr-defined]
    # the old cookie no longer opens a page either: the session is gone from the server
    answer = httpx.get(f"{site.url}/ui/pilots", cookies={"pilotlab_session": str(cookie["value"])}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/ui/signin")


def test_a_wrong_key_is_refused_with_a_message_and_no_session(browser: Browser, site: Site) -> None:
    browser.sign_in("plk_aaaaaaaaaaaa_" + "x" * 43)
    assert "unknown or revoked" in browser.page.get_by_test_id("problem").inner_text()  # type: ignore[attr-defined]
    assert not [c for c in browser.page.context.cookies() if c["name"] == "pilotlab_session"]  # type: ignore[attr-defined]


def test_sign_in_returns_to_the_page_asked_for(browser: Browser, site: Site) -> None:
    browser.open("/ui/pilots?status=running")
    browser.sign_in(site.key("admin"))
    assert browser.page.url == f"{site.url}/ui/pilots?status=running"  # type: ignore[attr-defined]


def test_revoking_the_key_ends_its_sessions(browser: Browser, site: Site) -> None:
    token = site.key("reviewer")
    browser.sign_in(token)
    with psycopg.connect(site.database_url, autocommit=True) as conn:
        api_keys.revoke(conn, token.split("_")[1])
    browser.open("/ui/pilots")
    assert "/ui/signin" in browser.page.url  # type: ignore[attr-defined]


def test_a_one_time_link_signs_its_key_in_once(browser: Browser, site: Site) -> None:
    token = site.key("admin")
    link = signin_links.demo_link(site.database_url, token, site.url)
    browser.open(link.removeprefix(site.url))
    assert "/ui/signin/link/" in browser.page.url  # type: ignore[attr-defined]  # opening it signs nobody in yet
    assert not [c for c in browser.page.context.cookies() if c["name"] == "pilotlab_session"]  # type: ignore[attr-defined]
    browser.page.click("button:text('Sign in')")  # type: ignore[attr-defined]
    browser.snap("after-link")
    assert browser.page.url == f"{site.url}/ui/pilots"  # type: ignore[attr-defined]
    assert "(admin)" in browser.page.get_by_test_id("signed-in-as").inner_text()  # type: ignore[attr-defined]

    again = browser.open(link.removeprefix(site.url))
    assert again.status == 404  # type: ignore[attr-defined]
    assert "used already or has expired" in browser.page.get_by_test_id("problem").inner_text()  # type: ignore[attr-defined]


def test_forms_posted_without_their_csrf_token_are_refused(site: Site, unique: Callable[[str], str]) -> None:
    token = site.key("admin")
    with httpx.Client(base_url=site.url, follow_redirects=False) as client:
        assert client.post("/ui/signin", data={"api_key": token}).status_code == 403
        form = client.get("/ui/signin")
        csrf = form.text.split('name="csrf_token" value="')[1].split('"')[0]
        assert client.post("/ui/signin", data={"api_key": token, "csrf_token": "forged"}).status_code == 403
        signed_in = client.post("/ui/signin", data={"api_key": token, "csrf_token": csrf})
        assert signed_in.status_code == 303 and "pilotlab_session" in client.cookies

        refused = client.post("/ui/signout", data={})
        assert refused.status_code == 403 and "CSRF" in refused.text
        assert client.get("/ui/pilots").status_code == 200  # still signed in
        # the anonymous token no longer serves once signed in: forms carry the session's
        assert client.post("/ui/signout", data={"csrf_token": csrf}).status_code == 403
        page = client.get("/ui/pilots").text
        session_csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
        assert session_csrf != csrf
        assert client.post("/ui/signout", data={"csrf_token": session_csrf}).status_code == 303
        assert client.get("/ui/pilots").status_code == 303
