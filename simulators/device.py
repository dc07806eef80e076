"""Registered devices as the simulator sees them, and the behaviour that plays each one."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, tzinfo

from devices.kinds import Channel, DeviceKind
from pilotlab.errors import NotFound
from simulators.environment import EnvSensor
from simulators.firmware import Firmware
from simulators.switch import SmartSwitch
from simulators.tracker import LocationTracker
from store.connection import connect

BEHAVIOURS: dict[DeviceKind, type[Firmware]] = {
    DeviceKind.SMART_SWITCH: SmartSwitch,
    DeviceKind.LOCATION_TRACKER: LocationTracker,
    DeviceKind.ENV_SENSOR: EnvSensor,
}


@dataclass(frozen=True)
class SimulatedDevice:
    id: str
    pilot_id: str
    kind: DeviceKind
    reporting_interval_s: float


def behaviour_for(device: SimulatedDevice, *, seed: int = 1, status_every: int = 10,
                  channels: Collection[Channel] = frozenset(Channel), tz: tzinfo = UTC) -> Firmware:
    """A fresh behaviour for `device`; the same seed gives the same messages at the same ticks."""
    return BEHAVIOURS[device.kind](device.id, seed=seed, reporting_interval_s=device.reporting_interval_s,
                                   status_every=status_every, channels=frozenset(channels), tz=tz)


def load_devices(database_url: str, pilot_id: str) -> list[SimulatedDevice]:
    """The pilot's registered devices that are not decommissioned, ordered by id.

    Raises NotFound if the pilot is unknown or has no such device.
    """
    with connect(database_url) as conn:
        rows = conn.execute(
            """SELECT id, pilot_id, kind, reporting_interval_s FROM device
               WHERE pilot_id = %s AND (decommissioned_at IS NULL OR decommissioned_at > now())
                 AND dev_eui IS NULL AND gateway_id IS NULL  -- those speak through a network server or gateway
               ORDER BY id""", (pilot_id,)).fetchall()
        if not rows:
            known = conn.execute("SELECT 1 FROM pilot WHERE id = %s", (pilot_id,)).fetchone()
    if not rows:
        if known is None:
            raise NotFound(f"pilot {pilot_id!r} is not registered (try `pilotlab db seed-demo` for 'demo-pilot')")
        raise NotFound(f"pilot {pilot_id!r} has no active devices to simulate: register some first")
    return [SimulatedDevice(id, pilot, DeviceKind(kind), float(interval)) for id, pilot, kind, interval in rows]


def synthetic_devices(pilot_id: str, count: int, *, reporting_interval_s: float = 60.0,
                      kinds: Collection[DeviceKind] = tuple(DeviceKind)) -> list[SimulatedDevice]:
    """`count` unregistered devices cycling through `kinds`, for broker-only tests and benchmarks."""
    order = list(kinds)
    return [SimulatedDevice(f"{pilot_id}-sim-{i + 1}", pilot_id, order[i % len(order)], reporting_interval_s)
            for i in range(count)]
