"""Conformance over HTTP: a firm starts runs of its own devices and reads their reports, never
another firm's; a run's report is made at the first read after its end; a pilot's requirement."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from access import api_keys
from api.app import create_app
from conformance.report import verify_report
from pilotlab.settings import Settings
from scoring.signing import load_public_key
from tests.conformance.conftest import RunOutcome


@dataclass(frozen=True)
class Api:
    client: TestClient
    firm: dict[str, str]      # Authorization of the run's firm
    stranger: dict[str, str]  # of another firm
    manager: dict[str, str]   # a pilot manager of the run's pilot


@pytest.fixture(scope="module")
def api(conformance_run: RunOutcome) -> Iterator[Api]:
    with psycopg.connect(conformance_run.database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO firm (id, name) VALUES ('cf-stranger', 'Other') ON CONFLICT DO NOTHING")
        tokens = [api_keys.create(conn, "firm", firm_id=conformance_run.firm_id).token,
                  api_keys.create(conn, "firm", firm_id="cf-stranger").token,
                  api_keys.create(conn, "pilot_manager", pilot_ids=[conformance_run.pilot_id]).token]
    settings = Settings(database_url=conformance_run.database_url, signing_key=conformance_run.signing_key)
    with TestClient(create_app(settings)) as client:
        yield Api(client, *({"Authorization": f"Bearer {t}"} for t in tokens))


def test_a_firm_reads_its_devices_reports_and_history_and_not_another_firms(conformance_run: RunOutcome, api: Api) -> None:
    device = conformance_run.device["ok"]
    history = api.client.get(f"/devices/{device}/conformance", headers=api.firm)
    assert history.status_code == 200 and history.json()["passed"] is True
    [run] = history.json()["runs"]
    assert run["status"] == "passed"
    report = api.client.get(run["report_url"], headers=api.firm)
    assert report.status_code == 200
    assert report.text == json.loads(conformance_run.bundle("ok").read_bytes())["record"]  # byte for byte as issued
    bundle = api.client.get(run["report_url"], params={"bundle": "true"}, headers=api.firm)
    verified = verify_report(bundle.content, load_public_key(conformance_run.public_key))
    assert verified.report["device"]["id"] == device and verified.tree_head is not None
    for path in (f"/devices/{device}/conformance", run["url"], run["report_url"]):
        assert api.client.get(path, headers=api.stranger).status_code == 404


def test_a_run_started_over_http_is_judged_and_signed_at_the_first_read_after_its_end(
        conformance_run: RunOutcome, api: Api) -> None:
    device = conformance_run.device["plain"]
    started = api.client.post("/conformance/runs", json={"device_ids": [device], "duration_s": 10}, headers=api.firm)
    assert started.status_code == 202, started.text
    [run] = started.json()
    assert run["status"] == "running" and run["report_id"] is None
    assert api.client.get(run["url"], headers=api.firm).json()["status"] == "running"
    with psycopg.connect(conformance_run.database_url, autocommit=True) as conn:  # as if it had ended an hour ago
        conn.execute("UPDATE conformance_run SET started_at = started_at - interval '1 hour', "
                     "ends_at = ends_at - interval '1 hour' WHERE id = %s", (run["id"],))
    finished = api.client.get(run["url"], headers=api.firm).json()
    assert finished["status"] == "failed" and finished["report_id"] is not None  # nothing arrived in that hour
    report = api.client.get(finished["report_url"], headers=api.firm)
    record = verify_report(report.content, load_public_key(conformance_run.public_key)).report
    assert record["run"]["id"] == run["id"] and "credentials" in record["summary"]["fail"]
    assert api.client.get(run["url"], headers=api.firm).json()["report_id"] == finished["report_id"]  # made once


def test_a_run_is_refused_for_another_firms_device_and_for_a_too_short_duration(conformance_run: RunOutcome,
                                                                                api: Api) -> None:
    device = conformance_run.device["ok"]
    foreign = api.client.post("/conformance/runs", json={"device_ids": [device]}, headers=api.stranger)
    assert foreign.status_code == 422 and "names no device" in foreign.json()["detail"]
    short = api.client.post("/conformance/runs", json={"device_ids": [device], "duration_s": 5}, headers=api.firm)
    assert short.status_code == 422 and "at least 5 intervals (10 s)" in short.json()["detail"]


def test_a_pilot_manager_requires_conformance_and_registering_a_device_then_says_why_it_is_refused(
        conformance_run: RunOutcome, api: Api) -> None:
    path = f"/pilots/{conformance_run.pilot_id}/conformance"
    assert api.client.put(path, json={"required": True}, headers=api.firm).status_code == 403
    try:
        assert api.client.put(path, json={"required": True}, headers=api.manager).json()["required"] is True
        assert api.client.get(path, headers=api.firm).json() == {"pilot_id": conformance_run.pilot_id, "required": True}
        body = {"id": "cf-api-new", "pilot_id": conformance_run.pilot_id, "kind": "env_sensor", "connectivity": "wifi",
                "reporting_interval_s": 60}
        refused = api.client.post("/devices", json=body, headers=api.manager)
        assert refused.status_code == 409 and "requires a passed conformance report" in refused.json()["detail"]
        later = (datetime.now(UTC) + timedelta(days=3)).isoformat()
        assert api.client.post("/devices", json={**body, "commissioned_at": later}, headers=api.manager).status_code == 201
    finally:
        api.client.put(path, json={"required": False}, headers=api.manager)
