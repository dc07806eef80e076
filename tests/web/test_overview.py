"""The pilots overview: each pilot the session may see with its stage, window, latest stored
score, verdict band, gates and last update, in the pilot's time zone; filters by firm, device
kind and status; a firm sees only its own pilots."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest

from tests.web import seed
from tests.web.conftest import Browser, Site

GATES_PASSED = [seed.Gate("min_duration_days", 28, 30, True), seed.Gate("min_availability", 0.95, 0.97, True)]
GATES_ONE_FAILED = [seed.Gate("min_duration_days", 28, 30, True), seed.Gate("min_availability", 0.95, 0.81, False)]
SCORED_AT = datetime(2026, 4, 1, 15, 30, tzinfo=UTC)  # 2026-04-02 00:30 in Seoul


@pytest.fixture
def fleet(site: Site, unique: Callable[[str], str]) -> dict[str, str]:
    """Two firms: Seoul's with a scored env-sensor pilot and an unscored planned tracker pilot; another
    firm's with a completed switch pilot whose score fails a gate."""
    seoul, other = seed.firm(site.database_url, unique("seoul"), "서울 센서"), seed.firm(site.database_url, unique("other"), "Other")
    ids = {"seoul": seoul, "other": other,
           "air": seed.pilot(site.database_url, unique("air"), seoul, name="미세먼지 측정", timezone="Asia/Seoul"),
           "bus": seed.pilot(site.database_url, unique("bus"), seoul, name="Bus trackers", status="planned",
                             kinds=("location_tracker", "location_tracker")),
           "plug": seed.pilot(site.database_url, unique("plug"), other, name="Smart plugs", status="completed",
                              kinds=("smart_switch", "env_sensor"))}
    seed.score(site.database_url, ids["air"], date(2026, 3, 31), 80.0, "conditional", GATES_PASSED,
               datetime(2026, 3, 31, 15, tzinfo=UTC))
    seed.score(site.database_url, ids["air"], date(2026, 4, 1), 88.25, "eligible", GATES_PASSED, SCORED_AT)
    seed.score(site.database_url, ids["plug"], date(2026, 4, 1), 64.5, "not_eligible", GATES_ONE_FAILED, SCORED_AT)
    return ids


def _rows(browser: Browser) -> dict[str, str]:
    rows = browser.page.locator("[data-testid=pilots] tbody tr[data-pilot]")  # type: ignore[attr-defined]
    return {rows.nth(i).get_attribute("data-pilot"): rows.nth(i).inner_text() for i in range(rows.count())}


def test_each_pilot_shows_its_latest_score_verdict_gates_and_times_in_its_zone(browser: Browser, site: Site,
                                                                              fleet: dict[str, str]) -> None:
    browser.sign_in(site.key("reviewer"))
    browser.open(f"/ui/pilots?firm={fleet['seoul']}")
    rows = _rows(browser)
    assert set(rows) == {fleet["air"], fleet["bus"]}
    air = browser.page.locator(f"tr[data-pilot='{fleet['air']}']")  # type: ignore[attr-defined]
    assert air.get_by_test_id("score").inner_text() == "88.2"  # the latest day's, not the day before's 80
    assert air.get_by_test_id("verdict").inner_text() == "eligible"
    assert air.get_by_test_id("gates").inner_text() == "2 passed"
    assert "미세먼지 측정" in rows[fleet["air"]] and "서울 센서" in rows[fleet["air"]]
    assert "2026-03-02 09:00 KST" in rows[fleet["air"]]  # the window starts at 00:00 UTC
    assert "2026-04-02 00:30 KST" in rows[fleet["air"]]  # last update: when the score was stored
    assert "not scored" in rows[fleet["bus"]] and "location_tracker" in rows[fleet["bus"]]

    browser.open(f"/ui/pilots?firm={fleet['other']}")
    plug = browser.page.locator(f"tr[data-pilot='{fleet['plug']}']")  # type: ignore[attr-defined]
    assert plug.get_by_test_id("verdict").inner_text() == "not_eligible"
    assert plug.get_by_test_id("gates").inner_text() == "1 passed, failed: min_availability"
    assert "2026-03-02 00:00 UTC" in plug.inner_text()  # a pilot without a time zone of its own: UTC, said so
    assert browser.blocked == []


def test_filters_by_firm_kind_and_status_narrow_the_list(browser: Browser, site: Site, fleet: dict[str, str]) -> None:
    browser.sign_in(site.key("admin"))
    browser.open(f"/ui/pilots?firm={fleet['seoul']}")
    browser.page.select_option("select[name=kind]", "location_tracker")  # type: ignore[attr-defined]
    browser.page.click("button:text('Filter')")  # type: ignore[attr-defined]
    browser.snap("filtered by kind")
    assert set(_rows(browser)) == {fleet["bus"]}
    assert browser.page.locator("select[name=kind]").input_value() == "location_tracker"  # type: ignore[attr-defined]

    browser.open("/ui/pilots?kind=smart_switch&status=completed")
    assert fleet["plug"] in _rows(browser) and not {fleet["air"], fleet["bus"]} & set(_rows(browser))
    browser.open("/ui/pilots?status=planned")
    assert fleet["bus"] in _rows(browser) and not {fleet["air"], fleet["plug"]} & set(_rows(browser))
    answer = browser.open("/ui/pilots?kind=toaster")
    assert answer.status == 422  # type: ignore[attr-defined]
    assert "no device kind 'toaster'" in browser.page.get_by_test_id("problem").inner_text()  # type: ignore[attr-defined]


def test_a_firm_sees_only_its_own_pilots_and_another_firms_pilot_page_is_404(browser: Browser, site: Site,
                                                                            fleet: dict[str, str]) -> None:
    browser.sign_in(site.key("firm", firm_id=fleet["seoul"]))
    browser.open("/ui/pilots")
    assert set(_rows(browser)) == {fleet["air"], fleet["bus"]}
    firms = browser.page.locator("select[name=firm] option").all_inner_texts()  # type: ignore[attr-defined]
    assert firms == ["any", f"서울 센서 ({fleet['seoul']})"]
    browser.open(f"/ui/pilots?firm={fleet['other']}")
    assert _rows(browser) == {}

    own = browser.open(f"/ui/pilots/{fleet['air']}")
    assert own.status == 200  # type: ignore[attr-defined]
    assert browser.page.get_by_test_id("verdict").inner_text() == "eligible"  # type: ignore[attr-defined]
    foreign = browser.open(f"/ui/pilots/{fleet['plug']}")
    assert foreign.status == 404  # type: ignore[attr-defined]
    said = browser.page.get_by_test_id("problem").inner_text()  # type: ignore[attr-defined]
    nothing = browser.open("/ui/pilots/no-such-pilot")
    assert nothing.status == 404  # type: ignore[attr-defined]  # the same answer as for a pilot that does not exist
    assert said.replace(fleet["plug"], "<id>") == browser.page.get_by_test_id("problem").inner_text().replace(  # type: ignore[attr-defined]
        "no-such-pilot", "<id>") == "no pilot with id '<id>'"


def test_a_pilot_manager_sees_its_pilots_and_a_provisioning_key_no_scores(browser: Browser, site: Site,
                                                                          fleet: dict[str, str]) -> None:
    browser.sign_in(site.key("pilot_manager", pilot_ids=[fleet["plug"]]))
    browser.open("/ui/pilots")
    assert set(_rows(browser)) == {fleet["plug"]}
    assert browser.open(f"/ui/pilots/{fleet['air']}").status == 404  # type: ignore[attr-defined]

    browser.page.click("button:text('Sign out')")  # type: ignore[attr-defined]
    browser.sign_in(site.key("provisioning"))
    answer = browser.open("/ui/pilots")
    assert answer.status == 403  # type: ignore[attr-defined]  # as GET /scores: provisioning reads no scores
    assert "provisioning key may not see this page" in browser.page.get_by_test_id("problem").inner_text()  # type: ignore[attr-defined]


def test_the_pilot_page_shows_each_gate_beside_its_threshold(browser: Browser, site: Site, fleet: dict[str, str]) -> None:
    browser.sign_in(site.key("reviewer"))
    browser.open(f"/ui/pilots/{fleet['plug']}")
    gates = browser.page.locator("[data-testid=gates] tbody tr").all_inner_texts()  # type: ignore[attr-defined]
    assert [g.split("\t") for g in gates] == [["min_duration_days", "30.000", "28.000", "passed"],
                                              ["min_availability", "0.810", "0.950", "failed"]]
