"""The pilot scorecard: the stored verdict with each gate's value beside its threshold and the
components; every device's breakdown over the latest score's window in a table that sorts by any
column; the stored scores plotted over time. Telemetry is written straight into the tables, so the
figures are known by construction."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime

import psycopg
import pytest

from scoring.rubric import load_rubric
from scoring.scorer import save_history, score_pilot
from tests.web import seed
from tests.web.conftest import Browser, Site
from tests.web.plot_pixels import pixels_of

DAY = 1440  # readings a day at 60 s
ENV_OK = "20 + (i % 7) * 0.1 AS temperature_c, 50 + (i % 5) AS humidity_pct"
HOT = "CASE WHEN i % 144 = 0 THEN 150 ELSE 20 + (i % 7) * 0.1 END AS temperature_c, 50 + (i % 5) AS humidity_pct"


def _series(conn: psycopg.Connection, device_id: str, values: str, skip: str = "false") -> None:
    conn.execute(
        ("INSERT INTO telemetry (device_id, seq, device_time, ingest_time, channel, size_bytes, temperature_c, humidity_pct) "
         f"SELECT %s, i, '2024-01-01Z'::timestamptz + i * interval '60 s', '2024-01-01Z'::timestamptz + i * interval '60 s' "
         f"+ interval '2 s', 'telemetry', 64, {values.replace('%', '%%')} FROM generate_series(0, {DAY - 1}) AS i WHERE NOT ({skip})").encode(),
        (device_id,))


@pytest.fixture
def scored_pilot(site: Site, unique: Callable[[str], str]) -> Iterator[dict[str, str]]:
    """One day of three env sensors: `full` sends every minute, `gap` misses 12:00-14:00 (120 of
    1,440), `hot` reads 150 °C every 144th minute (10 readings); scored and stored, after an
    older stored score of 70 the day before."""
    firm = seed.firm(site.database_url, unique("firm"), "Acme")
    pilot = unique("card")
    with psycopg.connect(site.database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO pilot (id, firm_id, name, site, stage, starts_at, ends_at, status, timezone) VALUES "
                     "(%s, %s, 'Air', 'Old Town', 3, '2024-01-01Z', '2024-01-02Z', 'completed', 'Asia/Seoul')", (pilot, firm))
        ids = {"firm": firm, "pilot": pilot}
        for name in ("full", "gap", "hot"):
            ids[name] = f"{pilot}-{name}"
            conn.execute("INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, commissioned_at, "
                         "claimed_battery_days) VALUES (%s, %s, 'env_sensor', 'wifi', 60, '2023-12-01Z', 365)", (ids[name], pilot))
        _series(conn, ids["full"], ENV_OK)
        _series(conn, ids["gap"], ENV_OK, skip="i >= 720 AND i < 840")
        _series(conn, ids["hot"], HOT)
        seed.score(site.database_url, pilot, date(2023, 12, 31), 70.0, "conditional", [], datetime.fromisoformat("2024-01-01T00:00Z"))
        save_history(conn, score_pilot(conn, pilot, load_rubric()))
    yield ids


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
