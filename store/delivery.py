"""Deliveries that added no reading, per device: duplicates and rejected messages with their
reasons, as ingest counts them in `delivery_day` (store/sql/0018, ingest.tally).

Days are UTC dates: a duplicate's is the date of its device time, a rejection's the date it was
received. One indexed range read per call (the primary key is (device_id, day)).
"""

from __future__ import annotations

from collections import Counter
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
    every device asked for is in the answer (zeros without a row)."""
    totals = {device_id: DeliveryCounts() for device_id in device_ids}
    reasons: dict[str, Counter[str]] = {device_id: Counter() for device_id in device_ids}
    for (device_id, _), counts in delivery_days(conn, device_ids, first_day, last_day).items():
        total = totals[device_id]
        total.duplicates += counts.duplicates
        total.rejected += counts.rejected
        reasons[device_id].update(counts.rejected_by_reason)
    for device_id, counted in reasons.items():
        totals[device_id].rejected_by_reason = dict(sorted(counted.items()))
    return totals
