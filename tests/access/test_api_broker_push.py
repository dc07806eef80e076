"""Registry changes made through the API reach the broker before the answer: a real Mosquitto
with the dynamic-security plugin, kept by the API's own broker admin account. A device detached
from its gateway, or decommissioned, can no longer be spoken for by that gateway, at once."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import orjson
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from pilotlab.settings import Settings
from tests.access.conftest import ADMIN, Peer, SecureBroker, requires_dynsec
from tests.support import admin_headers

pytestmark = [requires_dynsec, pytest.mark.mosquitto]


@pytest.fixture
def api(secure_broker: SecureBroker, database_url: str) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url, mqtt_url=secure_broker.url,
                        broker_admin_username=ADMIN[0], broker_admin_password=ADMIN[1])
    with TestClient(create_app(settings), headers=admin_headers(database_url)) as client:
        yield client


@pytest.fixture
def attached(api: TestClient, unique_id: Callable[[str], str]) -> tuple[str, str, str, str]:
    """A pilot with a gateway and a device attached to it, registered through the API:
    (pilot id, gateway id, gateway secret, device id)."""
    firm, pilot, gateway, device = unique_id("firm"), unique_id("pilot"), unique_id("gw"), unique_id("dev")
    assert api.post("/firms", json={"id": firm, "name": "Acme"}).status_code == 201
    assert api.post("/pilots", json={"id": pilot, "firm_id": firm, "name": "Air", "site": "Old Town",
                                     "starts_at": "2024-01-01T00:00:00Z", "status": "running"}).status_code == 201
    registered = api.post("/gateways", json={"id": gateway, "pilot_id": pilot, "protocol": "wifi"}).json()
    assert registered["credentials"]["broker_synced"] is True
    answer = api.post("/devices", json={"id": device, "pilot_id": pilot, "kind": "env_sensor", "connectivity": "wifi",
                                        "reporting_interval_s": 60, "gateway_id": gateway})
    assert answer.status_code == 201, answer.text
    return pilot, gateway, registered["credentials"]["mqtt_password"], device


def reading(seq: int) -> bytes:
    return orjson.dumps({"ts": datetime.now(UTC).isoformat(), "seq": seq, "temperature_c": 21.5})


def _observer(peer: Callable[..., Peer], pilot: str) -> Peer:
    watcher = peer(ADMIN[0], ADMIN[1], f"observer-{pilot}")
    assert not watcher.subscribe(f"pilotlab/v1/{pilot}/#").is_failure
    return watcher


def test_a_gateway_detached_with_patch_can_no_longer_publish_for_the_device(
        api: TestClient, peer: Callable[..., Peer], attached: tuple[str, str, str, str]) -> None:
    pilot, gateway_id, secret, device = attached
    topic = f"pilotlab/v1/{pilot}/{device}/telemetry"
    watcher = _observer(peer, pilot)
    gateway = peer(gateway_id, secret)
    assert gateway.accepted
    assert not gateway.publish(topic, reading(1)).is_failure

    detached = api.patch(f"/devices/{device}", json={"gateway_id": None})
    assert detached.status_code == 200 and detached.json()["broker_synced"] is True
    assert gateway.publish(topic, reading(2)).is_failure  # PUBACK 0x87 Not authorized, right after the answer
    time.sleep(0.3)
    assert [orjson.loads(payload)["seq"] for _, payload in watcher.received] == [1]  # the refused one never arrived

    again = api.patch(f"/devices/{device}", json={"gateway_id": gateway_id})
    assert again.json()["broker_synced"] is True
    assert not gateway.publish(topic, reading(3)).is_failure


def test_a_decommissioned_device_can_no_longer_be_spoken_for_by_its_gateway(
        api: TestClient, peer: Callable[..., Peer], attached: tuple[str, str, str, str]) -> None:
    pilot, gateway_id, secret, device = attached
    gateway = peer(gateway_id, secret)
    assert not gateway.publish(f"pilotlab/v1/{pilot}/{device}/telemetry", reading(1)).is_failure
    retired = api.post(f"/devices/{device}/decommission", json={"reason": "end of trial"})
    assert retired.status_code == 200 and retired.json()["broker_synced"] is True
    assert gateway.publish(f"pilotlab/v1/{pilot}/{device}/telemetry", reading(2)).is_failure


def test_a_gateway_change_is_not_made_when_the_broker_cannot_be_told(
        api: TestClient, secure_broker: SecureBroker, attached: tuple[str, str, str, str]) -> None:
    _, _, _, device = attached
    secure_broker.stop()
    refused = api.patch(f"/devices/{device}", json={"gateway_id": None})
    assert refused.status_code == 503
    assert refused.json()["detail"].startswith(f"the change to device {device!r} was not made: the broker could not be told")
    secure_broker.start()
    assert api.get(f"/devices/{device}").json()["gateway_id"] is not None  # rolled back with it


def test_without_a_broker_admin_the_answer_and_the_log_say_the_broker_was_not_told(
        database_url: str, unique_id: Callable[[str], str], caplog: pytest.LogCaptureFixture) -> None:
    with TestClient(create_app(Settings(database_url=database_url)), headers=admin_headers(database_url)) as api:
        firm, pilot, gateway, device = unique_id("firm"), unique_id("pilot"), unique_id("gw"), unique_id("dev")
        api.post("/firms", json={"id": firm, "name": "Acme"})
        api.post("/pilots", json={"id": pilot, "firm_id": firm, "name": "Air", "site": "s",
                                  "starts_at": "2024-01-01T00:00:00Z"})
        api.post("/gateways", json={"id": gateway, "pilot_id": pilot, "protocol": "wifi"})
        api.post("/devices", json={"id": device, "pilot_id": pilot, "kind": "env_sensor", "connectivity": "wifi",
                                   "reporting_interval_s": 60, "gateway_id": gateway})
        caplog.clear()
        detached = api.patch(f"/devices/{device}", json={"gateway_id": None})
    assert detached.status_code == 200 and detached.json()["broker_synced"] is None
    assert f"the change to device {device!r}: no broker admin account is configured" in caplog.text
    assert "until `pilotlab broker sync`" in caplog.text
