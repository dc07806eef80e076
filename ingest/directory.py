"""The ingest's view of the device registry: which devices exist, their kind, pilot and profile.

Kept in memory and refreshed every `refresh_s`. An id not in memory is looked up on its own
before the message is dead-lettered as unknown, so a device registered a moment ago is accepted
at once; an id found missing is not asked for again for a second (a flood from an unregistered
device costs one query per second, not one per message). Nothing is ever auto-registered.

A device with a profile carries its current version's definition (devices.profiles), read with
the refresh and validated once per (profile id, version): versions are immutable, so a cached
definition never goes stale, and a profile changed in the registry is in use after the next
refresh. A stored definition that no longer validates is carried as its problem (ingest then
dead-letters the device's frames with it) rather than stopping the load.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, NamedTuple

import psycopg
from pydantic import ValidationError

from devices.kinds import DeviceKind
from devices.profiles import ProfileDefinition

MISS_TTL_S = 1.0
_COLUMNS = "d.id, d.pilot_id, d.kind, d.decommissioned_at, d.profile_id, p.current_version"
_FROM = "device d LEFT JOIN device_profile p ON p.id = d.profile_id"


class DeviceProfile(NamedTuple):
    """The profile version a device's frames are read by: its definition, or why it has none."""

    id: str
    version: int
    definition: ProfileDefinition | None
    problem: str | None = None


class DeviceEntry(NamedTuple):
    pilot_id: str
    kind: DeviceKind
    decommissioned_at: datetime | None
    profile: DeviceProfile | None = None


class DeviceDirectory:
    def __init__(self, refresh_s: float) -> None:
        self._refresh_s = refresh_s
        self._entries: dict[str, DeviceEntry] = {}
        self._loaded_at = float("-inf")
        self._misses: dict[str, float] = {}
        self._profiles: dict[tuple[str, int], DeviceProfile] = {}

    def refresh_if_due(self, conn: psycopg.Connection) -> None:
        if time.monotonic() - self._loaded_at >= self._refresh_s:
            self.load(conn)

    def load(self, conn: psycopg.Connection) -> None:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM {_FROM}").fetchall()
        in_use = {(r[4], r[5]) for r in rows if r[4] is not None}
        self._profiles = {key: found for key, found in self._profiles.items() if key in in_use}
        self._load_profiles(conn, in_use)
        conn.commit()
        self._entries = {r[0]: self._entry(r) for r in rows}
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
        row = conn.execute(f"SELECT {_COLUMNS} FROM {_FROM} WHERE d.id = %s", (device_id,)).fetchone()
        if row is None:
            if len(self._misses) > 10_000:
                self._misses.clear()
            self._misses[device_id] = now
            return None
        if row[4] is not None:
            self._load_profiles(conn, {(row[4], row[5])})
        entry = self._entries[device_id] = self._entry(row)
        return entry

    def _entry(self, row: tuple[Any, ...]) -> DeviceEntry:
        profile = self._profiles.get((row[4], row[5])) if row[4] is not None else None
        return DeviceEntry(row[1], DeviceKind(row[2]), row[3], profile)

    def _load_profiles(self, conn: psycopg.Connection, wanted: set[tuple[str, int]]) -> None:
        """Read and validate the definitions of the (profile id, version) pairs not yet cached."""
        missing = wanted - self._profiles.keys()
        if not missing:
            return
        ids, versions = zip(*sorted(missing), strict=True)
        rows = conn.execute(
            "SELECT v.profile_id, v.version, v.definition FROM device_profile_version v "
            "JOIN unnest(%s::text[], %s::int[]) AS w(id, version) ON w.id = v.profile_id AND w.version = v.version",
            (list(ids), list(versions))).fetchall()
        for profile_id, version, definition in rows:
            try:
                parsed = ProfileDefinition.model_validate(definition)
                self._profiles[(profile_id, version)] = DeviceProfile(profile_id, version, parsed)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(part) for part in first["loc"])
                problem = f"device profile {profile_id!r} version {version} is not valid: {where + ': ' if where else ''}{first['msg']}"
                self._profiles[(profile_id, version)] = DeviceProfile(profile_id, version, None, problem[:300])
