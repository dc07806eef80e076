"""Prometheus metrics: an ingest worker serves its counters on PILOTLAB_METRICS_PORT while it
stores messages; the API serves /metrics with request latency by route template."""

from __future__ import annotations

import urllib.request
import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from pilotlab.embedded.ports import free_port
from pilotlab.settings import Settings
from tests.ingest.conftest import ThreadWorker
from tests.support import admin_headers, publish, register_pilot, wait_until


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_an_ingest_worker_serves_its_metrics_on_its_port(make_database: Callable[[], str], mqtt_url: str) -> None:
    database_url = make_database()
    pilot = register_pilot(database_url, f"metrics-{uuid.uuid4().hex[:6]}")
    port = free_port()
    settings = Settings(database_url=database_url, mqtt_url=mqtt_url, share_group=f"metrics-{uuid.uuid4().hex[:8]}",
                        worker_id="m1", session_expiry_s=0, batch_linger_ms=5, metrics_port=port)
    worker = ThreadWorker(settings).start()
    try:
        publish(mqtt_url, [
            (f"pilotlab/v1/{pilot.pilot_id}/{pilot.switch_id}/telemetry",
             '{"ts": "2026-11-25T09:30:00Z", "seq": 1, "relay_on": true, "power_w": 4.5, "energy_wh": 1.0, "trigger": "heartbeat"}'),
            (f"pilotlab/v1/{pilot.pilot_id}/{pilot.switch_id}/telemetry", "{not json"),
        ])

        def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                return _samples(response.read().decode())

        wait_until(lambda: scrape().get(("pilotlab_ingest_messages_stored_total", ())) == 1.0
                   and scrape().get(("pilotlab_ingest_dead_letters_total", (("reason", "malformed_json"),))) == 1.0,
                   timeout_s=15, what="the stored message and the dead letter in the metrics")
        samples = scrape()
        # Messages from other tests on the shared broker may arrive too (as unknown devices).
        assert samples[("pilotlab_ingest_messages_received_total", ())] >= 2
        assert samples[("pilotlab_ingest_dead_letters_total", (("reason", "store_rejected"),))] == 0
        assert samples[("pilotlab_ingest_batch_commit_seconds_count", ())] >= 1
        assert samples[("pilotlab_ingest_ack_lag_seconds_count", ())] >= 1
        assert ("pilotlab_ingest_handoff_depth", ()) in samples
        assert samples[("pilotlab_ingest_handoff_refused_total", ())] == 0
        assert samples[("pilotlab_ingest_database_errors_total", ())] == 0
    finally:
        worker.stop()


def test_messages_a_full_hand_off_refused_are_counted() -> None:
    from prometheus_client import generate_latest

    from ingest.handoff import HandOff, Inbound
    from ingest.metrics import IngestMetrics

    handoff = HandOff(1, full_hold_s=0.01)
    metrics = IngestMetrics(handoff.__len__, handoff.capacity, handoff_refused=lambda: handoff.refused)
    messages = [Inbound("t", b"{}", mid, 1, 0.0, 1) for mid in (1, 2, 3)]
    assert handoff.put(messages[0]) and not handoff.put(messages[1]) and not handoff.put(messages[2])
    samples = _samples(generate_latest(metrics.registry).decode())
    assert samples[("pilotlab_ingest_handoff_refused_total", ())] == 2


def test_metrics_port_zero_serves_nothing() -> None:
    from ingest.metrics import IngestMetrics

    metrics = IngestMetrics(lambda: 0, 10)
    assert metrics.serve(0) is None


@pytest.fixture
def api(make_database: Callable[[], str]) -> TestClient:
    url = make_database()
    return TestClient(create_app(Settings(database_url=url)), headers=admin_headers(url))


def test_the_api_serves_request_latency_by_route(api: TestClient) -> None:
    with api as client:
        assert client.get("/devices/nope-1/health").status_code == 404
        assert client.get("/devices/nope-2/health").status_code == 404
        response = client.get("/metrics")
    assert response.status_code == 200
    samples = _samples(response.text)
    key = ("pilotlab_api_request_seconds_count", (("method", "GET"), ("route", "/devices/{device_id}/health")))
    assert samples[key] == 2.0, "labelled by the route template, not the raw path"
    assert samples[("pilotlab_api_responses_total", (("method", "GET"), ("route", "/devices/{device_id}/health"),
                                                     ("status", "4xx")))] == 2.0
    assert "/metrics" not in api.app.openapi()["paths"]  # type: ignore[attr-defined]


def test_a_page_is_labelled_by_its_full_route_apart_from_the_api_route_of_the_same_tail(api: TestClient) -> None:
    with api as client:
        assert client.get("/ui/pilots", follow_redirects=False).status_code in (200, 303)
        assert client.get("/pilots").status_code == 200
        response = client.get("/metrics")
    routes = {dict(labels).get("route") for name, labels in _samples(response.text)
              if name == "pilotlab_api_request_seconds_count" and dict(labels).get("method") == "GET"}
    assert {"/ui/pilots", "/pilots"} <= routes
