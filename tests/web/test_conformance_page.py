"""A device's conformance page (/ui/devices/{id}/conformance): a firm starts a run from the page
while its device publishes over the real broker to a real ingest worker, makes the report once the
run is due, and sees every check with its outcome and what to fix (a drifting clock fails `clock`,
its credentials pass, a check for profiles does not apply); the report file it downloads is the
signed report, valid in /ui/verify; a reviewer reads the page but starts nothing; another firm's
session gets 404 and starts nothing; a form without its CSRF token starts nothing."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from access import credentials
from conformance.report import verify_report
from devices.kinds import DeviceKind
from pilotlab.settings import MqttEndpoint, Settings
from scoring.signing import load_public_key
from simulators.device import SimulatedDevice
from simulators.fleet import Fleet
from simulators.nonconformant import Misbehaviour
from tests.ingest.conftest import ThreadWorker
from tests.support import wait_until
from tests.web import seed
from tests.web.conftest import Browser, Site
from tests.web.test_verify_page import _check

RUN_S = 5       # the shortest run the conformance profile allows: 5 reporting intervals
INTERVAL_S = 1


@pytest.fixture(scope="module")
def ingest(site: Site, mqtt_url: str) -> Iterator[None]:
    """An ingest worker of the site's database on the real broker, while the module runs."""
    worker = ThreadWorker(Settings(database_url=site.database_url, mqtt_url=mqtt_url,
                                   share_group=f"pilotlab-web-cf-{uuid.uuid4().hex[:8]}", worker_id="w1",
                                   session_expiry_s=10, batch_linger_ms=5)).start()
    yield
    worker.stop()


@pytest.fixture
def device(site: Site, unique: Callable[[str], str]) -> dict[str, str]:
    """A firm's planned pilot (shown in Seoul) with one env sensor reporting every second, no
    profile, its broker account issued."""
    firm = seed.firm(site.database_url, unique("cf-firm"), "Clockwork")
    pilot, device_id = unique("cf-pilot"), unique("cf-dev")
    with psycopg.connect(site.database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO pilot (id, firm_id, name, site, starts_at, status, timezone) VALUES "
                     "(%s, %s, 'Clocks', 'Old Town', now() + interval '30 days', 'planned', 'Asia/Seoul')", (pilot, firm))
        conn.execute("INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, commissioned_at) "
                     "VALUES (%s, %s, 'env_sensor', 'wifi', %s, now() + interval '30 days')", (device_id, pilot, INTERVAL_S))
        credentials.issue(conn, "device", device_id)
    return {"firm": firm, "pilot": pilot, "device": device_id}


def _runs(site: Site, device_id: str) -> int:
    with psycopg.connect(site.database_url) as conn:
        row = conn.execute("SELECT count(*) FROM conformance_run WHERE device_id = %s", (device_id,)).fetchone()
    return int(row[0]) if row else 0


def _outcomes(browser: Browser) -> dict[str, str]:
    rows = browser.page.locator("[data-testid=checks] tbody tr")  # type: ignore[attr-defined]
    return {rows.nth(i).get_attribute("data-check"): rows.nth(i).get_attribute("data-outcome")
            for i in range(rows.count())}


def test_a_run_started_from_the_page_is_reported_check_by_check_and_its_file_verifies(
        browser: Browser, site: Site, ingest: None, mqtt_url: str, device: dict[str, str], tmp_path: Path) -> None:
    device_id, page = device["device"], browser.page
    browser.sign_in(site.key("firm", firm_id=device["firm"]))
    browser.open(f"/ui/devices/{device_id}")
    page.get_by_role("link", name="Conformance runs and reports").click()  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]
    assert page.url.endswith(f"/ui/devices/{device_id}/conformance")  # type: ignore[attr-defined]
    assert page.get_by_test_id("runs").inner_text() == "No run yet."  # type: ignore[attr-defined]

    page.fill("input[name=duration_s]", str(RUN_S))  # type: ignore[attr-defined]
    page.click("button:text('Start a run')")  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]
    fleet = Fleet(MqttEndpoint(mqtt_url), [SimulatedDevice(device_id, device["pilot"], DeviceKind.ENV_SENSOR, INTERVAL_S)],
                  client_id=f"web-cf-sim-{device_id}", session_expiry_s=10, duration_s=RUN_S + 0.5,
                  misbehaviour=Misbehaviour.DRIFTING_CLOCK)  # 20 s ahead more with every message
    publishing = threading.Thread(target=fleet.run, daemon=True)
    publishing.start()
    browser.snap("running")
    run = page.locator("[data-testid=runs] tbody tr")  # type: ignore[attr-defined]
    assert run.count() == 1 and run.get_attribute("data-status") == "running"
    due = datetime.fromisoformat(run.get_attribute("data-report-due"))
    publishing.join(RUN_S + 10)
    wait_until(lambda: datetime.now(UTC) >= due, RUN_S + 10, what="the run's report time")

    page.click("button:text('Make the report')")  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]
    browser.snap("reported")
    assert run.get_attribute("data-status") == "failed"
    outcomes = _outcomes(browser)
    assert outcomes["credentials"] == "pass" and outcomes["clock"] == "fail"
    assert outcomes["measurements"] == outcomes["battery"] == "not_applicable"  # no device profile
    clock = page.locator("[data-testid=checks] tr[data-check=clock]")  # type: ignore[attr-defined]
    assert "set it from NTP" in clock.inner_text() and "worst_s" in clock.inner_text()
    assert page.get_by_test_id("report").inner_text().startswith("Report of")  # type: ignore[attr-defined]

    report_file = run.get_by_role("link", name="report file").get_attribute("href")
    with page.expect_download() as download:  # type: ignore[attr-defined]
        run.get_by_role("link", name="report file").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    public_key = load_public_key(Path(f"{site.signing_key}.pub"))
    assert verify_report(saved.read_bytes(), public_key).report["device"]["id"] == device_id
    with page.expect_download() as bundle:  # type: ignore[attr-defined]
        run.get_by_role("link", name="bundle").click()
    assert verify_report(Path(bundle.value.path()).read_bytes(), public_key).tree_head is not None

    browser.open("/ui/verify")
    valid, text = _check(browser, saved.name, saved.read_bytes())
    assert valid, text
    assert f"Conformance report of device {device_id}" in text
    assert "failed:" in text and "clock" in text.split("failed:")[1]
    assert browser.blocked == []

    browser.sign_in(site.key("firm", firm_id=seed.firm(site.database_url, f"{device['firm']}-x", "Other")))
    assert browser.open(report_file).status == 404  # type: ignore[attr-defined]


def test_a_reviewer_reads_the_page_and_is_not_offered_a_run(browser: Browser, site: Site, device: dict[str, str]) -> None:
    browser.sign_in(site.key("reviewer"))
    assert browser.open(f"/ui/devices/{device['device']}/conformance").status == 200  # type: ignore[attr-defined]
    assert browser.page.locator("[data-testid=start]").count() == 0  # type: ignore[attr-defined]
    token = browser.page.locator("input[name=csrf_token]").first.input_value()  # type: ignore[attr-defined]
    answer = browser.page.request.post(f"{site.url}/ui/devices/{device['device']}/conformance/runs",  # type: ignore[attr-defined]
                                       form={"duration_s": "60", "csrf_token": token})
    assert answer.status == 403 and _runs(site, device["device"]) == 0


def test_another_firms_session_gets_404_and_starts_nothing(browser: Browser, site: Site, device: dict[str, str],
                                                          unique: Callable[[str], str]) -> None:
    browser.sign_in(site.key("firm", firm_id=seed.firm(site.database_url, unique("other"), "Other")))
    assert browser.open(f"/ui/devices/{device['device']}/conformance").status == 404  # type: ignore[attr-defined]
    token = browser.page.locator("input[name=csrf_token]").first.input_value()  # type: ignore[attr-defined]
    answer = browser.page.request.post(f"{site.url}/ui/devices/{device['device']}/conformance/runs",  # type: ignore[attr-defined]
                                       form={"duration_s": "60", "csrf_token": token})
    assert answer.status == 404 and _runs(site, device["device"]) == 0


def test_a_run_form_without_its_csrf_token_starts_nothing(browser: Browser, site: Site, device: dict[str, str]) -> None:
    browser.sign_in(site.key("firm", firm_id=device["firm"]))
    answer = browser.page.request.post(f"{site.url}/ui/devices/{device['device']}/conformance/runs",  # type: ignore[attr-defined]
                                       form={"duration_s": "60"})
    assert answer.status == 403
    assert _runs(site, device["device"]) == 0
