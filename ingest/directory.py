"""The ingest's view of the device registry: which devices exist, their kind and pilot.

Kept in memory and refreshed every `refresh_s`. An id not in memory is looked up on its own
before the message is dead-lettered as unknown, so a device registered a moment ago is accepted
at once; an id found missing is not asked for again for a second (a flood from an unregistered
device costs one query per second, not one per message). Nothing is ever auto-registered.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import NamedTuple

import psycopg

from devices.kinds import DeviceKind

MISS_TTL_S = 1.0
_COLUMNS = "id, pilot_id, kind, decommissioned_at"


class DeviceEntry(NamedTuple):
    pilot_id: str
    kind: DeviceKind
    decommissioned_at: datetime | None


class DeviceDirectory:
    def __init__(self, refresh_s: float) -> None:
        self._refresh_s = refresh_s
        self._entries: dict[str, DeviceEntry] = {}
        self._loaded_at = float("-inf")
        self._misses: dict[str, float] = {}

    def refresh_if_due(self, conn: psycopg.Connection) -> None:
        if time.monotonic() - self._loaded_at >= self._refresh_s:
            self.load(conn)

    def load(self, conn: psycopg.Connection) -> None:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM device").fetchall()
        conn.commit()
        self._entries = {r[0]: DeviceEntry(r[1], DeviceKind(r[2]), r[3]) for r in rows}
        self._misses.clear()
        self._loaded_at = time.monotonic()

    def lookup(self, device_id: str, conn: psycopg.Connection) -> DeviceEntry | None:
        entry = self._entries.get(device_id)
        if entry is not None:
            return entry
        now = time.monotonic()
        missed_at = self._misses.get(device_id)
        if missed_at is not None and now - missed_at < MISS_TTL_S:
            return None
        row = conn.execute(f"SELECT {_COLUMNS} FROM device WHERE id = %s", (device_id,)).fetchone()
        if row is None:
            if len(self._misses) > 10_000:
                self._misses.clear()
            self._misses[device_id] = now
            return None
        entry = self._entries[device_id] = DeviceEntry(row[1], DeviceKind(row[2]), row[3])
        return entry
