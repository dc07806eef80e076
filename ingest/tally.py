"""Deliveries that add no reading, counted per device and UTC day in `delivery_day` (store/sql/0018):
duplicates and rejected messages, so that every message a registered device delivers counts in its
score (issue 15). The writer (ingest.writer) adds a batch's counts in the batch's own transaction,
so they are committed exactly when its rows and dead letters are, and a batch written again after
a failed transaction is counted once.

- A duplicate is a row the telemetry key (device, seq, device time) already held, on the UTC date
  of its device time. A batch whose rows were all new costs nothing here: its INSERT's row count
  says so. Otherwise the staged rows are matched to the rows this transaction stored (`stored_at`,
  clock_timestamp() per row, is never before the transaction's now()); two copies in one batch are
  one row and one duplicate. Two workers storing copies of one message in the same instant can
  count one duplicate too few (the other's row looks like ours); nothing can count one too many.
- A rejection is a dead letter naming a device (ingest.rows.Sender), charged to it when the device
  is registered in the pilot the message named, on the UTC date it was received. Each delivery
  counts: a device that sends the same broken bytes twice is refused twice, though dead_letter
  keeps them once.

Counts are upserted in (device, day) order, so concurrent workers lock rows in one order and never
deadlock on them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import NamedTuple

import psycopg

from devices.contract import ID_PATTERN
from ingest.rows import DeadLetter


class TallyKey(NamedTuple):
    device_id: str
    pilot_id: str | None  # the pilot the message named (None: already matched to the device)
    day: date
    reason: str | None    # a RejectReason code; None for a duplicate


Tally = Counter[TallyKey]

_ID = re.compile(ID_PATTERN)

# Staged rows against what this transaction stored: per device and day, the copies that added nothing.
_STAGED_DUPLICATES = """
SELECT s.device_id, (s.device_time AT TIME ZONE 'UTC')::date, sum(s.copies) - count(t.device_id)
FROM (SELECT device_id, seq, device_time, count(*) AS copies FROM telemetry_stage
      GROUP BY device_id, seq, device_time) AS s
LEFT JOIN telemetry AS t ON t.device_id = s.device_id AND t.seq = s.seq AND t.device_time = s.device_time
                        AND t.stored_at >= now()
GROUP BY 1, 2
HAVING sum(s.copies) > count(t.device_id)
"""

_UPSERT = """
INSERT INTO delivery_day AS d (device_id, day, duplicates, rejected, rejected_by_reason)
SELECT c.device_id, c.day,
       coalesce(sum(c.n) FILTER (WHERE c.reason IS NULL), 0),
       coalesce(sum(c.n) FILTER (WHERE c.reason IS NOT NULL), 0),
       coalesce(jsonb_object_agg(c.reason, c.n) FILTER (WHERE c.reason IS NOT NULL), '{}')
FROM (SELECT x.device_id, x.day, x.reason, sum(x.n) AS n
      FROM unnest(%s::text[], %s::text[], %s::date[], %s::text[], %s::int[]) AS x(device_id, pilot_id, day, reason, n)
      JOIN device AS v ON v.id = x.device_id AND v.pilot_id = coalesce(x.pilot_id, v.pilot_id)
      GROUP BY x.device_id, x.day, x.reason) AS c
GROUP BY c.device_id, c.day
ORDER BY c.device_id, c.day
ON CONFLICT (device_id, day) DO UPDATE SET
    duplicates = d.duplicates + EXCLUDED.duplicates,
    rejected = d.rejected + EXCLUDED.rejected,
    rejected_by_reason = (
        SELECT coalesce(jsonb_object_agg(r.reason, r.n), '{}')
        FROM (SELECT e.key AS reason, sum(e.value::bigint) AS n
              FROM (SELECT * FROM jsonb_each_text(d.rejected_by_reason)
                    UNION ALL SELECT * FROM jsonb_each_text(EXCLUDED.rejected_by_reason)) AS e
              GROUP BY e.key) AS r)
"""


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def rejections(dead_letters: Iterable[DeadLetter]) -> Tally:
    """The dead letters that name a device, by device, pilot, day received and reason. Ids that
    could not be registered ones are left out here, so the upsert never sees text it cannot take."""
    tally: Tally = Counter()
    for d in dead_letters:
        device, pilot = d.device_id, d.pilot_id
        if device is None or not _ID.fullmatch(device) or (pilot is not None and not _ID.fullmatch(pilot)):
            continue
        tally[TallyKey(device, pilot, day_of(d.received_at), d.reason.value)] += 1
    return tally


def staged_duplicates(conn: psycopg.Connection) -> Tally:
    """Duplicates among the rows staged in this transaction (ingest.writer's `telemetry_stage`),
    once they were moved into telemetry."""
    tally: Tally = Counter()
    for device_id, day, n in conn.execute(_STAGED_DUPLICATES):
        tally[TallyKey(device_id, None, day, None)] += int(n)
    return tally


def duplicate(device_id: str, device_time: datetime) -> TallyKey:
    return TallyKey(device_id, None, day_of(device_time), None)


def record(conn: psycopg.Connection, tally: Tally) -> None:
    """Add `tally` to delivery_day, in the caller's transaction."""
    if not tally:
        return
    keys = list(tally)
    conn.execute(_UPSERT, ([k.device_id for k in keys], [k.pilot_id for k in keys], [k.day for k in keys],
                           [k.reason for k in keys], [tally[k] for k in keys]))
