"""Per-device, per-day summaries of the readings (rollups), and metrics merged from them.

Scoring used to make one ordered pass over every reading of the window at every scoring (405 s
for 26 M readings). Now each closed day of each device is summarised once into `scoring_day`
(store/sql/0007_scoring_rollups.sql) and a score merges ~90 summary rows per device; only the
days not yet closed when the window ends (and a rare day, below) are computed from raw rows, by
the same SQL, at scoring time.

A summary holds quantities that merge exactly across days: counts (readings, delivered, valid,
complete, QC pass/suspect/fail and per test, duplicates, future, skew, fixes, delivered readings
carrying each measurement), slots hit inside the day with the first and last hit slot (a slot that
spans midnight is counted once), first and last delivered reading and the silences longer than the
outage threshold between the day's delivered readings, listed (the silence across midnight is added
when merging, so outages merge exactly), the runs of failed readings inside the day with the day's
first valid reading (joined across midnights into quality incidents: scoring.incidents),
least-squares sums of battery_pct on time (n, Σx, Σy, Σxy, Σx², x in seconds since the window
start), heartbeat intervals inside the day with the first and last heartbeat (the interval across
midnight is added when merging), and for the latency and accuracy percentiles a fixed-bucket
histogram (scoring.histogram: 1 % relative error; the only approximate figures).

Exactly as the raw pass (scoring.metrics.raw_device_metrics), which stays as the reference:

- QC tests that look at neighbours see the readings before midnight: each run of days is computed
  with the last C readings before it as context (C = the flat-line fail length in readings, at
  least 1), never earlier than the window start, where the raw pass starts too. Slots are
  anchored at the window start, so a summary is used only for the same `anchor` (and interval).
- What the device's profile declares decides which metrics QC tests and which readings are
  complete (scoring.declared), so a summary records it (`profile_key`) and is used only for the
  same: assigning another profile, or a new version declaring other measurements, rebuilds the
  device's summaries (store/sql/0016; summaries from before 0016 of devices without a profile
  stand with complete = valid, the others were rebuilt).
- The spike test looks one reading ahead, past midnight: a summary records the reading after the
  day (`lead_time`) and whether the day's last flag (or which tests failed on it) depends on it
  (`tail_needs_next`). If the scoring window ends before that reading, the day is recomputed from
  raw rows; else only its per-test counts are corrected: the last reading's spike tests
  (`tail_spike`) count as not evaluated, as the raw pass sees them.
- Summaries are keyed by the digest of the rubric's parameters (`rubric_digest`): a changed
  rubric (slot factor, QC spans...) never reads another rubric's summary; it builds its own.
- Late data: each row records the readings it depended on, `[span_from, span_to]` (context
  through the reading after the day), and `complete_to`, a time before which every stored reading
  had been committed when it was computed (`horizon`: from transaction ids and marks any role can
  read, so a scoring role apart from the ingest role still sees a long ingest transaction). Before
  a score, readings stored since the device's last check (`scoring_check.checked_to`; found
  through a BRIN index on `telemetry.stored_at`, so only the newest blocks are read) are grouped
  by local day, and every summary whose span they fall in, stored after its `complete_to`, is
  deleted and rebuilt. We chose this over per-day counts
  (counting 26 M rows again is the cost we remove) and over a bare max(stored_at) per day (the
  same full read). Telemetry is append-only (ON CONFLICT DO NOTHING), so an insert is the only
  change to detect.

Why a plain table and not a TimescaleDB continuous aggregate: the QC flags need ordered window
functions (lag, lead, running max) across bucket boundaries, which continuous aggregates do not
allow, and every summary depends on the rubric and on the device's window start, which a
materialised view over telemetry cannot take as parameters. The plain table works the same on
PostgreSQL and TimescaleDB; nothing here is TimescaleDB SQL.
"""

from __future__ import annotations

import functools
import hashlib
import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from datetime import date, datetime, timedelta
from itertools import groupby
from queue import Queue
from typing import Any

import psycopg
import rfc8785
from psycopg import sql
from psycopg.rows import dict_row

from scoring import declared, delivery, histogram, summaries
from scoring.incidents import join_runs
from scoring.quality import qc_test_names
from scoring.rubric import Rubric
from scoring.window import DeviceWindow, zone
from store import copy_text

Progress = Callable[[int, int], None]
BATCH_DEVICES = 25  # a batch's readings in memory: ~60 MB at 90 days x 5 min
INFINITY = datetime(9999, 12, 31, tzinfo=zone("UTC"))  # "no end"; psycopg refuses 'infinity'

_COLUMNS = ("day_start", "day", "day_end", "anchor", "interval_s", "span_from", "span_to", "complete_to",
            "readings", "delivered", "valid", "suspect", "fail", "qc_tests", "tail_spike", "duplicates", "future",
            "skewed", "slots_hit", "first_slot", "last_slot", "first_delivered", "last_delivered", "first_ok",
            "outage_list", "fail_runs", "bat_n", "bat_sx", "bat_sy", "bat_sxy", "bat_sxx", "fixes", "hb_intervals",
            "hb_regular", "first_hb", "last_hb", "lat_buckets", "lat_counts", "acc_buckets", "acc_counts",
            "lead_time", "tail_needs_next", "complete", "carried", "profile_key")


def rubric_digest(rubric: Rubric) -> str:
    """SHA-256 of the rubric's parameters (canonical JSON), the key of its summaries."""
    return hashlib.sha256(rfc8785.dumps(rubric.model_dump(mode="json"))).hexdigest()


def context_size(rubric: Rubric, kind: str, interval_s: int, tested: tuple[str, ...]) -> int:
    """Readings before a run the QC tests need: the longest flat-line fail length of the tested
    metrics, at least 1."""
    metrics = {str(k): v for k, v in rubric.qc.items()}.get(kind, {})
    sizes = [max(int(m.flat_line.fail_s // interval_s), 1) for name, m in metrics.items()
             if m.flat_line is not None and name in tested]
    return max([1, *sizes])


@functools.lru_cache(maxsize=64)  # a fleet mostly shares one window: computed once, not per device
def local_days(tz: str, start: datetime, end: datetime) -> tuple[tuple[date, datetime, datetime], ...]:
    """(local day, its start, its end) of every local day that overlaps [start, end)."""
    zi = zone(tz)
    day = start.astimezone(zi).date()
    found: list[tuple[date, datetime, datetime]] = []
    while True:
        day_start = datetime.combine(day, datetime.min.time(), tzinfo=zi)
        if day_start >= end:
            return tuple(found)
        nxt = day + timedelta(days=1)
        found.append((day, day_start, datetime.combine(nxt, datetime.min.time(), tzinfo=zi)))
        day = nxt


Run = summaries.Run


Group = tuple[str, int, tuple[str, ...]]  # kind, declared interval, QC-tested metrics


def _by_group(rubric: Rubric, runs: list[Run]) -> list[tuple[Group, list[Run]]]:
    def key(run: Run) -> Group:
        kind = run[0].device.kind
        return (kind, run[0].device.reporting_interval_s, declared.qc_metrics(rubric, kind, run[0].declared))
    ordered = sorted(runs, key=lambda r: (key(r), r[0].device.id, r[1]))
    return [(k, list(g)) for k, g in groupby(ordered, key=key)]


HORIZON_WAIT_S = 0.5  # how long a check waits for the transactions open at its mark to end (ingest: ~50 ms)
HORIZON_FLOOR = datetime(2000, 1, 1, tzinfo=zone("UTC"))  # before any stored_at: "check everything again"

# The oldest transaction id still running in this database, other than ours, as a 64-bit id. pg_stat_activity
# shows every role each session's backend_xid (32 bits, not its start time); it is widened with the epoch of
# the current snapshot's xmax, which is within 2^31 of any running id. Prepared transactions are in
# pg_prepared_xacts instead.
_OLDEST_RUNNING = """
WITH ref AS (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS r),
running AS (
    SELECT backend_xid AS x FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL
    UNION ALL
    SELECT transaction FROM pg_prepared_xacts WHERE database = current_database()
)
SELECT now(), min(ref.r + ((running.x::text::bigint - ref.r % 4294967296 + 6442450944) % 4294967296) - 2147483648)
FROM ref LEFT JOIN running ON true
"""


def horizon(conn: psycopg.Connection) -> datetime:
    """A time before which every reading that will ever be stored in this database has been
    committed (so a reading stored before it and not yet seen cannot appear later).

    Built from what every role may see (store/sql/0009_scoring_horizon.sql): a check writes a mark
    (its transaction id, its now() taken before that id existed), then looks for transactions still
    running in this database. None: the horizon is now. Otherwise it waits up to HORIZON_WAIT_S for
    those that were open at its mark to end (an ingest batch commits in milliseconds); if one stays
    open (a long transaction), the horizon is the newest mark older than the oldest one running,
    which began writing after that mark's time. Rows are stamped (`stored_at`) after their
    transaction has its id, up to the microseconds between forming the first row and writing it."""
    with conn.transaction():
        mark = conn.execute(
            "INSERT INTO scoring_horizon_mark (xid, at) VALUES (pg_current_xact_id()::text::bigint, now()) "
            "ON CONFLICT (xid) DO UPDATE SET at = least(scoring_horizon_mark.at, EXCLUDED.at) "
            "RETURNING xid, at").fetchone()
    assert mark is not None
    deadline = time.monotonic() + HORIZON_WAIT_S
    while True:
        row = conn.execute(_OLDEST_RUNNING).fetchone()
        assert row is not None
        now, oldest = row
        if oldest is None:
            found = now
            break
        if oldest > mark[0]:
            found = mark[1]
            break
        if time.monotonic() >= deadline:
            older = conn.execute("SELECT max(at) FROM scoring_horizon_mark WHERE xid < %s", (oldest,)).fetchone()
            found = older[0] if older is not None and older[0] is not None else HORIZON_FLOOR
            break
        time.sleep(0.02)
    # marks older than the one that bounds the oldest running transaction are never needed again
    with conn.transaction():
        conn.execute("DELETE FROM scoring_horizon_mark WHERE xid < (SELECT max(xid) FROM scoring_horizon_mark "
                     "WHERE xid < %s)", (mark[0] + 1 if oldest is None or oldest > mark[0] else oldest,))
    result: datetime = found
    return result


Batch = tuple[Group, list[Run]]


def _batches(rubric: Rubric, runs: list[Run]) -> list[Batch]:
    found: list[Batch] = []
    for group, members in _by_group(rubric, runs):
        ids = sorted({r[0].device.id for r in members})
        for i in range(0, len(ids), BATCH_DEVICES):
            chosen = set(ids[i:i + BATCH_DEVICES])
            found.append((group, [r for r in members if r[0].device.id in chosen]))
    return found


def _fetch(conn: psycopg.Connection, rubric: Rubric, batch: Batch) -> list[tuple[Run, summaries.Readings]]:
    """Each run of the batch with its readings."""
    (kind, interval, tested), runs = batch
    context = context_size(rubric, kind, interval, tested)
    found: list[tuple[Run, summaries.Readings]] = []
    with conn.cursor(binary=True) as cur:
        cur.execute(summaries.fetch_sql(kind, tested, context, any(r[0].declared is not None for r in runs)),
                    {"ids": [r[0].device.id for r in runs], "anchors": [r[0].start for r in runs],
                     "froms": [r[1] for r in runs], "tos": [r[2] for r in runs], "lims": [r[3] for r in runs]})
        for packed in cur:
            run = runs[packed[0] - 1]
            found.append((run, summaries.unpack(kind, tested, context, run, packed)))
    return found


READERS = 2  # connections reading batches ahead of the summarising thread


def _fetched(conn: psycopg.Connection, rubric: Rubric, batches: list[Batch]) -> Iterator[list[tuple[Run, summaries.Readings]]]:
    """Each batch's runs with their readings, in order. Past one batch, READERS more connections
    read the next batches while this thread summarises: reading the packed columns is most of a
    PostgreSQL backend's work, summarising most of this process's, and both are spread over the
    cores (a cold build on 2 cores: ~2x)."""
    if len(batches) <= 1:
        for batch in batches:
            yield _fetch(conn, rubric, batch)
        return
    with ExitStack() as stack:
        free: Queue[psycopg.Connection] = Queue()
        for _ in range(READERS):
            free.put(stack.enter_context(psycopg.connect(conn.info.dsn, password=conn.info.password, autocommit=True)))
        pool = stack.enter_context(ThreadPoolExecutor(READERS))

        def read(batch: Batch) -> list[tuple[Run, summaries.Readings]]:
            reader = free.get()
            try:
                return _fetch(reader, rubric, batch)
            finally:
                free.put(reader)

        pending: deque[Future[list[tuple[Run, summaries.Readings]]]] = deque()
        for batch in batches:
            pending.append(pool.submit(read, batch))
            if len(pending) > READERS:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class _Writer:
    """Stores batches of day summaries on a connection of its own, on a thread, while the caller
    summarises the next batch (PostgreSQL's share of storing overlaps numpy's work)."""

    def __init__(self, conn: psycopg.Connection, digest: str) -> None:
        self._own = psycopg.connect(conn.info.dsn, password=conn.info.password, autocommit=True)
        self._digest = digest
        self._pool = ThreadPoolExecutor(1)
        self._pending: list[Future[None]] = []

    def put(self, rows: list[dict[str, Any]]) -> None:
        self._pending.append(self._pool.submit(_store, self._own, self._digest, rows))

    def close(self) -> None:
        try:
            for done in self._pending:
                done.result()
        finally:
            self._pool.shutdown()
            self._own.close()


def _compute(conn: psycopg.Connection, rubric: Rubric, tz: str, runs: list[Run], *, store: bool, digest: str = "",
             complete_to: datetime | None = None, progress: Progress | None = None,
             total: int = 0, done: int = 0) -> list[dict[str, Any]]:
    """The summaries of each run's local days (scoring.summaries), stored into scoring_day if
    `store`, else returned."""
    found: list[dict[str, Any]] = []
    batches = _batches(rubric, runs)
    writer = _Writer(conn, digest) if store and len(batches) > 1 else None
    try:
        for ((kind, interval, tested), batch), fetched in zip(batches, _fetched(conn, rubric, batches), strict=True):
            context = context_size(rubric, kind, interval, tested)
            rows: list[dict[str, Any]] = []
            for run, readings in fetched:
                day_rows = summaries.summarise(rubric, kind, interval, tested, context, run,
                                               summaries.masks(kind, run[0].declared),
                                               local_days(tz, run[1], run[2]), readings, INFINITY)
                key = declared.rollup_key(run[0].declared)
                whole = _starts_window(run)
                for row in day_rows:
                    row["complete_to"] = complete_to or INFINITY
                    row["profile_key"] = key
                    if not whole:
                        for c in _CUM:
                            row[c] = None
                rows += day_rows
            if writer is not None:
                writer.put(rows)
            elif store:
                _store(conn, digest, rows)
            else:
                found += rows
            done += len({r[0].device.id for r in batch})
            if progress is not None and store:
                progress(min(done, total), total)
    finally:
        if writer is not None:
            writer.close()
    return found


_JSON = frozenset({"qc_tests", "tail_spike", "outage_list", "fail_runs", "carried"})


def _starts_window(run: Run) -> bool:
    return run[1] == run[0].start


_CUM = ("cum_days", "cum_lat_buckets", "cum_lat_counts", "cum_acc_buckets", "cum_acc_counts")


def _store(conn: psycopg.Connection, digest: str, rows: list[dict[str, Any]]) -> None:
    """Replace day summaries (their running histograms NULL where not known, until _accumulate)."""
    columns = ("device_id", "rubric_digest", *_COLUMNS, *_CUM)
    text = copy_text.lines([copy_text.column([r["device_id"] for r in rows]), copy_text.column([digest] * len(rows)),
                            *(copy_text.column([r.get(c) for r in rows], c in _JSON) for c in columns[2:])])
    with conn.transaction():
        # two scorers building the same device's days (API requests, the daily pass) take turns: the
        # later one replaces the earlier one's rows instead of colliding with them on the primary key
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('scoring_day ' || d, 0)) "
                     "FROM (SELECT DISTINCT unnest(%s::text[]) AS d ORDER BY 1) ids", ([r["device_id"] for r in rows],))
        conn.execute("DELETE FROM scoring_day s USING unnest(%s::text[], %s::timestamptz[]) AS u(device_id, day_start) "
                     "WHERE s.device_id = u.device_id AND s.rubric_digest = %s AND s.day_start = u.day_start",
                     ([r["device_id"] for r in rows], [r["day_start"] for r in rows], digest))
        with conn.cursor().copy(sql.SQL("COPY scoring_day ({}) FROM STDIN").format(
                sql.SQL(", ").join(sql.Identifier(c) for c in columns))) as copy:
            copy.write(text)


def _invalidate_late(conn: psycopg.Connection, digest: str, tz: str, ids: list[str]) -> datetime:
    """Delete summaries that readings stored since the last check fall into; returns the check's horizon."""
    checked_to = horizon(conn)
    rows = conn.execute(
        "SELECT device_id, checked_to FROM scoring_check WHERE device_id = ANY(%s) AND rubric_digest = %s",
        (ids, digest)).fetchall()
    unchecked = list(set(ids) - {r[0] for r in rows})
    if unchecked:  # summaries never checked (e.g. interrupted): from the oldest one's completeness
        rows += conn.execute(
            "SELECT device_id, min(complete_to) FROM scoring_day WHERE device_id = ANY(%s) AND rubric_digest = %s "
            "GROUP BY device_id", (unchecked, digest)).fetchall()
    if rows:
        since_ids, sinces = [r[0] for r in rows], [r[1] for r in rows]
        conn.execute(
            "WITH u AS (SELECT * FROM unnest(%(ids)s::text[], %(sinces)s::timestamptz[]) AS u(device_id, since)), "
            "late AS (SELECT t.device_id, (t.device_time AT TIME ZONE %(tz)s)::date AS day, min(t.device_time) AS lo, "
            "         max(t.device_time) AS hi, max(t.stored_at) AS stored "
            "         FROM telemetry t JOIN u ON u.device_id = t.device_id AND t.stored_at >= u.since "
            "         WHERE t.stored_at >= %(since)s AND t.channel = 'telemetry' GROUP BY 1, 2) "
            "DELETE FROM scoring_day s USING late l WHERE s.device_id = l.device_id AND s.rubric_digest = %(digest)s "
            "AND l.lo <= s.span_to AND l.hi >= s.span_from AND l.stored >= s.complete_to",
            {"ids": since_ids, "sinces": sinces, "since": min(sinces), "tz": tz, "digest": digest})
    return checked_to


def _accumulate(conn: psycopg.Connection, digest: str, starts: dict[str, tuple[datetime, datetime]]) -> None:
    """Recompute the running histograms (`cum_*`) of each device from the day it was rebuilt from
    (starts: device -> (anchor, first rebuilt day_start)), carrying on from the day before."""
    cum: dict[str, tuple[int, dict[int, int], dict[int, int]]] = {}
    updates: list[tuple[Any, ...]] = []
    rows = conn.execute(
        "SELECT s.device_id, s.day_start, s.lat_buckets, s.lat_counts, s.acc_buckets, s.acc_counts, "
        "       p.cum_days, p.cum_lat_buckets, p.cum_lat_counts, p.cum_acc_buckets, p.cum_acc_counts "
        "FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) AS u(device_id, anchor, start) "
        "JOIN scoring_day s ON s.device_id = u.device_id AND s.rubric_digest = %s AND s.anchor = u.anchor "
        "     AND s.day_start >= u.start "
        "LEFT JOIN LATERAL (SELECT * FROM scoring_day q WHERE q.device_id = u.device_id AND q.rubric_digest = %s "
        "     AND q.anchor = u.anchor AND q.day_start < u.start ORDER BY q.day_start DESC LIMIT 1) p "
        "     ON s.day_start = u.start "
        "ORDER BY s.device_id, s.day_start",
        (list(starts), [a for a, _ in starts.values()], [d for _, d in starts.values()], digest, digest))
    for device_id, day_start, lb, lc, ab, ac, p_days, p_lb, p_lc, p_ab, p_ac in rows:
        if device_id not in cum:
            lat: dict[int, int] = {}
            acc: dict[int, int] = {}
            histogram.merge(lat, p_lb, p_lc)
            histogram.merge(acc, p_ab, p_ac)
            cum[device_id] = (p_days or 0, lat, acc)
        days, lat, acc = cum[device_id]
        histogram.merge(lat, lb, lc)
        histogram.merge(acc, ab, ac)
        cum[device_id] = (days + 1, lat, acc)
        ls, as_ = sorted(lat), sorted(acc)
        updates.append((device_id, day_start, days + 1, ls, [lat[b] for b in ls], as_, [acc[b] for b in as_]))
    with conn.transaction():
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS scoring_cum (device_id text, day_start timestamptz, "
                     "cum_days int, lb int[], lc int[], ab int[], ac int[]) ON COMMIT DELETE ROWS")
        with conn.cursor().copy("COPY scoring_cum FROM STDIN") as copy:
            copy.write(copy_text.lines([copy_text.column(list(c)) for c in zip(*updates, strict=True)]
                                       if updates else []))
        conn.execute("UPDATE scoring_day s SET cum_days = c.cum_days, cum_lat_buckets = c.lb, cum_lat_counts = c.lc, "
                     "cum_acc_buckets = c.ab, cum_acc_counts = c.ac FROM scoring_cum c "
                     "WHERE s.device_id = c.device_id AND s.rubric_digest = %s AND s.day_start = c.day_start",
                     (digest,))


def refresh(conn: psycopg.Connection, rubric: Rubric, tz: str, windows: list[DeviceWindow], now: datetime,
            progress: Progress | None = None) -> int:
    """Bring the stored summaries of every closed day (ending by min(window end, now)) of every
    window up to date: late data and changed windows recomputed, missing days built. Returns the
    number of device-days computed."""
    ids = [w.device.id for w in windows]
    if not ids:
        return 0
    digest = rubric_digest(rubric)
    checked_to = _invalidate_late(conn, digest, tz, ids)
    built = _build(conn, rubric, tz, windows, now, checked_to, progress)
    _mark_checked(conn, digest, ids, checked_to)
    return built


def _mark_checked(conn: psycopg.Connection, digest: str, ids: list[str], checked_to: datetime) -> None:
    with conn.transaction():
        conn.execute(
            "INSERT INTO scoring_check (device_id, rubric_digest, checked_to) "
            "SELECT unnest(%s::text[]), %s, %s ON CONFLICT (device_id, rubric_digest) "
            "DO UPDATE SET checked_to = EXCLUDED.checked_to", (ids, digest, checked_to))


def _build(conn: psycopg.Connection, rubric: Rubric, tz: str, windows: list[DeviceWindow], now: datetime,
           checked_to: datetime, progress: Progress | None) -> int:
    """Compute and store every missing or mismatched closed day; returns the device-days computed."""
    digest = rubric_digest(rubric)
    ids = [w.device.id for w in windows]
    expected = {w.device.id: [d for d in local_days(tz, w.start, min(w.end, now)) if d[2] <= min(w.end, now)]
                for w in windows}
    # devices whose closed days are all there (the usual case) are not read row by row
    complete = {r[0] for r in conn.execute(
        "SELECT s.device_id FROM unnest(%s::text[], %s::timestamptz[], %s::int[], %s::text[], %s::timestamptz[], "
        "%s::timestamptz[], %s::int[]) AS u(device_id, anchor, interval_s, pkey, lo, hi, n) "
        "JOIN scoring_day s ON s.device_id = u.device_id AND s.rubric_digest = %s AND s.day_start >= u.lo "
        "AND s.day_end <= u.hi AND s.anchor = u.anchor AND s.interval_s = u.interval_s AND s.profile_key = u.pkey "
        "GROUP BY s.device_id, u.n HAVING count(*) = u.n",
        ([w.device.id for w in windows if expected[w.device.id]],
         [w.start for w in windows if expected[w.device.id]],
         [w.device.reporting_interval_s for w in windows if expected[w.device.id]],
         [declared.rollup_key(w.declared) for w in windows if expected[w.device.id]],
         [expected[w.device.id][0][1] for w in windows if expected[w.device.id]],
         [expected[w.device.id][-1][2] for w in windows if expected[w.device.id]],
         [len(expected[w.device.id]) for w in windows if expected[w.device.id]], digest))}
    have: dict[str, set[tuple[datetime, datetime, datetime, int, str]]] = {}
    for device_id, day_start, day_end, anchor, interval_s, profile_key in conn.execute(
            "SELECT device_id, day_start, day_end, anchor, interval_s, profile_key FROM scoring_day "
            "WHERE device_id = ANY(%s) AND rubric_digest = %s", ([i for i in ids if i not in complete], digest)):
        have.setdefault(device_id, set()).add((day_start, day_end, anchor, interval_s, profile_key))
    runs: list[Run] = []
    for w in windows:
        if w.device.id in complete:
            continue
        closed_to = min(w.end, now)
        current = have.get(w.device.id, set())
        key = declared.rollup_key(w.declared)
        run: list[tuple[datetime, datetime]] = []
        for _, day_start, day_end in local_days(tz, w.start, closed_to):
            if day_end > closed_to:
                break
            if (day_start, day_end, w.start, w.device.reporting_interval_s, key) in current:
                if run:
                    runs.append((w, max(run[0][0], w.start), run[-1][1], INFINITY))
                    run = []
                continue
            run.append((day_start, day_end))
        if run:
            runs.append((w, max(run[0][0], w.start), run[-1][1], INFINITY))
    if runs:
        _compute(conn, rubric, tz, runs, store=True, digest=digest, complete_to=checked_to, progress=progress,
                 total=len({r[0].device.id for r in runs}))
        # running histograms: computed with the days when a device's one run starts its window
        # and no stored day follows it (a cold build); else carried on from the stored day before
        per_device: dict[str, list[Run]] = {}
        for r in runs:
            per_device.setdefault(r[0].device.id, []).append(r)
        starts: dict[str, tuple[datetime, datetime]] = {}
        for device_id, own in per_device.items():
            w, d0, d1, _ = own[0]
            if len(own) == 1 and _starts_window(own[0]) and not any(day[0] >= d1 for day in have.get(device_id, ())):
                continue
            first = min(local_days(tz, r[1], r[1] + timedelta(microseconds=1))[0][1] for r in own)
            starts[device_id] = (w.start, first)
        if starts:
            _accumulate(conn, digest, starts)
    return sum(len(local_days(tz, r[1], r[2])) for r in runs)


_MERGE_SQL = sql.SQL("""
WITH u AS (
    SELECT * FROM unnest(%(ids)s::text[], %(anchors)s::timestamptz[], %(los)s::timestamptz[], %(his)s::timestamptz[],
                         %(intervals)s::int[], %(outages)s::float8[], %(tols)s::float8[], %(pkeys)s::text[])
             AS u(device_id, anchor, lo, hi, interval_s, outage_s, tol, pkey)
), d AS (
    SELECT s.device_id, s.day_start, s.day, s.readings, s.delivered, s.valid, s.complete, s.carried, s.suspect,
           s.fail, s.qc_tests, s.duplicates, s.future, s.skewed, s.slots_hit, s.first_slot, s.last_slot,
           s.first_delivered, s.last_delivered, s.first_ok, s.outage_list, s.fail_runs, s.bat_n, s.bat_sx,
           s.bat_sy, s.bat_sxy, s.bat_sxx, s.fixes, s.hb_intervals, s.hb_regular, s.first_hb, s.last_hb,
           u.interval_s, u.outage_s, u.tol,
           max(s.last_delivered) OVER p AS prev_delivered, max(s.last_slot) OVER p AS prev_slot,
           max(s.last_hb) OVER p AS prev_hb,
           min(s.first_ok) OVER nx AS next_ok
    FROM u JOIN scoring_day s ON s.device_id = u.device_id AND s.rubric_digest = %(digest)s
         AND s.day_start >= u.lo AND s.day_start < u.hi AND s.anchor = u.anchor AND s.interval_s = u.interval_s
         AND s.profile_key = u.pkey
    WINDOW o AS (PARTITION BY s.device_id ORDER BY s.day_start),
           p AS (o ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
           nx AS (PARTITION BY s.device_id ORDER BY s.day_start DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
), gap AS (
    SELECT d.*, date_part('epoch', first_delivered) - date_part('epoch', prev_delivered) AS gap_s FROM d
), m AS (
    SELECT device_id, count(*) AS n_days, min(day_start) AS day_start, max(day_start) AS last_day,
           sum(readings) AS readings, sum(delivered) AS delivered, sum(valid) AS valid, sum(complete) AS complete,
           sum(suspect) AS suspect, sum(fail) AS fail,
           sum(duplicates) AS duplicates, sum(future) AS future, sum(skewed) AS skewed,
           sum(slots_hit) - count(*) FILTER (WHERE first_slot = prev_slot) AS slots_hit,
           min(first_slot) AS first_slot, max(last_slot) AS last_slot,
           min(first_delivered) AS first_delivered, max(last_delivered) AS last_delivered,
           jsonb_agg(outage_list ORDER BY day) FILTER (WHERE outage_list IS NOT NULL) AS outage_days,
           jsonb_agg(jsonb_build_array(date_part('epoch', prev_delivered), date_part('epoch', first_delivered))
                     ORDER BY day) FILTER (WHERE gap_s > outage_s) AS gap_outages,
           jsonb_agg(jsonb_build_array(date_part('epoch', first_ok), date_part('epoch', next_ok), fail_runs)
                     ORDER BY day) FILTER (WHERE fail_runs IS NOT NULL) AS run_days,
           sum(bat_n) AS bat_n, sum(bat_sx) AS bat_sx, sum(bat_sy) AS bat_sy, sum(bat_sxy) AS bat_sxy,
           sum(bat_sxx) AS bat_sxx, sum(fixes) AS fixes,
           sum(hb_intervals) + count(*) FILTER (WHERE first_hb IS NOT NULL AND prev_hb IS NOT NULL) AS hb_intervals,
           sum(hb_regular) + count(*) FILTER (WHERE abs(first_hb - prev_hb - interval_s) <= tol) AS hb_regular,
           min(first_hb) AS first_hb, max(last_hb) AS last_hb,
           array_agg(day ORDER BY day) FILTER (WHERE readings > 0) AS count_days,
           array_agg(readings ORDER BY day) FILTER (WHERE readings > 0) AS count_readings,
           {carried} AS carried
    FROM gap GROUP BY device_id
), t AS (  -- per-test QC counts summed over the days
    SELECT device_id, jsonb_object_agg(test, jsonb_build_array(s, f, n)) AS qc_tests
    FROM (SELECT d.device_id, e.key AS test, sum((e.value->>0)::bigint) AS s, sum((e.value->>1)::bigint) AS f,
                 sum((e.value->>2)::bigint) AS n
          FROM d CROSS JOIN LATERAL jsonb_each(d.qc_tests) AS e GROUP BY 1, 2) e
    GROUP BY device_id
)
SELECT m.*, coalesce(t.qc_tests, '{{}}') AS qc_tests, c.cum_days, c.cum_lat_buckets AS lat_buckets,
       c.cum_lat_counts AS lat_counts, c.cum_acc_buckets AS acc_buckets, c.cum_acc_counts AS acc_counts,
       c.tail_spike, c.lead_time AS last_lead_time
FROM m JOIN u USING (device_id)
LEFT JOIN t USING (device_id)
LEFT JOIN scoring_day c ON c.device_id = m.device_id AND c.rubric_digest = %(digest)s AND c.day_start = m.last_day
""").format(carried=declared.merged_carried_sql())


def _merged_stored(conn: psycopg.Connection, rubric: Rubric, tz: str, windows: list[DeviceWindow],
                   now: datetime) -> tuple[dict[str, list[tuple[date, datetime, datetime]]], dict[str, dict[str, Any]]]:
    """The closed days each window takes from summaries, and their merge (one part per device) for
    the devices whose summaries are all there."""
    digest = rubric_digest(rubric)
    closed: dict[str, list[tuple[date, datetime, datetime]]] = {}
    for w in windows:
        closed[w.device.id] = [d for d in local_days(tz, w.start, w.end) if d[2] <= min(w.end, now)]
    last = [(w, closed[w.device.id][-1][1]) for w in windows if closed[w.device.id]]
    for (device_id,) in conn.execute(
            "SELECT s.device_id FROM scoring_day s "
            "JOIN unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) AS u(device_id, day_start, we) "
            "ON s.device_id = u.device_id AND s.day_start = u.day_start "
            "WHERE s.rubric_digest = %s AND s.tail_needs_next AND s.lead_time >= u.we",
            ([w.device.id for w, _ in last], [d for _, d in last], [w.end for w, _ in last], digest)):
        closed[device_id].pop()  # the window ends before the reading its last day's spike flag looked at
    used = [w for w in windows if closed[w.device.id]]
    params = {"ids": [w.device.id for w in used], "anchors": [w.start for w in used],
              "los": [closed[w.device.id][0][1] for w in used], "his": [closed[w.device.id][-1][2] for w in used],
              "intervals": [w.device.reporting_interval_s for w in used],
              "outages": [float(rubric.window.outage_factor * w.device.reporting_interval_s) for w in used],
              "tols": [float(rubric.heartbeat.tolerance * w.device.reporting_interval_s) for w in used],
              "pkeys": [declared.rollup_key(w.declared) for w in used], "digest": digest}
    merged: dict[str, dict[str, Any]] = {}
    ends = {w.device.id: w.end for w in used}
    with conn.cursor(row_factory=dict_row) as cur:
        for row in cur.execute(_MERGE_SQL, params):
            if row["n_days"] == len(closed[row["device_id"]]) == row["cum_days"]:
                row["daily"] = list(zip(row["count_days"] or [], row["count_readings"] or [], strict=True))
                row["outage_list"] = [o for day in row["outage_days"] or [] for o in day] + (row["gap_outages"] or [])
                if row["last_lead_time"] is not None and row["last_lead_time"] >= ends[row["device_id"]]:
                    _unevaluate(row["qc_tests"], row["tail_spike"] or {})
                merged[row["device_id"]] = row
    return closed, merged


def _unevaluate(counts: dict[str, list[int]], spikes: dict[str, int]) -> None:
    """The window ends before the reading after its last stored day: the spike tests of that day's
    last reading, evaluated with it, were not evaluated (QARTOD flag 2), as the raw pass sees them.
    (Had the reading's own flag changed, the day would have been recomputed: tail_needs_next.)"""
    for test, flag in spikes.items():
        suspect, fail, not_evaluated = counts.get(test, [0, 0, 0])
        counts[test] = [suspect - (flag == 3), fail - (flag == 4), not_evaluated + 1]


def device_parts(conn: psycopg.Connection, rubric: Rubric, tz: str, windows: list[DeviceWindow], now: datetime,
                 progress: Progress | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every device's window as parts in time order, each with the day summary's quantities and
    `daily` [(local day, readings)]: the stored closed days (late data checked, missing days built
    first) merged in SQL into one part, then the rest computed from raw rows."""
    ids = [w.device.id for w in windows]
    digest = rubric_digest(rubric)
    checked_to = _invalidate_late(conn, digest, tz, ids)
    closed, merged = _merged_stored(conn, rubric, tz, windows, now)
    missing = [w for w in windows if w.device.id not in merged and any(d[2] <= min(w.end, now)
                                                                     for d in local_days(tz, w.start, w.end))]
    if missing:  # the usual case is none: every closed day already summarised by the daily pass
        _build(conn, rubric, tz, missing, now, checked_to, progress)
        more_closed, more = _merged_stored(conn, rubric, tz, missing, now)
        closed.update(more_closed)
        merged.update(more)
    _mark_checked(conn, digest, ids, checked_to)
    parts: dict[str, list[dict[str, Any]]] = {w.device.id: [] for w in windows}
    for device_id, row in merged.items():
        parts[device_id].append(row)
    raw: list[Run] = []
    for w in windows:
        rest = max(closed[w.device.id][-1][2], w.start) if parts[w.device.id] else w.start
        if rest < w.end:
            raw.append((w, rest, w.end, w.end))
    for row in _compute(conn, rubric, tz, raw, store=False):
        row["daily"] = [(row["day"], row["readings"])]
        parts[row["device_id"]].append(row)
    for device_parts_ in parts.values():
        device_parts_.sort(key=lambda r: r["day_start"])
    if progress is not None and not missing:  # building the missing days already reported their progress
        progress(len(windows), len(windows))
    return parts


def merge(rubric: Rubric, w: DeviceWindow, parts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The raw pass's per-device aggregate (scoring.metrics) from day summaries; None without readings."""
    interval = w.device.reporting_interval_s
    slot_s = float(rubric.window.slot_factor * interval)
    outage_s = float(rubric.window.outage_factor * interval)
    tol = float(rubric.heartbeat.tolerance * interval)
    ws_e = w.start.timestamp()
    n_slots = math.floor((w.end.timestamp() - ws_e) / slot_s)
    sums = ("readings", "delivered", "valid", "complete", "suspect", "fail", "duplicates", "future", "skewed")
    total = {k: 0 for k in (*sums, "slots_hit", "fixes", "hb_intervals", "hb_regular")}
    carried: dict[str, int] = {}
    qc_tests: dict[str, list[int]] = {}
    outage_list: list[list[float]] = []
    run_days: list[tuple[float | None, list[list[Any]]]] = []
    bat = [0.0] * 5
    lat: dict[int, int] = {}
    acc: dict[int, int] = {}
    first_delivered: datetime | None = None
    last_delivered: datetime | None = None
    last_slot: int | None = None
    last_hb: float | None = None
    for p in parts:
        for k in sums:
            total[k] += p[k]
        for name, n in (p["carried"] or {}).items():
            carried[name] = carried.get(name, 0) + int(n)
        for name, counts in p["qc_tests"].items():
            qc_tests[name] = [a + int(b) for a, b in zip(qc_tests.get(name, [0, 0, 0]), counts, strict=True)]
        outage_list += p["outage_list"] or []
        if "run_days" in p:  # the stored days, merged in SQL: [first valid, next valid after the day, runs]
            for first_ok, next_ok, runs in p["run_days"] or []:
                run_days += [(first_ok, runs), (next_ok, [])]
        else:
            run_days.append((p["first_ok"].timestamp() if p["first_ok"] else None, p["fail_runs"] or []))
        total["slots_hit"] += p["slots_hit"]
        if p["first_delivered"] is not None:
            if last_delivered is not None:
                if (p["first_delivered"] - last_delivered).total_seconds() > outage_s:
                    outage_list.append([last_delivered.timestamp(), p["first_delivered"].timestamp()])
                if p["first_slot"] == last_slot:
                    total["slots_hit"] -= 1
            first_delivered = first_delivered or p["first_delivered"]
            last_delivered, last_slot = p["last_delivered"], p["last_slot"]
        for i, k in enumerate(("bat_n", "bat_sx", "bat_sy", "bat_sxy", "bat_sxx")):
            bat[i] += p[k]
        total["fixes"] += p["fixes"] or 0
        total["hb_intervals"] += p["hb_intervals"] or 0
        total["hb_regular"] += p["hb_regular"] or 0
        if p["first_hb"] is not None:
            if last_hb is not None:
                total["hb_intervals"] += 1
                total["hb_regular"] += abs(p["first_hb"] - last_hb - interval) <= tol
            last_hb = p["last_hb"]
        histogram.merge(lat, p["lat_buckets"], p["lat_counts"])
        histogram.merge(acc, p["acc_buckets"], p["acc_counts"])
    if total["readings"] == 0:
        return None
    if last_slot is not None and last_slot >= n_slots:
        total["slots_hit"] -= 1  # the partial last slot is not counted
    n, sx, sy, sxy, sxx = bat
    denom = n * sxx - sx * sx
    slope = (n * sxy - sx * sy) / denom * 86400 if n >= 1 and denom != 0 else None
    tracker, switch = w.device.kind == "location_tracker", w.device.kind == "smart_switch"
    incidents = None
    if rubric.quality is not None:
        tests = delivery.counted_tests(rubric, qc_test_names(rubric, w.device.kind,
                                                            declared.qc_metrics(rubric, w.device.kind, w.declared)))
        incidents = join_runs(run_days, w.end.timestamp(), float(rubric.quality.incident_factor * interval), tests)
    return {**total, "first_delivered": first_delivered, "last_delivered": last_delivered,
            "outage_list": sorted(outage_list), "incidents": incidents, "qc_tests": qc_tests,
            "latency_p50": histogram.percentile(lat, 0.5), "latency_p95": histogram.percentile(lat, 0.95),
            "battery_slope": slope, "bat_n": n, "carried": carried,
            "fixes": total["fixes"] if tracker else None,
            "acc_p50": histogram.percentile(acc, 0.5) if tracker else None,
            "acc_p95": histogram.percentile(acc, 0.95) if tracker else None,
            "hb_intervals": total["hb_intervals"] if switch else None,
            "hb_regular": total["hb_regular"] if switch else None}
