"""Deliveries that added no reading, per device: duplicates and rejected messages with their
reasons, as ingest counts them in `delivery_day` (store/sql/0018, ingest.tally).

Days are UTC dates: a duplicate's is the date of its device time, a rejection's the date it was
received. One indexed range read per call (the primary key is (device_id, day)).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import psycopg


@dataclass
class DeliveryCounts:
    duplicates: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)  # sums to `rejected`


def delivery_days(conn: psycopg.Connection, device_ids: Sequence[str], first_day: date,
                  last_day: date) -> dict[tuple[str, date], DeliveryCounts]:
    """(device, day) -> counts, for the days from `first_day` to `last_day` inclusive that have any."""
    rows = conn.execute(
        "SELECT device_id, day, duplicates, rejected, rejected_by_reason FROM delivery_day "
        "WHERE device_id = ANY(%s) AND day BETWEEN %s AND %s", (list(device_ids), first_day, last_day)).fetchall()
    return {(device_id, day): DeliveryCounts(duplicates, rejected, dict(by_reason))
            for device_id, day, duplicates, rejected, by_reason in rows}


def delivery_totals(conn: psycopg.Connection, device_ids: Sequence[str], first_day: date,
                    last_day: date) -> dict[str, DeliveryCounts]:
    """Per device, the counts summed over the days from `first_day` to `last_day` inclusive;
    every device asked for is in the answer (zeros without a row). Summed in the database: a
    pilot of 1,000 devices over 90 days is 90,000 rows."""
    window = (list(device_ids), first_day, last_day)
    totals = {device_id: DeliveryCounts() for device_id in device_ids}
    for device_id, duplicates, rejected in conn.execute(
            "SELECT device_id, sum(duplicates), sum(rejected) FROM delivery_day "
            "WHERE device_id = ANY(%s) AND day BETWEEN %s AND %s GROUP BY device_id", window):
        totals[device_id].duplicates, totals[device_id].rejected = int(duplicates), int(rejected)
    for device_id, reason, n in conn.execute(
            "SELECT d.device_id, r.key, sum(r.value::bigint) FROM delivery_day AS d, "
            "jsonb_each_text(d.rejected_by_reason) AS r "
            "WHERE d.device_id = ANY(%s) AND d.day BETWEEN %s AND %s GROUP BY 1, 2 ORDER BY 1, 2", window):
        totals[device_id].rejected_by_reason[reason] = int(n)
    return totals
