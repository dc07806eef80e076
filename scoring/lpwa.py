"""LPWA packet delivery ratio from frame counters, when the LPWA loss table is there.

The LPWA ingest (store/sql/0003_lpwa.sql) keeps `uplink_loss_hourly` (device, hour, received,
expected). Scoring detects it with `to_regclass` and, if present, gives each LPWA device
delivery ratio = sum(received) / sum(expected) over the hours starting inside its window.
Without the table (or without frames for a device) the ratio is omitted, never guessed.
"""

from __future__ import annotations

import psycopg

from scoring.window import DeviceWindow

LOSS_TABLE = "uplink_loss_hourly"


def loss_table_present(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (LOSS_TABLE,)).fetchone()
    return bool(row and row[0])


def delivery_ratios(conn: psycopg.Connection, windows: list[DeviceWindow]) -> dict[str, float]:
    """Delivery ratio per LPWA device that has frames in its window; {} without the loss table."""
    lpwa = [w for w in windows if w.device.connectivity == "lpwa"]
    if not lpwa or not loss_table_present(conn):
        return {}
    rows = conn.execute(
        "SELECT l.device_id, sum(l.received)::float8 / nullif(sum(l.expected), 0) "
        "FROM uplink_loss_hourly l "
        "JOIN unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) AS w(device_id, ws, we) "
        "  ON w.device_id = l.device_id AND l.hour >= w.ws AND l.hour < w.we "
        "GROUP BY l.device_id",
        ([w.device.id for w in lpwa], [w.start for w in lpwa], [w.end for w in lpwa])).fetchall()
    return {device: float(ratio) for device, ratio in rows if ratio is not None}
