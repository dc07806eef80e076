"""A simulated fleet publishing in real time over MQTT v5, QoS 1, on the contract topics.

One paho client (a gateway-like publisher) serves every device. The main thread schedules ticks:
each device reports every `reporting_interval_s / speed` seconds, the first reports staggered
over the first second. `speed` compresses the reporting interval, not the clock: timestamps stay
real, so ingest accepts them however long the run. The client id (with an account, its username;
else one per pilot) is stable and the session persistent (clean_start False, session expiry), and
paho resends every unacknowledged QoS 1 message after a reconnect, so a broker restart loses
nothing already published; a message answered "no matching subscribers" (ingest not subscribed
yet) is published again (publisher.py).

Threading: the main thread ticks behaviours and calls `publish()`; paho's network thread sends,
reads PUBACKs (counted by AckCounter) and reconnects with backoff.
"""

from __future__ import annotations

import heapq
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from devices.contract import topic_for
from pilotlab.errors import ConfigError
from pilotlab.settings import MqttEndpoint, Settings
from simulators.burst import contract_messages, publish_burst
from simulators.device import SimulatedDevice, behaviour_for, load_devices, synthetic_devices
from simulators.nonconformant import Misbehaviour, Nonconformance
from simulators.publisher import AckCounter, account_client_id, close_client, open_client

__all__ = ["Fleet", "FleetReport", "SimulatedDevice", "contract_messages", "load_devices",
           "publish_burst", "run_simulation", "synthetic_devices"]

log = logging.getLogger(__name__)

FIRST_REPORT_WITHIN_S = 1.0
DRAIN_TIMEOUT_S = 10.0
DEFAULT_MAX_QUEUED = 100_000  # unacknowledged messages kept while the broker is away


@dataclass(frozen=True)
class FleetReport:
    devices: int
    published: int
    acknowledged: int
    refused: int
    dropped: int
    elapsed_s: float
    resent: int = 0  # answered "no matching subscribers" and published again

    def summary(self) -> str:
        rate = self.published / self.elapsed_s if self.elapsed_s > 0 else 0.0
        return (f"simulated {self.devices} devices for {self.elapsed_s:.1f} s: {self.published} published "
                f"({rate:.1f} msg/s), {self.acknowledged} acknowledged, {self.refused} refused, "
                f"{self.dropped} dropped, {self.resent} resent for want of a subscriber")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Fleet:
    """Devices ticking in real time through one MQTT client. `run()` blocks until `duration_s`,
    `max_messages`, or `stop()` / the stop event, then waits up to 10 s for outstanding PUBACKs."""

    def __init__(self, endpoint: MqttEndpoint, devices: Sequence[SimulatedDevice], *, speed: float = 1.0,
                 seed: int = 1, client_id: str | None = None, session_expiry_s: int = 3_600,
                 duration_s: float | None = None, max_messages: int | None = None,
                 stop_event: threading.Event | None = None, max_queued: int = DEFAULT_MAX_QUEUED,
                 username: str | None = None, password: str | None = None,
                 clock: Callable[[], datetime] = _utc_now, misbehaviour: Misbehaviour | None = None,
                 omit: str | None = None) -> None:
        if not devices:
            raise ConfigError("a fleet needs at least one device")
        if speed <= 0:
            raise ConfigError(f"speed must be positive, got {speed}")
        self.endpoint = endpoint
        self.devices = list(devices)
        self.speed = speed
        self.client_id = client_id or account_client_id(endpoint, username, f"pilotlab-sim-{self.devices[0].pilot_id}")
        self.session_expiry_s = session_expiry_s
        self.duration_s = duration_s
        self.max_messages = max_messages
        self.stop_event = stop_event or threading.Event()
        self.max_queued = max_queued
        self._credentials = (username, password)
        self._clock = clock
        self._behaviours = [behaviour_for(d, seed=seed) for d in self.devices]
        # Each device gets what it does wrong on purpose (simulators.nonconformant), if anything
        self._faults = [Nonconformance(misbehaviour, omit) if misbehaviour else None for _ in self.devices]
        self.acks = AckCounter()
        self.published = 0
        self._awaiting_ack = 0  # QoS 1 messages published: a QoS 0 one is never acknowledged
        self.dropped = 0

    @property
    def acknowledged(self) -> int:
        return self.acks.acknowledged

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> FleetReport:
        client = open_client(self.endpoint, self.client_id, self.acks, clean_start=False,
                             session_expiry_s=self.session_expiry_s, username=self._credentials[0],
                             password=self._credentials[1], max_queued=self.max_queued)
        log.info("simulating %d devices as %s on %s at speed %g", len(self.devices), self.client_id,
                 self.endpoint, self.speed)
        started = time.monotonic()
        try:
            self._tick_until_done(client, started)
        finally:
            self.acks.wait_for(self._awaiting_ack, DRAIN_TIMEOUT_S)
            close_client(client, self.acks)
        return FleetReport(len(self.devices), self.published, self.acks.acknowledged, self.acks.refused,
                           self.dropped, time.monotonic() - started, self.acks.resent)

    def _tick_until_done(self, client: mqtt.Client, started: float) -> None:
        n = len(self.devices)
        periods = [d.reporting_interval_s * (f.interval_factor if f else 1.0) / self.speed
                   for d, f in zip(self.devices, self._faults, strict=True)]
        due = [(started + min(FIRST_REPORT_WITHIN_S, periods[k]) * k / n, k) for k in range(n)]
        heapq.heapify(due)
        deadline = None if self.duration_s is None else started + self.duration_s
        while not self.stop_event.is_set():
            at, k = due[0]
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return
            if at > now:
                self.stop_event.wait(min(at, deadline or at) - now)
                continue
            heapq.heapreplace(due, (max(at + periods[k], now), k))
            device, fault = self.devices[k], self._faults[k]
            for reading in self._behaviours[k].tick(self._clock()):
                topic, payload, qos = topic_for(device.pilot_id, device.id, reading.channel), reading.payload, 1
                if fault is not None:
                    (topic, payload), qos = fault.apply(device.kind, topic, reading.channel, payload), fault.qos
                info = self.acks.publish(client, topic, orjson.dumps(payload), qos)
                if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:  # broker away too long: shed load
                    self.dropped += 1
                    continue
                self.published += 1  # accepted: paho sends it now or after reconnecting
                if qos:
                    self._awaiting_ack += 1
                if self.max_messages is not None and self.published >= self.max_messages:
                    return


def run_simulation(settings: Settings, pilot_id: str, speed: float = 1.0, duration_s: float | None = None,
                   seed: int = 1, device_ids: Sequence[str] = (), misbehaviour: Misbehaviour | None = None,
                   omit: str | None = None) -> int:
    """Simulate the registered fleet of `pilot_id` (or only `device_ids` of it) until `duration_s`
    or SIGINT/SIGTERM, every device misbehaving as `misbehaviour` says if given; log a one-line
    summary and return 0. Unreachable services raise ServiceUnavailable."""
    devices = load_devices(settings.require_database_url(), pilot_id)
    if device_ids:
        unknown = sorted(set(device_ids) - {d.id for d in devices})
        if unknown:
            raise ConfigError(f"pilot {pilot_id!r} has no active device {', '.join(map(repr, unknown))} "
                              "speaking the contract itself (LoRaWAN and gateway devices are not simulated here)")
        devices = [d for d in devices if d.id in set(device_ids)]
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    stop = threading.Event()
    fleet = Fleet(settings.mqtt, devices, speed=speed, seed=seed, duration_s=duration_s, stop_event=stop,
                  session_expiry_s=settings.session_expiry_s, username=settings.mqtt_username,
                  password=password, misbehaviour=misbehaviour, omit=omit)
    with _stopping_on_signals(stop):
        report = fleet.run()
    log.info(report.summary())
    return 0


class _stopping_on_signals:
    """Set `stop` on SIGINT/SIGTERM while inside (main thread only; elsewhere a no-op)."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        log.info("%s: stopping the simulation", signal.Signals(signum).name)
        self._stop.set()

    def __enter__(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
