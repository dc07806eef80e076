"""Which devices are scored, and over which window of time.

A pilot is scored over `[pilot.starts_at, end)`, where `end` is `pilot.ends_at` if it has passed,
else the `as_of` time given (default: the start of the current day in the pilot's time zone, so
scoring twice on the same day sees the same window). The window is bounded, because its length is
the work one score asks for (every local day of every device is summarised): `as_of` past the
pilot's end is the end; an end more than AS_OF_TOLERANCE after now, or a window longer than
MAX_WINDOW, is refused (InvalidWindow: HTTP 422, CLI exit 2) before anything is read.

Each device's window is `[max(pilot start, commissioned_at + burn_in), min(end, decommission))`:

- a late joiner counts from its own window start;
- a device decommissioned before `end` (a decommission always has a recorded reason in the
  registry: a planned retirement) is **excluded** from the fleet; too many exclusions make the
  pilot invalid (rubric `gates.max_excluded_share`);
- a device that simply goes silent is not excluded: it counts as down to the end of its window;
- a device whose window is empty (commissioned after the end) is **not started** and not scored.

Each device comes with what its profile declares (scoring.declared), which scoring follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg
from psycopg.rows import class_row

from pilotlab.errors import InvalidRequest, InvalidWindow, NotFound
from scoring import declared
from scoring.declared import Declaration
from scoring.rubric import Rubric

AS_OF_TOLERANCE = timedelta(minutes=5)  # a client's clock a little ahead of the server's
MAX_WINDOW = timedelta(days=3660)  # ten years: longer than any pilot, ~0.5 % of what as_of=4000-01-01 asked for


@dataclass(frozen=True)
class PilotInfo:
    id: str
    name: str
    site: str
    stage: int
    firm_id: str
    firm_name: str
    starts_at: datetime
    ends_at: datetime | None
    timezone: str


@dataclass(frozen=True)
class DeviceRow:
    id: str
    kind: str
    connectivity: str
    reporting_interval_s: int
    commissioned_at: datetime
    decommissioned_at: datetime | None
    decommission_reason: str | None
    claimed_battery_days: float | None


@dataclass(frozen=True)
class DeviceWindow:
    device: DeviceRow
    status: str  # "scored" | "excluded" | "not_started"
    start: datetime
    end: datetime
    declared: Declaration | None = None  # None: the device has no profile

    @property
    def seconds(self) -> float:
        return max(0.0, (self.end - self.start).total_seconds())


@dataclass(frozen=True)
class PilotWindow:
    pilot: PilotInfo
    start: datetime
    end: datetime
    devices: list[DeviceWindow]

    @property
    def scored(self) -> list[DeviceWindow]:
        return [d for d in self.devices if d.status == "scored"]


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRequest(f"unknown time zone {name!r}: use an IANA name such as 'Asia/Seoul'") from None


def local_midnight(now: datetime, tz: str) -> datetime:
    """The start of `now`'s day in time zone `tz` (an aware datetime)."""
    local = now.astimezone(zone(tz))
    return datetime.combine(local.date(), datetime.min.time(), tzinfo=zone(tz))


def local_day(moment: datetime, tz: str) -> date:
    return moment.astimezone(zone(tz)).date()


def load_pilot(conn: psycopg.Connection, pilot_id: str) -> PilotInfo:
    with conn.cursor(row_factory=class_row(PilotInfo)) as cur:
        found = cur.execute(
            "SELECT p.id, p.name, p.site, p.stage, p.firm_id, f.name AS firm_name, p.starts_at, p.ends_at, "
            "p.timezone FROM pilot p JOIN firm f ON f.id = p.firm_id WHERE p.id = %s", (pilot_id,)).fetchone()
    if found is None:
        raise NotFound(f"no pilot with id {pilot_id!r}")
    zone(found.timezone)
    return found


def window_end(pilot: PilotInfo, as_of: datetime, now: datetime | None = None) -> datetime:
    """The end of the pilot's scoring window for `as_of`; InvalidWindow if it cannot be scored."""
    now = now or datetime.now(UTC)
    end = min(pilot.ends_at, as_of) if pilot.ends_at is not None else as_of
    if end <= pilot.starts_at:
        raise InvalidWindow(f"pilot {pilot.id!r} has no scoring window yet: it starts at "
                            f"{pilot.starts_at.isoformat()} and the window would end at {end.isoformat()}")
    if end > now + AS_OF_TOLERANCE:
        raise InvalidWindow(f"as_of {as_of.isoformat()} is in the future: a score covers what has happened, "
                            f"give a time up to now ({now.isoformat(timespec='seconds')})")
    if end - pilot.starts_at > MAX_WINDOW:
        raise InvalidWindow(f"the window from the pilot's start {pilot.starts_at.isoformat()} to {end.isoformat()} "
                            f"spans {(end - pilot.starts_at).days} days; at most {MAX_WINDOW.days} are scored at once")
    return end


def pilot_window(conn: psycopg.Connection, pilot: PilotInfo, rubric: Rubric, as_of: datetime) -> PilotWindow:
    """Every registered device of the pilot with its status and window, in id order."""
    end = window_end(pilot, as_of)
    burn_in = timedelta(hours=rubric.window.burn_in_h)
    with conn.cursor(row_factory=class_row(DeviceRow)) as cur:
        rows = cur.execute(
            "SELECT id, kind, connectivity, reporting_interval_s, commissioned_at, decommissioned_at, "
            "decommission_reason, claimed_battery_days FROM device WHERE pilot_id = %s ORDER BY id",
            (pilot.id,)).fetchall()
    declarations = declared.load(conn, [row.id for row in rows])
    devices = []
    for row in rows:
        start = max(pilot.starts_at, row.commissioned_at + burn_in)
        profile = declarations.get(row.id)
        if row.decommissioned_at is not None and row.decommissioned_at < end:
            devices.append(DeviceWindow(row, "excluded", start, max(start, row.decommissioned_at), profile))
        elif start >= end:
            devices.append(DeviceWindow(row, "not_started", start, start, profile))
        else:
            devices.append(DeviceWindow(row, "scored", start, end, profile))
    return PilotWindow(pilot, pilot.starts_at, end, devices)
