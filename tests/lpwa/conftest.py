"""LPWA and gateway tests: a pilot with LoRaWAN devices (DevEUIs) and a Wi-Fi gateway, workers
subscribed to this test's own network-server topics, device profiles given to its devices, and
the readings they store."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from devices.profiles import ProfileDefinition
from pilotlab.settings import NetworkServerSource
from store import profiles
from tests.ingest.conftest import thread_worker, worker_settings  # noqa: F401  (shared fixtures)
from tests.support import register_pilot, wait_until


@dataclass(frozen=True)
class LpwaPilot:
    pilot_id: str
    env_id: str
    switch_id: str
    tracker_id: str
    eui: dict[str, str]  # device id → DevEUI
    app: str  # ChirpStack application id and TTS application of this test
    gateway_id: str
    behind_gateway: tuple[str, str]  # switches attached to the Wi-Fi gateway
    elsewhere: str  # a registered device attached to no gateway


def register_lpwa_pilot(database_url: str, name: str) -> LpwaPilot:
    base = register_pilot(database_url, name)
    eui = {d: secrets.token_hex(8) for d in (base.env_id, base.switch_id, base.tracker_id)}
    gateway = f"{name}-gw"
    behind = (f"{name}-wsw1", f"{name}-wsw2")
    with psycopg.connect(database_url) as conn:
        for device_id, dev_eui in eui.items():
            conn.execute("UPDATE device SET dev_eui = %s, connectivity = 'lpwa' WHERE id = %s", (dev_eui, device_id))
        conn.execute("INSERT INTO gateway (id, pilot_id, protocol) VALUES (%s, %s, 'wifi')", (gateway, base.pilot_id))
        for device_id in behind:
            conn.execute("INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, gateway_id, "
                         "commissioned_at) VALUES (%s, %s, 'smart_switch', 'wifi', 60, %s, now() - interval '1 day')",
                         (device_id, base.pilot_id, gateway))
    return LpwaPilot(base.pilot_id, base.env_id, base.switch_id, base.tracker_id, eui, f"app-{name}",
                     gateway, behind, base.tracker_id)


@pytest.fixture
def lpwa(database_url: str, unique_id: Callable[[str], str]) -> LpwaPilot:
    return register_lpwa_pilot(database_url, unique_id("lp"))


@pytest.fixture
def lpwa_sources(lpwa: LpwaPilot) -> list[NetworkServerSource]:
    """ChirpStack on the test broker (QoS 1, shared) and a TTS-like source (3.1.1, QoS 0), both
    limited to this test's application so concurrent tests never see each other's uplinks."""
    return [
        NetworkServerSource(name="cs", network_server="chirpstack",
                            topics=(f"application/{lpwa.app}/device/+/event/+",)),
        NetworkServerSource(name="tts", network_server="tts", protocol="3.1.1", qos=0, shared=False,
                            topics=(f"v3/{lpwa.app}@ttn/devices/+/+",)),
    ]


@pytest.fixture
def lpwa_worker(request: pytest.FixtureRequest, lpwa_sources: list[NetworkServerSource]) -> Callable[..., object]:
    """`thread_worker` (tests/ingest) with this test's network-server sources."""
    start_worker = request.getfixturevalue("thread_worker")

    def start(**overrides: object) -> object:
        return start_worker(lpwa_sources=lpwa_sources, **overrides)
    return start


def profile_definition(kind: str, measurements: list[str], uplinks: dict[str, Any]) -> dict[str, Any]:
    """A device profile of `kind` with these per-fPort uplinks, under a model name of its own."""
    return {"vendor": "Test", "model": f"model-{secrets.token_hex(3)}", "firmware_version": "1.0", "kind": kind,
            "reporting_interval_s": 600, "measurements": measurements, "uplinks": uplinks}


def use_profile(database_url: str, device_id: str, profile_id: str, definition: dict[str, Any]) -> None:
    """Create the profile (version 1) and give it to the device."""
    with psycopg.connect(database_url) as conn:
        profiles.create(conn, profile_id, None, ProfileDefinition.model_validate(definition))
        profiles.assign(conn, device_id, profile_id)


def _reading(database_url: str, device_id: str, seq: int) -> dict[str, Any] | None:
    with psycopg.connect(database_url) as conn:
        cur = conn.execute("SELECT * FROM telemetry WHERE device_id = %s AND seq = %s", (device_id, seq))
        row = cur.fetchone()
        return dict(zip([c.name for c in cur.description], row, strict=True)) if row else None


def stored_reading(database_url: str, device_id: str, seq: int) -> dict[str, Any]:
    """The device's telemetry row `seq` (column -> value), once the worker has stored it."""
    return wait_until(lambda: _reading(database_url, device_id, seq), 15, what=f"{device_id} reading {seq}")
