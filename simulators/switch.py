"""A Wi-Fi smart switch metering the appliance it powers.

Every tick it sends a heartbeat (trigger "heartbeat") with the power drawn now and a lifetime
energy counter that never decreases. Between ticks the relay toggles on a daily schedule
(trigger "schedule") and at random moments by hand or phone ("button", "app", "remote"); each
toggle is sent at the moment it happened. Rarely the load surges past the relay's limit: the
switch trips (trigger "overload", relay off) and sends an "overload" event.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from devices.kinds import Channel, DeviceKind
from simulators.firmware import Firmware, Sensed

# (appliance, rated watts)
APPLIANCES = (("lamp", 9.5), ("tv", 85.0), ("fridge", 120.0), ("heater", 1500.0), ("kettle", 2000.0))
LIMIT_W = 3680.0  # 16 A at 230 V
MEAN_MANUAL_TOGGLE_S = 4 * 3600.0
OVERLOAD_PER_HOUR_ON = 0.05
MANUAL_TRIGGERS = ("button", "app", "remote")
MANUAL_WEIGHTS = (5, 4, 1)


class SmartSwitch(Firmware):
    kind = DeviceKind.SMART_SWITCH
    firmware_version = "2.3.1"
    rssi_range_dbm = (-80.0, -40.0)

    def __init__(self, device_id: str, **kwargs: Any) -> None:
        super().__init__(device_id, **kwargs)
        self.appliance, self.rated_w = self.rng.choice(APPLIANCES)
        self.relay_on = self.rng.random() < 0.5
        self.energy_wh = round(self.rng.uniform(0, 50_000), 3)
        self.schedule_on_h = 6.5 + self.rng.random()      # lights on around 07:00 ...
        self.schedule_off_h = 22.5 + self.rng.random()    # ... off around 23:00
        self._cursor: datetime | None = None              # energy integrated up to here

    def power_w(self) -> float:
        if not self.relay_on:
            return 0.0
        return max(0.0, self.rated_w * (1 + self.rng.gauss(0, 0.03)))

    def _sense(self, now: datetime) -> list[Sensed]:
        if self._cursor is None:
            self._cursor = now
        out: list[Sensed] = []
        for at, trigger, turn_on in self._toggles(self._cursor, now):
            if turn_on == self.relay_on:
                continue
            self._integrate(at)
            self.relay_on = turn_on
            out.append(Sensed(at, Channel.TELEMETRY, self._fields(trigger)))
        self._integrate(now)
        if self.relay_on and self._surges(self.elapsed_s(now)):
            surge = round(LIMIT_W * self.rng.uniform(1.05, 1.4), 1)
            out.append(Sensed(now, Channel.EVENT, {
                "event": "overload", "detail": {"power_w": surge, "limit_w": LIMIT_W, "appliance": self.appliance}}))
            self.relay_on = False
            out.append(Sensed(now, Channel.TELEMETRY, self._fields("overload")))
        out.append(Sensed(now, Channel.TELEMETRY, self._fields("heartbeat")))
        return out

    def _fields(self, trigger: str) -> dict[str, Any]:
        return {"relay_on": self.relay_on, "power_w": round(self.power_w(), 1),
                "energy_wh": round(self.energy_wh, 3), "trigger": trigger}

    def _integrate(self, until: datetime) -> None:
        assert self._cursor is not None
        hours = (until - self._cursor).total_seconds() / 3600
        if self.relay_on and hours > 0:
            self.energy_wh += self.rated_w * hours
        self._cursor = max(self._cursor, until)

    def _surges(self, elapsed_s: float) -> bool:
        return self.rng.random() < 1 - math.exp(-OVERLOAD_PER_HOUR_ON * elapsed_s / 3600)

    def _toggles(self, start: datetime, end: datetime) -> list[tuple[datetime, str, bool]]:
        """Relay commands in (start, end], in time order: schedule crossings and manual toggles."""
        found = [(at, "schedule", True) for at in self._daily(start, end, self.schedule_on_h)]
        found += [(at, "schedule", False) for at in self._daily(start, end, self.schedule_off_h)]
        span_s = (end - start).total_seconds()
        if span_s > 0 and self.rng.random() < 1 - math.exp(-span_s / MEAN_MANUAL_TOGGLE_S):
            at = start + timedelta(seconds=self.rng.uniform(0, span_s))
            trigger = self.rng.choices(MANUAL_TRIGGERS, MANUAL_WEIGHTS)[0]
            found.append((at, trigger, not self._state_at(at, found)))
        found.sort(key=lambda t: t[0])
        return found

    def _state_at(self, at: datetime, earlier: list[tuple[datetime, str, bool]]) -> bool:
        state = self.relay_on
        for when, _, turn_on in sorted(earlier, key=lambda t: t[0]):
            if when < at:
                state = turn_on
        return state

    def _daily(self, start: datetime, end: datetime, hour: float) -> Iterator[datetime]:
        """Moments in (start, end] when the local clock reads `hour`."""
        day = start.astimezone(self.tz).replace(hour=0, minute=0, second=0, microsecond=0)
        while day <= end:
            at = day + timedelta(hours=hour)
            if start < at <= end:
                yield at
            day += timedelta(days=1)
