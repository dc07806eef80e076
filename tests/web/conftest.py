"""Browser tests of the pages: the real API app served by uvicorn on 127.0.0.1 over the session's
real PostgreSQL database, driven by Playwright with Debian's Chromium (/usr/bin/chromium;
Playwright's own browser download is never used). Without Chromium or Playwright they skip,
saying so.

Every page a test visits is saved as a screenshot under <pytest's base temp>/web-screenshots/
<test>/ (the path is printed at the end of the run). Every browser context is offline but for
127.0.0.1: a request anywhere else is aborted and listed in `Browser.blocked`, which the tests
that claim "no internet" assert is empty.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from access import api_keys
from api.app import create_app
from pilotlab.settings import Settings
from tests.api.conftest import served

CHROMIUM = Path("/usr/bin/chromium")
_SCREENSHOTS: list[Path] = []

if not CHROMIUM.exists():
    pytest.skip("browser tests need Debian's Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run does)",
                allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright (pip install -e '.[test]')")


@dataclass(frozen=True)
class Site:
    url: str
    database_url: str
    signing_key: Path

    def key(self, role: str, **scope: object) -> str:
        """A new API key of `role` (firm_id=..., pilot_ids=[...] for scoped roles); its token."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            return api_keys.create(conn, role, name=f"web test {role}", **scope).token  # type: ignore[arg-type]

    def api(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


@contextmanager
def serve_site(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The API app over `database_url` with a new records key, served on 127.0.0.1."""
    from scoring.signing import generate_key

    key = tmp_path_factory.mktemp("web") / "signing.pem"
    generate_key(key)
    app = create_app(Settings(database_url=database_url, signing_key=key))
    with served(app) as (host, port):
        yield Site(f"http://{host}:{port}", database_url, key)


@pytest.fixture(scope="session")
def site(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with serve_site(database_url, tmp_path_factory) as served_site:
        yield served_site


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield browser
        browser.close()


@dataclass
class Browser:
    """One test's browser context (its own cookies): `open(path)` goes to a page of the site and
    saves its screenshot; `snap(name)` saves the current page's."""

    page: object
    site: Site
    shots: Path
    blocked: list[str] = field(default_factory=list)
    count: int = 0

    def open(self, path: str) -> object:
        answer = self.page.goto(self.site.url + path)  # type: ignore[attr-defined]
        self.snap(path)
        return answer

    def snap(self, name: str) -> Path:
        self.count += 1
        target = self.shots / f"{self.count:02d}-{re.sub(r'[^A-Za-z0-9]+', '-', name).strip('-') or 'root'}.png"
        self.page.screenshot(path=str(target), full_page=True)  # type: ignore[attr-defined]
        _SCREENSHOTS.append(target)
        return target

    def sign_in(self, token: str) -> None:
        """Sign in on the sign-in page: the one shown now (after a redirect to it), else a new one."""
        if "/ui/signin" not in self.page.url:  # type: ignore[attr-defined]
            self.open("/ui/signin")
        self.page.fill("input[name=api_key]", token)  # type: ignore[attr-defined]
        self.page.click("button:text('Sign in')")  # type: ignore[attr-defined]
        self.page.wait_for_load_state()  # type: ignore[attr-defined]
        self.snap("signed-in")


@pytest.fixture
def browser(chromium: object, site: Site, request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    shots = tmp_path_factory.getbasetemp() / "web-screenshots" / re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
    shots.mkdir(parents=True, exist_ok=True)
    context = chromium.new_context(locale="ko-KR", timezone_id="Asia/Seoul")  # type: ignore[attr-defined]
    blocked: list[str] = []

    def offline(route: object) -> None:
        url = route.request.url  # type: ignore[attr-defined]
        if urlsplit(url).hostname == "127.0.0.1":
            route.continue_()  # type: ignore[attr-defined]
        else:
            blocked.append(url)
            route.abort()  # type: ignore[attr-defined]

    context.route("**/*", offline)
    context.set_default_timeout(10_000)
    try:
        yield Browser(context.new_page(), site, shots, blocked)
    finally:
        context.close()


@pytest.fixture
def unique(unique_id: Callable[[str], str]) -> Callable[[str], str]:
    return unique_id


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _SCREENSHOTS:
        terminalreporter.write_line(f"web: {len(_SCREENSHOTS)} screenshots in {_SCREENSHOTS[0].parents[1]}")


