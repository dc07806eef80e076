"""The pilot scorecard: the stored verdict with each gate's value beside its threshold and the
components; every device's breakdown over the latest score's window in a table that sorts by any
column; the stored scores plotted over time. Telemetry is written straight into the tables
(seed.scored_day), so the figures are known by construction."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.web import seed
from tests.web.conftest import Browser, Site
from tests.web.plot_pixels import pixels_of


@pytest.fixture
def scored_pilot(site: Site, unique: Callable[[str], str]) -> dict[str, str]:
    return seed.scored_day(site.database_url, unique("firm"), unique("card"))


def _cells(browser: Browser, device_id: str) -> dict[str, str]:
    page = browser.page
    headers = page.locator("[data-testid=devices] thead th").all_inner_texts()  # type: ignore[attr-defined]
    cells = page.locator(f"[data-testid=devices] tr[data-device='{device_id}'] td").all_inner_texts()  # type: ignore[attr-defined]
    return dict(zip([h.strip(" ▲▼") for h in headers], cells, strict=True))


def _device_order(browser: Browser) -> list[str]:
    rows = browser.page.locator("[data-testid=devices] tbody tr")  # type: ignore[attr-defined]
    return [rows.nth(i).get_attribute("data-device") for i in range(rows.count())]


def test_scorecard_shows_verdict_gates_components_and_each_devices_breakdown(browser: Browser, site: Site,
                                                                              scored_pilot: dict[str, str]) -> None:
    browser.sign_in(site.key("reviewer"))
    browser.open(f"/ui/pilots/{scored_pilot['pilot']}")
    page = browser.page
    assert page.get_by_test_id("verdict").inner_text() in {"eligible", "conditional", "not_eligible", "invalid"}  # type: ignore[attr-defined]
    gates = page.locator("[data-testid=gates] tbody tr").all_inner_texts()  # type: ignore[attr-defined]
    assert gates and all(("passed" in g or "failed" in g) for g in gates)
    components = page.locator("[data-testid=components] tbody tr").all_inner_texts()  # type: ignore[attr-defined]
    assert any(c.startswith("availability") for c in components)

    full, gap, hot = (_cells(browser, scored_pilot[n]) for n in ("full", "gap", "hot"))
    assert full["Completeness"] == "100.0 %" and gap["Completeness"] == "91.7 %"  # 1,320 of 1,440
    assert full["Outages"] == "0" and gap["Outages"] == "1"
    assert gap["Down h"] == "2.0"
    assert full["QC fail"] == "0.0 %" and hot["QC fail"] != "0.0 %"
    failed_tests = [h for h in hot if h.startswith("QC temperature_c")]
    assert failed_tests and all(int(hot[h]) > 0 and full[h] == "0" for h in failed_tests)
    assert not any(h.startswith("QC humidity") for h in hot)  # tests that failed nothing get no column
    assert full["Claimed days"] == "365"
    assert abs(float(full["Latency p50 s"]) - 2.0) <= 0.03  # every reading 2 s late; histogram figures, within 1 %


def test_device_table_sorts_by_the_column_clicked(browser: Browser, site: Site, scored_pilot: dict[str, str]) -> None:
    browser.sign_in(site.key("reviewer"))
    browser.open(f"/ui/pilots/{scored_pilot['pilot']}")
    header = browser.page.locator("[data-testid=devices] thead th", has_text="Completeness")  # type: ignore[attr-defined]
    header.click()
    assert _device_order(browser)[0] == scored_pilot["gap"]  # lowest first
    header.click()
    assert _device_order(browser)[-1] == scored_pilot["gap"]
    browser.page.locator("[data-testid=devices] thead th", has_text="QC fail").first.click()  # type: ignore[attr-defined]
    browser.page.locator("[data-testid=devices] thead th", has_text="QC fail").first.click()  # type: ignore[attr-defined]
    assert _device_order(browser)[0] == scored_pilot["hot"]  # most failed readings first
    browser.snap("sorted")


def test_score_history_plot_draws_every_stored_score(browser: Browser, site: Site, scored_pilot: dict[str, str]) -> None:
    browser.sign_in(site.key("reviewer"))
    browser.open(f"/ui/pilots/{scored_pilot['pilot']}")
    plot = "[data-testid=score-history]"
    assert pixels_of(browser.page, plot, (0x1F, 0x6F, 0xEB)) > 50  # the score line, in its colour
    assert browser.page.locator(plot).get_attribute("data-drawn") == "2"  # type: ignore[attr-defined]
    assert browser.blocked == []


def test_another_firms_session_gets_404_on_the_scorecard(browser: Browser, site: Site, scored_pilot: dict[str, str],
                                                          unique: Callable[[str], str]) -> None:
    other = seed.firm(site.database_url, unique("other"), "Other")
    browser.sign_in(site.key("firm", firm_id=other))
    answer = browser.open(f"/ui/pilots/{scored_pilot['pilot']}")
    assert answer.status == 404  # type: ignore[attr-defined]


def test_records_are_listed_and_download_as_issued_and_as_bundles(browser: Browser, site: Site,
                                                                 scored_pilot: dict[str, str]) -> None:
    from scoring.issuing import issue_record
    from scoring.rubric import load_rubric
    from scoring.signing import load_private_key

    with psycopg.connect(site.database_url, autocommit=True) as conn:
        issued = issue_record(conn, scored_pilot["pilot"], load_rubric(), load_private_key(site.signing_key))
    browser.sign_in(site.key("firm", firm_id=scored_pilot["firm"]))
    browser.open(f"/ui/pilots/{scored_pilot['pilot']}")
    row = browser.page.locator("[data-testid=records] tbody tr")  # type: ignore[attr-defined]
    assert row.count() == 1 and issued.verdict in row.inner_text()
    with browser.page.expect_download() as record:  # type: ignore[attr-defined]
        row.get_by_role("link", name="record").click()
    assert Path(record.value.path()).read_bytes() == issued.document  # byte for byte as signed
    with browser.page.expect_download() as bundle:  # type: ignore[attr-defined]
        row.get_by_role("link", name="bundle").click()
    assert bundle.value.suggested_filename.endswith(".bundle.json")
    assert json.loads(Path(bundle.value.path()).read_bytes())["record"] == issued.document.decode()  # the file, inside


def test_a_score_stored_without_its_breakdowns_shows_the_same_table_computed_on_view_then_kept(
        browser: Browser, site: Site, scored_pilot: dict[str, str]) -> None:
    pilot = scored_pilot["pilot"]
    browser.sign_in(site.key("reviewer"))
    browser.open(f"/ui/pilots/{pilot}")
    stored = browser.page.locator("[data-testid=devices]").inner_html()  # type: ignore[attr-defined]
    with psycopg.connect(site.database_url, autocommit=True) as conn:  # as for a score stored before migration 0026
        assert conn.execute("DELETE FROM score_device_breakdown WHERE pilot_id = %s", (pilot,)).rowcount == 1
    browser.open(f"/ui/pilots/{pilot}")
    assert browser.page.locator("[data-testid=devices]").inner_html() == stored  # type: ignore[attr-defined]
    with psycopg.connect(site.database_url, autocommit=True) as conn:
        kept = conn.execute("SELECT count(*) FROM score_device_breakdown b JOIN score_history h "
                            "USING (pilot_id, scored_on, rubric_version) WHERE pilot_id = %s AND b.scored_at = h.scored_at",
                            (pilot,)).fetchone()
    assert kept == (1,)  # the next view reads it
