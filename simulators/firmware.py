"""What every simulated device does, whatever its kind: keep its own clock, number its messages,
report status.

A behaviour is ticked at its reporting moments with the true time; it stamps each message with
its own clock (true time plus a small fixed skew, as real device clocks are never exact) and with
`seq`, one counter shared by all of the device's channels, as the contract requires.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, ClassVar, NamedTuple

from devices.kinds import Channel, DeviceKind
from devices.telemetry import SEQ_MAX

MAX_CLOCK_SKEW_MS = 800
LOW_BATTERY_PCT = 15.0


class Reading(NamedTuple):
    """One message a device sends: its channel and its contract payload (ts and seq included)."""

    channel: Channel
    payload: dict[str, Any]


class Sensed(NamedTuple):
    """A message before the firmware stamps it: when it happened (true time) and its fields."""

    at: datetime
    channel: Channel
    fields: dict[str, Any]


class Firmware:
    """Base of the behaviours: clock, seq counter, periodic status. Subclasses implement `_sense`.

    `status_every` ticks (and at the first tick) the device also sends a status message.
    `channels` limits what is sent; seq numbers are assigned only to messages that are sent, so
    they stay consecutive whatever the selection.
    """

    kind: ClassVar[DeviceKind]
    firmware_version: ClassVar[str] = "1.0.0"
    rssi_range_dbm: ClassVar[tuple[float, float]] = (-90.0, -50.0)

    def __init__(self, device_id: str, *, seed: int = 1, reporting_interval_s: float = 60.0,
                 status_every: int = 10, channels: frozenset[Channel] = frozenset(Channel),
                 tz: tzinfo = UTC) -> None:
        if reporting_interval_s <= 0:
            raise ValueError("reporting_interval_s must be positive")
        self.device_id = device_id
        self.reporting_interval_s = reporting_interval_s
        self.status_every = status_every
        self.channels = channels
        self.tz = tz
        # str seeds hash with SHA-512, so the stream is stable across runs and PYTHONHASHSEED.
        self.rng = random.Random(f"{seed}:{device_id}")
        self.skew = timedelta(milliseconds=self.rng.uniform(-MAX_CLOCK_SKEW_MS, MAX_CLOCK_SKEW_MS))
        self.next_seq = 0
        self.ticks = 0
        self.last_tick: datetime | None = None
        self._up_since_s = self.rng.uniform(0, 3 * 86_400)
        self._first_tick: datetime | None = None
        low, high = self.rssi_range_dbm
        self._rssi = self.rng.uniform(low, high)

    def tick(self, now: datetime) -> list[Reading]:
        """Everything the device sends at its reporting moment `now` (aware, non-decreasing)."""
        if now.tzinfo is None:
            raise ValueError("tick() needs an aware datetime")
        if self.last_tick is not None and now < self.last_tick:
            raise ValueError(f"{self.device_id}: time went backwards ({now} < {self.last_tick})")
        if self._first_tick is None:
            self._first_tick = now
        sensed = self._sense(now)
        if self.status_every > 0 and self.ticks % self.status_every == 0:
            sensed.append(Sensed(now, Channel.STATUS, self._status(now)))
        self.ticks += 1
        self.last_tick = now
        sensed.sort(key=lambda s: s.at)  # stable: same-moment messages keep their order
        return [self._stamp(s) for s in sensed if s.channel in self.channels]

    def elapsed_s(self, now: datetime) -> float:
        """Seconds since the previous tick (0 at the first)."""
        return 0.0 if self.last_tick is None else (now - self.last_tick).total_seconds()

    def local_hour(self, at: datetime) -> float:
        local = at.astimezone(self.tz)
        return local.hour + local.minute / 60 + local.second / 3600

    def battery_pct(self) -> float | None:
        """The battery level reported in status, None for mains-powered devices."""
        return None

    def _sense(self, now: datetime) -> list[Sensed]:
        raise NotImplementedError

    def _status(self, now: datetime) -> dict[str, Any]:
        low, high = self.rssi_range_dbm
        self._rssi = min(high, max(low, self._rssi + self.rng.gauss(0, 2)))
        assert self._first_tick is not None
        uptime = self._up_since_s + (now - self._first_tick).total_seconds()
        battery = self.battery_pct()
        fields: dict[str, Any] = {
            "state": "low_battery" if battery is not None and battery < LOW_BATTERY_PCT else "online",
            "rssi_dbm": round(self._rssi),
            "uptime_s": min(int(uptime), SEQ_MAX),
            "firmware": self.firmware_version,
        }
        if battery is not None:
            fields["battery_pct"] = round(battery, 1)
        return fields

    def _stamp(self, sensed: Sensed) -> Reading:
        payload = {"ts": (sensed.at + self.skew).isoformat(timespec="milliseconds"),
                   "seq": self.next_seq, **sensed.fields}
        self.next_seq = 0 if self.next_seq == SEQ_MAX else self.next_seq + 1
        return Reading(sensed.channel, payload)
