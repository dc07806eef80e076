"""Small helpers the test packages share: waiting for a condition, registering a pilot."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import psycopg

T = TypeVar("T")


def wait_until(probe: Callable[[], T], timeout_s: float, interval_s: float = 0.1,
               what: str = "condition") -> T:
    """Poll `probe` until it returns something truthy; fail the test after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last: {value!r})")
        time.sleep(interval_s)


@dataclass(frozen=True)
class RegisteredPilot:
    firm_id: str
    pilot_id: str
    switch_id: str
    tracker_id: str
    env_id: str

    @property
    def device_ids(self) -> list[str]:
        return [self.switch_id, self.tracker_id, self.env_id]


def register_pilot(database_url: str, name: str) -> RegisteredPilot:
    """A running pilot with one device of each kind, ids derived from `name`."""
    pilot = RegisteredPilot(f"{name}-firm", f"{name}-pilot", f"{name}-sw", f"{name}-tr", f"{name}-env")
    start = datetime.now(UTC) - timedelta(days=1)
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO firm (id, name) VALUES (%s, %s)", (pilot.firm_id, name))
        conn.execute(
            "INSERT INTO pilot (id, firm_id, name, site, stage, starts_at, status) "
            "VALUES (%s, %s, %s, 'test site', 3, %s, 'running')",
            (pilot.pilot_id, pilot.firm_id, name, start),
        )
        for device_id, kind, connectivity in (
            (pilot.switch_id, "smart_switch", "wifi"),
            (pilot.tracker_id, "location_tracker", "cellular"),
            (pilot.env_id, "env_sensor", "lpwa"),
        ):
            conn.execute(
                "INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, commissioned_at) "
                "VALUES (%s, %s, %s, %s, 60, %s)",
                (device_id, pilot.pilot_id, kind, connectivity, start),
            )
    return pilot


def count_rows(database_url: str, query: str, params: tuple[object, ...] = ()) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(query, params).fetchone()  # type: ignore[arg-type]
    return int(row[0]) if row else 0


def publish(mqtt_url: str, messages: list[tuple[str, bytes | str]], qos: int = 1) -> None:
    """Publish a few messages over MQTT v5 and return once the broker acknowledged them all."""
    import paho.mqtt.client as mqtt
    import paho.mqtt.publish as paho_publish

    from pilotlab.settings import MqttEndpoint

    endpoint = MqttEndpoint(mqtt_url)
    paho_publish.multiple(
        [{"topic": topic, "payload": payload, "qos": qos} for topic, payload in messages],
        hostname=endpoint.host, port=endpoint.port, protocol=mqtt.MQTTv5,
    )


def admin_headers(database_url: str) -> dict[str, str]:
    """`Authorization` for a new admin API key in that database (API tests act as the operator)."""
    from access import api_keys

    with psycopg.connect(database_url, autocommit=True) as conn:
        token = api_keys.create(conn, "admin", name="tests").token
    return {"Authorization": f"Bearer {token}"}
