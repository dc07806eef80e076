"""Frame counters as pilotlab receives them: widening 16-bit counters and merging duplicates.

ChirpStack v4 (`UplinkEvent.f_cnt`, u32) and The Things Stack v3 (`ApplicationUplink.f_cnt`,
uint32) both report the full 32-bit counter they reconstructed from the 16 bits on air; a source
that forwards only the 16 bits on air is configured with `fcnt_bits: 16` and widened here.

Loss itself is not counted here but from the stored frames (view `uplink_loss_hourly`), so it is
exact whatever the arrival order and however many workers share the stream.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

HALF_16 = 0x8000
DUPLICATE_WINDOW = timedelta(minutes=2)  # same counter within this time: the same uplink
_MAX_TRACKED = 100_000


def widen_16(last_full: int | None, raw: int) -> int:
    """The 32-bit counter closest to `last_full` whose low 16 bits are `raw`.

    Forward by less than half the 16-bit range is progress (rollover 65535 → 65536 included);
    back by less than half is a late frame. Without history the raw value is taken as it is."""
    if last_full is None:
        return raw
    forward = (raw - last_full) & 0xFFFF
    if forward < HALF_16:
        return last_full + forward
    return max(0, last_full - ((last_full - raw) & 0xFFFF))


class CounterWidener:
    """Per-device state for 16-bit sources; the last counter is looked up in the database the
    first time a device is seen (`seed`), and forgotten at a join (the counter restarts)."""

    def __init__(self, seed: Callable[[str], int | None]) -> None:
        self._seed = seed
        self._last: dict[str, int | None] = {}

    def widen(self, device_id: str, raw: int) -> int:
        last = self._last[device_id] if device_id in self._last else self._seed(device_id)
        full = widen_16(last, raw & 0xFFFF)
        if len(self._last) > _MAX_TRACKED:
            self._last.clear()
        self._last[device_id] = full if last is None else max(full, last)
        return full

    def joined(self, device_id: str) -> None:
        self._last[device_id] = None


class DuplicateWindow:
    """The first network-server time seen for (device, counter), so that copies of one uplink
    published separately (per gateway, or late) with slightly different times are one frame."""

    def __init__(self) -> None:
        self._first: dict[tuple[str, int], datetime] = {}

    def canonical_time(self, device_id: str, fcnt: int, uplink_time: datetime) -> datetime:
        key = (device_id, fcnt)
        first = self._first.get(key)
        if first is not None and abs(uplink_time - first) <= DUPLICATE_WINDOW:
            return first
        if len(self._first) > _MAX_TRACKED:
            self._first.clear()
        self._first[key] = uplink_time
        return uplink_time
