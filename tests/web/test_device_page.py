"""A device's page: readings over the latest scored window with QC fails marked, message arrivals
with outages shaded, the battery trend with its projection against the claimed life, recent dead
letters, conformance status; another firm's device is 404."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.web import seed
from tests.web.conftest import Browser, Site
from tests.web.plot_pixels import pixels_of

FAIL_MARK, BATTERY, CLAIM = (0xD1, 0x24, 0x2F), (0x1A, 0x7F, 0x37), (0x82, 0x50, 0xDF)
OUTAGE_SHADE = (245, 224, 223)  # rgba(180, 35, 24, 0.14) on white


@pytest.fixture
def scored_pilot(site: Site, unique: Callable[[str], str]) -> dict[str, str]:
    return seed.scored_day(site.database_url, unique("firm"), unique("dev"))


def _drawn(browser: Browser, plot: str) -> int:
    return int(browser.page.locator(f"[data-testid={plot}]").get_attribute("data-drawn"))  # type: ignore[attr-defined]


def test_readings_plot_marks_each_qc_fail(browser: Browser, site: Site, scored_pilot: dict[str, str]) -> None:
    browser.sign_in(site.key("reviewer"))
    browser.open(f"/ui/devices/{scored_pilot['hot']}")
    assert pixels_of(browser.page, "[data-testid=readings]", FAIL_MARK) > 20
    legend = browser.page.locator("[data-testid=readings] .u-legend").inner_text()  # type: ignore[attr-defined]
    # the ten 150 °C readings and their 19 neighbours, whose spike test fails (reading 0 has one)
    assert "QC fail (29)" in legend
    assert _drawn(browser, "readings") == 2 * seed.DAY + 29  # temperature, humidity, the marks
    assert browser.blocked == []


def test_arrivals_plot_shades_the_outage(browser: Browser, site: Site, scored_pilot: dict[str, str]) -> None:
    browser.sign_in(site.key("reviewer"))
    browser.open(f"/ui/devices/{scored_pilot['gap']}")
    assert _drawn(browser, "arrivals") == seed.DAY - 120
    assert _drawn(browser, "readings") == 2 * (seed.DAY - 120)  # the lines stop at the gap: no value made up
    assert pixels_of(browser.page, "[data-testid=arrivals]", OUTAGE_SHADE) > 100
    browser.open(f"/ui/devices/{scored_pilot['full']}")
    assert pixels_of(browser.page, "[data-testid=arrivals]", OUTAGE_SHADE) == 0  # no outage, nothing shaded


def test_battery_plot_draws_the_trend_its_projection_and_the_claim(browser: Browser, site: Site,
                                                                  scored_pilot: dict[str, str]) -> None:
    browser.sign_in(site.key("reviewer"))
    browser.open(f"/ui/devices/{scored_pilot['full']}")
    assert pixels_of(browser.page, "[data-testid=battery]", BATTERY) > 20
    assert pixels_of(browser.page, "[data-testid=battery]", CLAIM) > 20
    assert _drawn(browser, "battery") == seed.DAY + 4  # the readings, two lines of two points
    note = browser.page.get_by_text("Projected life").inner_text()  # type: ignore[attr-defined]
    assert "against the claimed 365 days" in note
    projected = int(note.split("Projected life ")[1].split(" days")[0])
    assert 33 <= projected <= 36  # 97.1 % left after a day at 2.88 % a day


def test_dead_letters_and_conformance_status_are_listed(browser: Browser, site: Site, scored_pilot: dict[str, str]) -> None:
    browser.sign_in(site.key("reviewer"))
    browser.open(f"/ui/devices/{scored_pilot['gap']}")
    letters = browser.page.get_by_test_id("dead-letters").inner_text()  # type: ignore[attr-defined]
    assert "malformed_json" in letters and "2024-01-01 21:30 KST" in letters
    assert browser.page.get_by_test_id("conformance").inner_text() == "No conformance report."  # type: ignore[attr-defined]


def test_another_firms_session_gets_404_on_the_device_page(browser: Browser, site: Site, scored_pilot: dict[str, str],
                                                            unique: Callable[[str], str]) -> None:
    other = seed.firm(site.database_url, unique("other"), "Other")
    browser.sign_in(site.key("firm", firm_id=other))
    assert browser.open(f"/ui/devices/{scored_pilot['full']}").status == 404  # type: ignore[attr-defined]
    browser.sign_in(site.key("firm", firm_id=scored_pilot["firm"]))
    assert browser.open(f"/ui/devices/{scored_pilot['full']}").status == 200  # type: ignore[attr-defined]


def test_the_newest_conformance_report_shows_each_checks_outcome(browser: Browser, site: Site,
                                                                 scored_pilot: dict[str, str]) -> None:
    device = scored_pilot["full"]
    checks = [{"name": "credentials", "outcome": "pass", "message": "connected with its own account"},
              {"name": "interval", "outcome": "fail", "message": "p95 interval 75 s, declared 60 s ± 10 %"},
              {"name": "lorawan_session", "outcome": "n/a", "message": "not a LoRaWAN device"}]
    seed.conformance_report(site.database_url, site.signing_key, device, checks, passed=False)
    browser.sign_in(site.key("reviewer"))
    browser.open(f"/ui/devices/{device}")
    assert "failed" in browser.page.get_by_test_id("conformance").inner_text()  # type: ignore[attr-defined]
    rows = browser.page.locator("[data-testid=conformance-checks] tbody tr").all_inner_texts()  # type: ignore[attr-defined]
    assert [r.split("\t")[:2] for r in rows] == [[c["name"], c["outcome"]] for c in checks]
