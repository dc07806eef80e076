"""Commands to smart switches, end to end: the API, the real broker, a real ingest worker and
simulated switches that obey, report or ignore (simulators.commanded_switch)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from pilotlab.settings import MqttEndpoint, Settings
from tests.access.conftest import ingest, peer, secure_broker, synced  # noqa: F401  (shared fixtures)
from tests.ingest.conftest import thread_worker, worker_settings  # noqa: F401  (shared fixtures)
from tests.lpwa.conftest import lpwa, lpwa_sources, lpwa_worker  # noqa: F401  (shared fixtures)
from tests.support import admin_headers, wait_until


@dataclass(frozen=True)
class SwitchPilot:
    firm_id: str
    pilot_id: str
    obeying: str
    ignoring: str
    reporting: str
    silent: str  # a switch no simulator plays


def register_switches(database_url: str, name: str) -> SwitchPilot:
    """A running pilot of four Wi-Fi switches, commissioned two days ago (past the burn-in)."""
    found = SwitchPilot(f"{name}-firm", f"{name}-pilot", f"{name}-obey", f"{name}-ignore", f"{name}-report",
                        f"{name}-silent")
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO firm (id, name) VALUES (%s, %s)", (found.firm_id, name))
        conn.execute("INSERT INTO pilot (id, firm_id, name, site, starts_at, status) "
                     "VALUES (%s, %s, %s, 'test site', now() - interval '3 days', 'running')",
                     (found.pilot_id, found.firm_id, name))
        for device_id in (found.obeying, found.ignoring, found.reporting, found.silent):
            conn.execute("INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, commissioned_at) "
                         "VALUES (%s, %s, 'smart_switch', 'wifi', 60, now() - interval '2 days')",
                         (device_id, found.pilot_id))
    return found


@pytest.fixture
def switches(database_url: str, unique_id: Callable[[str], str]) -> SwitchPilot:
    return register_switches(database_url, unique_id("cmd"))


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def api(database_url: str, mqtt_url: str) -> Iterator[TestClient]:
    """The API as an admin, publishing on the test broker (anonymous, as the demo's)."""
    with TestClient(create_app(Settings(database_url=database_url, mqtt_url=mqtt_url)),
                    headers=admin_headers(database_url)) as client:
        yield client


def send(api: TestClient, device_id: str, relay_on: bool, expiry_s: int = 5) -> dict[str, Any]:
    answer = api.post(f"/devices/{device_id}/commands", json={"relay_on": relay_on, "expiry_s": expiry_s})
    assert answer.status_code == 201, answer.text
    command: dict[str, Any] = answer.json()
    return command


def settled(api: TestClient, command_id: str, timeout_s: float = 10) -> dict[str, Any]:
    """The command once it is no longer `sent` (acknowledged, failed or expired)."""
    def probe() -> dict[str, Any] | None:
        found: dict[str, Any] = api.get(f"/commands/{command_id}").json()
        return found if found["state"] != "sent" else None
    found = wait_until(probe, timeout_s, interval_s=0.05, what=f"command {command_id} to settle")
    assert found is not None
    return found


class Listener:
    """A plain MQTT v5 subscriber of `topics` on the test broker: what a network server (or a
    device) would receive. `messages`: (topic, JSON-decoded payload), in arrival order."""

    def __init__(self, mqtt_url: str, *topics: str) -> None:
        import threading

        import orjson
        import paho.mqtt.client as mqtt

        endpoint = MqttEndpoint(mqtt_url)
        self.messages: list[tuple[str, Any]] = []
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        subscribed = threading.Event()
        self._client.on_subscribe = lambda c, u, mid, reasons, p: subscribed.set()
        self._client.on_message = lambda c, u, m: self.messages.append((m.topic, orjson.loads(m.payload)))
        self._client.connect(endpoint.host, endpoint.port)
        self._client.loop_start()
        self._client.subscribe([(topic, 1) for topic in topics])
        assert subscribed.wait(5), f"no subscription to {topics}"

    def wait_for(self, count: int) -> list[tuple[str, Any]]:
        wait_until(lambda: len(self.messages) >= count, 5, what=f"{count} message(s)")
        return self.messages

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
