"""The `switch_command` table: every command sent to a smart switch and how it ended (the one
writer of the table).

States: `sent` (published, no acknowledgement yet), `acknowledged` (the relay is as asked, known
by the expiry), `failed` (the device answered with the other state, or the broker never took the
command: `failed_by` says which), `expired` (nothing acknowledged it by its expiry).

The acknowledgement rule (README, *Commands to smart switches*): the earliest of
- an acknowledgement on the device's ack topic received by the expiry (ingest.commands →
  `record_acks`, in the ingest batch's transaction): `relay_on` as asked acknowledges, the other
  state fails the command;
- the first telemetry report of the device (by arrival) that arrived after the command was sent
  and by its expiry, whose device time is after the sent time and no later than the expiry, and
  whose `relay_on` is the state asked for (`settle`).
`acked_at` is when the platform received it (the ingest's receipt time), so a command's latency
is `acked_at - sent_at` on the platform's clocks alone.

`settle` applies the report rule and marks commands past their expiry `expired`; it runs before
commands are read (the API) or scored, so no process has to watch the clock. A report or ack
received in time but committed after a settle had expired the command still acknowledges it
(commands expired within the last day are looked at again).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import psycopg
from psycopg.rows import class_row

from pilotlab.errors import NotFound

STATES = ("sent", "acknowledged", "failed", "expired")
LOOK_AGAIN = "1 day"  # expired commands a late-committed report may still acknowledge


@dataclass(frozen=True)
class Command:
    id: str
    device_id: str
    relay_on: bool
    transport: str  # mqtt | chirpstack | tts
    topic: str
    sent_at: datetime
    expires_at: datetime
    requested_by: str
    state: str
    acked_at: datetime | None
    ack_via: str | None  # ack | report
    reported_relay_on: bool | None
    failed_by: str | None  # broker | device
    detail: str | None

    @property
    def latency_s(self) -> float | None:
        if self.state != "acknowledged" or self.acked_at is None:
            return None
        return (self.acked_at - self.sent_at).total_seconds()


class AckRow(NamedTuple):
    """An acknowledgement off the ack topic, as ingest.commands decoded it."""

    command_id: str
    device_id: str
    received_at: datetime
    relay_on: bool
    detail: str | None


class SwitchAddress(NamedTuple):
    """What sending a command to a device needs to know of it (api.command_sender)."""

    device_id: str
    pilot_id: str
    kind: str
    decommissioned: bool
    connectivity: str
    dev_eui: str | None
    profile_definition: dict[str, Any] | None  # its current profile version's definition
    network_server: str | None  # of its newest uplink frame, if any was heard
    applications: list[tuple[str, str]]  # its pilot's (network server, application id)


_FIELDS = ("id", "device_id", "relay_on", "transport", "topic", "sent_at", "expires_at", "requested_by", "state",
           "acked_at", "ack_via", "reported_relay_on", "failed_by", "detail")
_COLUMNS = ", ".join(_FIELDS)


def create(conn: psycopg.Connection, *, command_id: str, device_id: str, relay_on: bool, transport: str,
           topic: str, sent_at: datetime, expires_at: datetime, requested_by: str) -> Command:
    """Store a command as sent, committed before it is published (an acknowledgement may come
    back within milliseconds, and must find it)."""
    with conn.transaction(), conn.cursor(row_factory=class_row(Command)) as cur:
        row = cur.execute(
            f"INSERT INTO switch_command (id, device_id, relay_on, transport, topic, sent_at, expires_at, requested_by) "
            f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
            (command_id, device_id, relay_on, transport, topic, sent_at, expires_at, requested_by)).fetchone()
    assert row is not None
    return row


def mark_unsent(conn: psycopg.Connection, command_id: str, detail: str) -> Command:
    """The broker did not take the command: failed, by the broker (not counted against the device)."""
    with conn.transaction():
        conn.execute("UPDATE switch_command SET state = 'failed', failed_by = 'broker', detail = %s "
                     "WHERE id = %s AND state = 'sent'", (detail[:500], command_id))
    return get(conn, command_id)


def note(conn: psycopg.Connection, command_id: str, detail: str) -> Command:
    """Keep what the broker said of a command it took (e.g. no subscriber)."""
    with conn.transaction():
        conn.execute("UPDATE switch_command SET detail = %s WHERE id = %s AND detail IS NULL",
                     (detail[:500], command_id))
    return get(conn, command_id)


def get(conn: psycopg.Connection, command_id: str) -> Command:
    with conn.cursor(row_factory=class_row(Command)) as cur:
        row = cur.execute(f"SELECT {_COLUMNS} FROM switch_command WHERE id = %s", (command_id,)).fetchone()
    if row is None:
        raise NotFound(f"no command with id {command_id!r}")
    return row


def for_device(conn: psycopg.Connection, device_id: str, *, state: str | None = None, limit: int = 100,
               offset: int = 0) -> list[Command]:
    """A device's commands, newest first."""
    with conn.cursor(row_factory=class_row(Command)) as cur:
        return cur.execute(
            f"SELECT {_COLUMNS} FROM switch_command WHERE device_id = %s AND (%s::text IS NULL OR state = %s) "
            "ORDER BY sent_at DESC, id LIMIT %s OFFSET %s", (device_id, state, state, limit, offset)).fetchall()


def in_windows(conn: psycopg.Connection, windows: Sequence[tuple[str, datetime, datetime]]) -> list[Command]:
    """Commands of each (device, start, end) sent in [start, end) that expired by `end` (so their
    outcome is final), leaving out those the broker never took; by device, then sent time."""
    if not windows:
        return []
    with conn.cursor(row_factory=class_row(Command)) as cur:
        return cur.execute(
            f"SELECT {', '.join(f'c.{name}' for name in _FIELDS)} FROM switch_command c "
            "JOIN unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) AS w(device_id, ws, we) "
            "  ON c.device_id = w.device_id AND c.sent_at >= w.ws AND c.sent_at < w.we AND c.expires_at <= w.we "
            "WHERE c.failed_by IS DISTINCT FROM 'broker' ORDER BY c.device_id, c.sent_at, c.id",
            ([w[0] for w in windows], [w[1] for w in windows], [w[2] for w in windows])).fetchall()


_RECORD_ACK = """
UPDATE switch_command SET
    state = CASE WHEN relay_on = %(relay_on)s THEN 'acknowledged' ELSE 'failed' END,
    failed_by = CASE WHEN relay_on = %(relay_on)s THEN NULL ELSE 'device' END,
    acked_at = %(at)s, ack_via = 'ack', reported_relay_on = %(relay_on)s, detail = %(detail)s
WHERE id = %(id)s AND device_id = %(device)s AND failed_by IS DISTINCT FROM 'broker'
  AND %(at)s <= expires_at AND (acked_at IS NULL OR acked_at > %(at)s)
"""


def record_acks(conn: psycopg.Connection, acks: Sequence[AckRow]) -> int:
    """Apply acknowledgements in the caller's transaction; returns how many changed a command. An
    ack naming another device's command, or none, or received after the expiry, changes nothing."""
    changed = 0
    with conn.cursor() as cur:
        for ack in acks:
            cur.execute(_RECORD_ACK, {"relay_on": ack.relay_on, "at": ack.received_at, "detail": ack.detail,
                                      "id": ack.command_id, "device": ack.device_id})
            changed += cur.rowcount
    return changed


_SETTLE_REPORTS = f"""
WITH report AS (
    SELECT c.id, r.ingest_time, r.relay_on
    FROM switch_command c
    CROSS JOIN LATERAL (
        SELECT t.ingest_time, t.relay_on FROM telemetry t
        WHERE t.device_id = c.device_id AND t.channel = 'telemetry'
          AND t.device_time > c.sent_at AND t.device_time <= c.expires_at
          AND t.ingest_time > c.sent_at AND t.ingest_time <= c.expires_at AND t.relay_on = c.relay_on
        ORDER BY t.ingest_time LIMIT 1) r
    WHERE (%(devices)s::text[] IS NULL OR c.device_id = ANY(%(devices)s))
      AND c.failed_by IS DISTINCT FROM 'broker'
      AND (c.state = 'sent' OR c.expires_at > %(now)s - interval '{LOOK_AGAIN}')
      AND (c.acked_at IS NULL OR r.ingest_time < c.acked_at)
)
UPDATE switch_command s SET state = 'acknowledged', acked_at = report.ingest_time, ack_via = 'report',
    reported_relay_on = report.relay_on, failed_by = NULL, detail = NULL
FROM report WHERE s.id = report.id
"""
_EXPIRE = """
UPDATE switch_command SET state = 'expired'
WHERE state = 'sent' AND expires_at <= %(now)s AND (%(devices)s::text[] IS NULL OR device_id = ANY(%(devices)s))
"""


def settle(conn: psycopg.Connection, device_ids: Sequence[str] | None = None, now: datetime | None = None) -> None:
    """Bring the commands of `device_ids` (None: every device) up to date with the reports stored
    and the clock: the report rule first, then expiry."""
    params = {"devices": list(device_ids) if device_ids is not None else None, "now": now or datetime.now(UTC)}
    with conn.transaction():
        conn.execute(_SETTLE_REPORTS, params)
        conn.execute(_EXPIRE, params)


def switch_address(conn: psycopg.Connection, device_id: str) -> SwitchAddress:
    row = conn.execute(
        "SELECT d.id, d.pilot_id, d.kind, d.decommissioned_at IS NOT NULL, d.connectivity, d.dev_eui, v.definition, "
        "  (SELECT f.network_server FROM uplink_frame f WHERE f.device_id = d.id ORDER BY f.uplink_time DESC LIMIT 1), "
        "  coalesce((SELECT array_agg(ARRAY[a.network_server, a.application_id] ORDER BY a.network_server, a.application_id) "
        "            FROM network_server_application a WHERE a.pilot_id = d.pilot_id), '{}') "
        "FROM device d LEFT JOIN device_profile p ON p.id = d.profile_id "
        "LEFT JOIN device_profile_version v ON v.profile_id = p.id AND v.version = p.current_version "
        "WHERE d.id = %s", (device_id,)).fetchone()
    if row is None:
        raise NotFound(f"no device with id {device_id!r}")
    device, pilot, kind, decommissioned, connectivity, dev_eui, definition, network_server, applications = row
    return SwitchAddress(device, pilot, kind, decommissioned, connectivity, dev_eui, definition, network_server,
                         [(ns, app) for ns, app in applications])
