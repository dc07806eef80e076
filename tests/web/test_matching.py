"""Demand-supply matching: a department writes a requirement and sees exactly the firms whose
latest valid signed records meet it, ranked, linked to their records; a record issued after it
looked is marked new; the same in the API; other roles may not; a form without its CSRF token is
refused. The module has a database of its own, so the firms that can match are the ones seeded
here."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest

from tests.web import seed
from tests.web.conftest import Browser, Site, serve_site

GAP = "i >= 720 AND i < 840"  # 120 of 1,440 readings: completeness 91.7 %


@pytest.fixture(scope="module")
def site(make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with serve_site(make_database(), tmp_path_factory) as own:
        yield own


@pytest.fixture(scope="module")
def firms(site: Site) -> dict[str, str]:
    """`good`: every reading, battery projected ~35 days against 30 claimed; `gappy`: two hours
    missing; `greedy`: claims 365 days; `lapsed`: a first record that met it, then a newer one of
    the same pilot after two hours of its readings were deleted (most often in the same second as the
    first: the transparency log's order tells which is newer)."""
    ids = {name: f"{name}-{uuid.uuid4().hex[:8]}" for name in ("good", "gappy", "greedy", "lapsed")}
    seed.recorded_pilot(site.database_url, site.signing_key, ids["good"], f"{ids['good']}-p")
    seed.recorded_pilot(site.database_url, site.signing_key, ids["gappy"], f"{ids['gappy']}-p", missing=GAP)
    seed.recorded_pilot(site.database_url, site.signing_key, ids["greedy"], f"{ids['greedy']}-p", claimed_battery_days=365)
    seed.recorded_pilot(site.database_url, site.signing_key, ids["lapsed"], f"{ids['lapsed']}-p")
    with psycopg.connect(site.database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM telemetry WHERE device_id LIKE %s AND device_time >= '2024-01-01T12:00Z' "
                     "AND device_time < '2024-01-01T14:00Z'", (f"{ids['lapsed']}-p-%",))
        conn.execute("DELETE FROM scoring_day WHERE device_id LIKE %s", (f"{ids['lapsed']}-p-%",))
        from scoring.issuing import issue_record
        from scoring.rubric import load_rubric
        from scoring.signing import load_private_key
        issue_record(conn, f"{ids['lapsed']}-p", load_rubric(), load_private_key(site.signing_key))
    return ids


def _ask(browser: Browser, name: str) -> None:
    browser.open("/ui/matching")
    page = browser.page
    page.fill("input[name=name]", name)  # type: ignore[attr-defined]
    page.select_option("select[name=kind]", "env_sensor")  # type: ignore[attr-defined]
    page.fill("input[name=min_completeness]", "95")  # type: ignore[attr-defined]
    page.fill("input[name=max_qc_fail_share]", "2")  # type: ignore[attr-defined]
    page.fill("input[name=min_battery_ratio]", "100")  # type: ignore[attr-defined]
    page.fill("input[name=min_pilot_days]", "1")  # type: ignore[attr-defined]
    # a one-day pilot fails the duration gate: its verdict is not_eligible
    page.select_option("select[name=min_verdict]", "not_eligible")  # type: ignore[attr-defined]
    page.click("button:text('Save and find firms')")  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]
    browser.snap("matches")


def _matched(browser: Browser) -> list[str]:
    rows = browser.page.locator("[data-testid=matches] tbody tr")  # type: ignore[attr-defined]
    return [rows.nth(i).get_attribute("data-firm") for i in range(rows.count())]


def test_a_department_sees_exactly_the_firms_whose_latest_records_qualify(browser: Browser, site: Site,
                                                                         firms: dict[str, str]) -> None:
    browser.sign_in(site.key("department"))
    assert browser.page.url.endswith("/ui/matching")  # type: ignore[attr-defined]
    _ask(browser, "공기질 센서 · school zones")
    assert _matched(browser) == [firms["good"]]
    row = browser.page.locator(f"tr[data-firm='{firms['good']}']")  # type: ignore[attr-defined]
    assert "100.0 %" in row.inner_text()  # completeness, from the record's device breakdowns
    assert row.locator("a[href^='/ui/pilots/']").count() == 0  # a department sees records, not live scorecards
    with browser.page.expect_download() as download:  # type: ignore[attr-defined]
        row.get_by_role("link", name="record").click()
    assert download.value.suggested_filename.startswith("pilotlab-record-")


def test_the_api_saves_requirements_and_answers_the_same_matches(site: Site, firms: dict[str, str]) -> None:
    body = {"name": "api", "kind": "env_sensor", "min_completeness": 0.95, "max_qc_fail_share": 0.02,
            "min_battery_ratio": 1.0, "min_pilot_days": 1, "min_verdict": "not_eligible"}
    with site.api(site.key("department")) as department:
        saved = department.post("/requirements", json=body)
        assert saved.status_code == 201
        answer = department.get(f"/requirements/{saved.json()['id']}/matches").json()
        assert [m["firm_id"] for m in answer["matches"]] == [firms["good"]]
        assert department.get(answer["matches"][0]["record_url"]).status_code == 200
        assert department.post("/requirements", json={**body, "min_verdict": "great"}).status_code == 422
        assert department.get("/scores").status_code == 403  # a department reads records, not every score
    with site.api(site.key("firm", firm_id=firms["good"])) as firm:
        assert firm.post("/requirements", json=body).status_code == 403


def test_a_requirement_form_without_its_csrf_token_is_refused(browser: Browser, site: Site) -> None:
    browser.sign_in(site.key("department"))
    answer = browser.page.request.post(f"{site.url}/ui/matching",  # type: ignore[attr-defined]
                                       form={"name": "forged", "kind": "env_sensor", "min_verdict": "eligible"})
    assert answer.status == 403
    browser.open("/ui/matching")
    assert "forged" not in browser.page.get_by_test_id("requirement-form").inner_text()  # type: ignore[attr-defined]
    assert browser.page.locator("[data-testid=saved] a", has_text="forged").count() == 0  # type: ignore[attr-defined]


def test_other_roles_get_no_matching_page(browser: Browser, site: Site) -> None:
    browser.sign_in(site.key("reviewer"))
    assert browser.open("/ui/matching").status == 403  # type: ignore[attr-defined]


def test_a_record_issued_after_the_last_look_is_marked_new(browser: Browser, site: Site, firms: dict[str, str],
                                                           unique: Callable[[str], str]) -> None:
    browser.sign_in(site.key("department"))
    _ask(browser, "newcomers")
    here = browser.page.url  # type: ignore[attr-defined]
    late = unique("late")
    seed.recorded_pilot(site.database_url, site.signing_key, late, f"{late}-p")
    browser.open(here.removeprefix(site.url))
    assert set(_matched(browser)) == {firms["good"], late}  # the last test here: `late` stays in the database
    assert browser.page.locator(f"tr[data-firm='{late}'] [data-testid=new]").count() == 1  # type: ignore[attr-defined]
    assert browser.page.locator(f"tr[data-firm='{firms['good']}'] [data-testid=new]").count() == 0  # type: ignore[attr-defined]
    browser.open(here.removeprefix(site.url))
    assert browser.page.locator("[data-testid=new]").count() == 0  # type: ignore[attr-defined]
