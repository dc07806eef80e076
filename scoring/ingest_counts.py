"""What ingest counted per device that never became a reading: duplicate deliveries it dropped and
messages it rejected, with their reasons (store.delivery, table delivery_day, kept per UTC day).

A device's counts are those of the UTC days that overlap its window [start, end): ingest keeps them
per UTC day (a duplicate on the day of its device time, a rejection on the day it was received),
so at a window edge that is not a UTC midnight the whole edge day counts. These figures are shown
in the breakdown; no component or gate uses them.
"""

from __future__ import annotations

from datetime import UTC, date, timedelta

import psycopg

from scoring.window import DeviceWindow
from store.delivery import DeliveryCounts, delivery_totals


def utc_days(w: DeviceWindow) -> tuple[date, date]:
    """The first and last UTC day that overlap the window."""
    return w.start.astimezone(UTC).date(), (w.end - timedelta(microseconds=1)).astimezone(UTC).date()


def ingest_counts(conn: psycopg.Connection, windows: list[DeviceWindow]) -> dict[str, DeliveryCounts]:
    """Per device of `windows`, its duplicates and rejections over its window's UTC days (one read
    per distinct window: a pilot's devices mostly share one)."""
    by_days: dict[tuple[date, date], list[str]] = {}
    for w in windows:
        by_days.setdefault(utc_days(w), []).append(w.device.id)
    found: dict[str, DeliveryCounts] = {}
    for (first, last), ids in by_days.items():
        found.update(delivery_totals(conn, ids, first, last))
    return found
