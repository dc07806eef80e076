"""Daily message counts per device in the pilot's time zone, and the evidence digest.

A day is a calendar day in the pilot's time zone (`pilot.timezone`, e.g. Asia/Seoul); stored
times stay UTC. The evidence digest is SHA-256 over the RFC 8785 canonical JSON of
`{"devices": [per-device metrics, by id], "daily_counts": [[device, local day, readings], ...]}`,
so a reviewer holding the same data can recompute it; a pilot whose switches were sent commands adds
`"commands": [[device, command id, sent_at, expires_at, state, acked_at], ...]` (scoring.commands).
"""

from __future__ import annotations

import hashlib
from typing import Any

import psycopg

from scoring import canonical
from scoring.window import DeviceWindow


def daily_counts(conn: psycopg.Connection, windows: list[DeviceWindow], timezone: str) -> list[list[Any]]:
    """[[device_id, 'YYYY-MM-DD', telemetry readings], ...] over each device's window, sorted."""
    if not windows:
        return []
    rows = conn.execute(
        "SELECT t.device_id, (t.device_time AT TIME ZONE %s)::date AS day, count(*) "
        "FROM telemetry t "
        "JOIN unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) AS w(device_id, ws, we) "
        "  ON w.device_id = t.device_id AND t.device_time >= w.ws AND t.device_time < w.we "
        "WHERE t.channel = 'telemetry' GROUP BY 1, 2 ORDER BY 1, 2",
        (timezone, [w.device.id for w in windows], [w.start for w in windows], [w.end for w in windows])).fetchall()
    return [[device, day.isoformat(), int(n)] for device, day, n in rows]


def daily_counts_from_parts(parts: dict[str, list[dict[str, Any]]]) -> list[list[Any]]:
    """The same counts read off the day summaries (scoring.daily), whose `readings` are the
    telemetry readings of the local day inside the device's window."""
    return [[device, day.isoformat(), int(n)]
            for device in sorted(parts) for p in parts[device] for day, n in p["daily"] if n > 0]


def evidence_digest(devices: list[dict[str, Any]], counts: list[list[Any]], commands: list[list[Any]] | None = None) -> str:
    # keys in RFC 8785 order: "commands" < "daily_counts" < "devices"
    document = b'{"daily_counts":' + canonical.dumps(counts) + b',"devices":' + canonical.dumps(devices) + b"}"
    if commands:
        document = b'{"commands":' + canonical.dumps(commands) + b"," + document[1:]
    return hashlib.sha256(document).hexdigest()
