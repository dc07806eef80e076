"""The rolling plan's page (/ui/plan): a city department sees the year's plan beside what the seeded
program's pilots achieved (tests/api/program.py: figures known by construction), the pilots and
firms counted, and downloads the same CSV as the API's; a year without a plan shows what was
achieved; other roles get 403. The module has a database of its own."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scoring.signing import generate_key
from tests.api.program import PLAN_2024, Program, seed_program
from tests.web.conftest import Browser, Site, serve_site


@pytest.fixture(scope="module")
def site(make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with serve_site(make_database(), tmp_path_factory) as own:
        yield own


@pytest.fixture(scope="module")
def program(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Program:
    foreign = tmp_path_factory.mktemp("plan-web") / "foreign.pem"
    generate_key(foreign)
    seeded = seed_program(site.database_url, site.signing_key, foreign, uuid.uuid4().hex[:6])
    with site.api(site.key("admin")) as admin:
        assert admin.put("/plans/2024", json=PLAN_2024).status_code == 200
    return seeded


def _table(browser: Browser) -> dict[str, list[str]]:
    rows = browser.page.locator("[data-testid=plan] tbody tr")  # type: ignore[attr-defined]
    return {rows.nth(i).locator("td").first.inner_text(): rows.nth(i).locator("td").all_inner_texts()[1:]
            for i in range(rows.count())}


def test_a_department_sees_the_plan_beside_what_the_pilots_achieved(browser: Browser, site: Site, program: Program,
                                                                   tmp_path: Path) -> None:
    browser.sign_in(site.key("department"))
    browser.page.get_by_role("link", name="Plan").click()  # type: ignore[attr-defined]
    browser.page.wait_for_load_state()  # type: ignore[attr-defined]
    browser.open("/ui/plan?year=2024")
    assert _table(browser) == {
        "Pilots run": ["3", "2", "not met"],
        "Devices scored": ["4", "4", "met"],
        "Firms reaching stage 4": ["2", "2", "met"],
        "Availability, env_sensor": ["98.0 %", "97.2 %", "not met"],
        "Availability, location_tracker": ["90.0 %", "–", "not met"],
        "Availability, smart_switch": ["95.0 %", "100.0 %", "met"],
    }
    pilots = browser.page.locator("[data-testid=pilots] tbody tr")  # type: ignore[attr-defined]
    assert sorted(pilots.nth(i).get_attribute("data-pilot") for i in range(pilots.count())) == \
        sorted([program.pilots["acme"], program.pilots["borealis"]])
    assert "env_sensor × 1: 440 / 480" in browser.page.locator(  # type: ignore[attr-defined]
        f"tr[data-pilot='{program.pilots['borealis']}']").inner_text()
    firms = browser.page.locator("[data-testid=stage4] tbody tr")  # type: ignore[attr-defined]
    assert [firms.nth(i).get_attribute("data-firm") for i in range(firms.count())] == \
        sorted([program.firms["acme"], program.firms["delta"]])
    assert "2024-01-01 00:30 KST" in firms.nth(1).inner_text()  # delta's record, in its pilot's zone

    with browser.page.expect_download() as download:  # type: ignore[attr-defined]
        browser.page.get_by_test_id("csv").click()  # type: ignore[attr-defined]
    assert download.value.suggested_filename == "pilotlab-plan-2024.csv"
    with site.api(site.key("department")) as department:
        assert Path(download.value.path()).read_text() == department.get("/plans/2024/csv").text
    assert browser.blocked == []


def test_a_year_without_a_plan_shows_what_was_achieved(browser: Browser, site: Site, program: Program) -> None:
    browser.sign_in(site.key("admin"))
    browser.open("/ui/plan?year=2024")
    browser.page.get_by_role("link", name="← 2023").click()  # type: ignore[attr-defined]
    browser.page.wait_for_load_state()  # type: ignore[attr-defined]
    browser.snap("2023")
    assert browser.page.get_by_test_id("no-plan").count() == 1  # type: ignore[attr-defined]
    assert _table(browser) == {"Pilots run": ["–", "1", "–"], "Devices scored": ["–", "1", "–"],
                               "Firms reaching stage 4": ["–", "1", "–"], "Availability, env_sensor": ["–", "100.0 %", "–"]}


def test_other_roles_get_no_plan_page(browser: Browser, site: Site, program: Program) -> None:
    browser.sign_in(site.key("firm", firm_id=program.firms["acme"]))
    assert browser.open("/ui/plan").status == 403  # type: ignore[attr-defined]
    assert browser.open("/ui/plan/csv?year=2024").status == 403  # type: ignore[attr-defined]
