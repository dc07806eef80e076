"""A known stream for a registered pilot, published in the background, and the checks that
every message of it was stored exactly once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg

from devices.kinds import DeviceKind
from pilotlab.settings import MqttEndpoint
from simulators.burst import contract_messages, publish_burst
from simulators.device import SimulatedDevice
from tests.support import RegisteredPilot, count_rows


def stream(pilot: RegisteredPilot, per_device: int) -> list[tuple[str, bytes]]:
    """per_device telemetry messages for each of the pilot's three devices, seq 0 … per_device-1."""
    devices = [
        SimulatedDevice(pilot.switch_id, pilot.pilot_id, DeviceKind.SMART_SWITCH, 60),
        SimulatedDevice(pilot.tracker_id, pilot.pilot_id, DeviceKind.LOCATION_TRACKER, 60),
        SimulatedDevice(pilot.env_id, pilot.pilot_id, DeviceKind.ENV_SENSOR, 60),
    ]
    return list(contract_messages(devices, per_device, datetime.now(UTC) - timedelta(days=10), seed=11))


def stored(database_url: str, pilot: RegisteredPilot) -> int:
    """Rows of the pilot's devices; 0 while the database is down (callers poll)."""
    try:
        return count_rows(database_url, "SELECT count(*) FROM telemetry WHERE device_id = ANY(%s)",
                          (pilot.device_ids,))
    except psycopg.OperationalError:
        return 0


def assert_each_stored_once(database_url: str, pilot: RegisteredPilot, per_device: int) -> None:
    """Every device has exactly seq 0 … per_device-1, each once: published = stored, no duplicates."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT device_id, count(*), count(DISTINCT seq), min(seq), max(seq) FROM telemetry "
            "WHERE device_id = ANY(%s) GROUP BY device_id", (pilot.device_ids,)
        ).fetchall()
    assert sorted(rows) == sorted((d, per_device, per_device, 0, per_device - 1) for d in pilot.device_ids)


def paced(messages: Iterable[tuple[str, bytes]], per_second: float, gate: threading.Event | None = None,
          pause_at: int | None = None) -> Iterator[tuple[str, bytes]]:
    """The messages at about `per_second`, so that a fault can land in the middle of publishing;
    while `gate` is clear, publishing pauses (the client stays connected and keeps reading acks).
    With `pause_at`, the gate is cleared by itself before that message."""
    sent_at = time.monotonic()
    for n, message in enumerate(messages):
        if gate is not None and n == pause_at:
            gate.clear()
        if n % 50 == 0 or n == pause_at:
            if gate is not None and not gate.is_set():
                gate.wait()
                sent_at = time.monotonic() - n / per_second
            time.sleep(max(0.0, sent_at + n / per_second - time.monotonic()))
        yield message


class BackgroundPublisher(threading.Thread):
    """publish_burst in a thread (paced at `per_second` if given): `acknowledged` is set once
    the broker acknowledged every message."""

    def __init__(self, url: str, messages: list[tuple[str, bytes]], *, max_inflight: int = 200,
                 per_second: float | None = None, pause_at: int | None = None) -> None:
        super().__init__(daemon=True)
        self.url, self.messages, self.max_inflight = url, messages, max_inflight
        self.per_second, self.pause_at = per_second, pause_at
        self.gate = threading.Event()  # clear it to pause a paced publisher
        self.gate.set()
        self.acknowledged = -1
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            feed = self.messages if self.per_second is None else paced(self.messages, self.per_second, self.gate, self.pause_at)
            self.acknowledged = publish_burst(MqttEndpoint(self.url), feed,
                                              max_inflight=self.max_inflight, timeout_s=120)
        except BaseException as exc:  # reported by finish()
            self.error = exc

    def finish(self, timeout_s: float) -> int:
        self.join(timeout_s)
        assert not self.is_alive(), f"the publisher did not finish within {timeout_s} s"
        if self.error is not None:
            raise self.error
        return self.acknowledged
