"""Per-device metrics: their formulas, merged from per-day summaries (scoring.daily), and the
reference raw pass (one ordered pass over each device's readings in PostgreSQL) they equal.

Only messages on the `telemetry` channel with device time inside the device's window
(scoring.window) are read. With `interval` the declared reporting interval, `W` the window
length, `k` the rubric's slot factor and `o` its outage factor; *delivered*, *QC-counted*,
*valid* and *timed* as scoring.delivery defines them under the rubric (v2: delivered = every
reading that arrived, but a repeat of the previous reading's device time; valid = delivered and
its QC flag, scoring.quality, not fail; v1: delivered = valid); and *complete* a delivered reading
that carries every telemetry measurement its profile version declares (scoring.declared: a
reading no version read is held to the device's current version; a tracker's no-fix report
carries its position measurements by saying it has none; a device without a profile has only the
contract's required fields, so each of its delivered readings is complete):

Delivery
- availability   = slots with >= 1 delivered reading / floor(W / (k * interval)); slot i covers
                   [start + i*k*interval, start + (i+1)*k*interval); a partial last slot is not counted
- completeness   = min(1, complete readings / expected), expected = floor(W / interval) (per
                   reading; v1, and v2 without a profile); v2 for a device whose profile declares
                   telemetry measurements M: mean over m in M of min(1, delivered readings carrying m
                   / expected) (per measurement: a device alternating reports, relay state in one and
                   power in the next, is not scored ~0). Delivered readings have distinct device times
- outages        = silences in delivered readings longer than o * interval: between consecutive
                   ones, from the window start to the first and from the last to the window end.
                   One definition for all: an outage runs from the last delivered reading before it
                   (or the window start) to the next one (or the window end: then it is *open*, not
                   recovered); duration = end - start. MTTR = mean duration of the closed ones; a
                   device whose open outage is at least `attrition_after_h` long (or that delivered
                   nothing) is *lost*
- delivery ratio = LPWA only, when the loss table exists (scoring.lpwa): received / expected frames
- latency        = p50 and p95 (percentile_cont) of ingest_time - device_time over timed readings
                   (v2: delivered ones whose device time is not in the future; v1: valid ones);
                   from the summaries' log-bucket histograms, within 1 % relative error (or 1 ms
                   below 1 ms; scoring.histogram), exact in the raw pass and in a signed record
                   (scoring.latency); latency = the interval ingest_time - device_time in seconds
- switch         = heartbeat regularity = share of intervals between consecutive delivered heartbeats
                   within +-tolerance x interval of the declared interval
- deliveries     = what arrived and was not a new reading: `duplicates` (stored readings repeating
                   the previous device time under another seq), `redelivered` (messages ingest
                   already held, same seq and device time: dropped there) and `rejected` by reason
                   (refused at ingest: bad JSON, unknown field, bad timestamp...), from
                   scoring.ingest_counts; shown, in no component
Data quality
- QC             = QC-counted readings (v2: delivered; v1: all) flagged pass / suspect / fail, and
                   per test (`qc_tests`) pass / suspect / fail / not evaluated (QARTOD 2 or 9: no
                   neighbour, or the measurement absent); QC tests only the rubric metrics the
                   device's profile declares (all of its kind's without a profile). Under v2 a
                   repeated device time is a duplicate (`duplicates`), not a QC fail
- incidents      = v2: runs of failed delivered readings longer than `quality.incident_factor` x
                   interval, from the first failed reading to the next valid one (or the window
                   end: open), with the tests that failed (scoring.incidents); v1: none (a run of
                   fails is a silence in valid readings, so an outage)
Values (valid readings)
- battery        = least-squares slope of battery_pct over time (%/day; from the summaries' sums n,
                   Σx, Σy, Σxy, Σx², x = seconds since the window start); projected life = 100 /
                   -slope days, compared with the firm's claim: ratio = min(1, projected / claimed);
                   no measurable drain (slope >= 0) meets the claim. With a claim: a profile that
                   does not declare battery_pct gives no ratio; one that declares it, with no valid
                   reading reporting it, gives ratio 0 (`battery_reason` says why a ratio is 0 or
                   missing)
- tracker        = fix rate = valid readings with fix_type other than 'none' / valid readings;
                   accuracy p50 / p95 of accuracy_m over those fixes (histogram: within 1 %)
- profile        = the device's profile and current version, its declared measurements, and per
                   declared telemetry measurement the share of delivered readings carrying it
                   (`measurement_shares`; None without a profile)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from scoring import daily, declared, delivery
from scoring.quality import QcColumns, qc_columns, qc_test_names
from scoring.rubric import Rubric
from scoring.window import DeviceWindow
from store.delivery import DeliveryCounts


@dataclass(frozen=True)
class Period:
    """An outage or a quality incident: [start, end), duration = end - start; `open` when it had not
    ended by the window end (then end = the window end)."""

    start: datetime
    end: datetime
    duration_s: float
    open: bool


@dataclass(frozen=True)
class Incident(Period):
    """A quality incident, with the QC tests that failed during it."""

    tests: list[str]


@dataclass(frozen=True)
class DeviceMetrics:
    """What one device achieved over its window. Ratios are None where undefined."""

    device_id: str
    kind: str
    window_start: datetime
    window_end: datetime
    readings: int
    delivered: int
    valid: int
    complete: int
    expected: int
    slots: int
    slots_hit: int
    availability: float | None
    completeness: float | None
    completeness_rule: str
    completeness_numerator: float
    delivery_ratio: float | None
    latency_p50_s: float | None
    latency_p95_s: float | None
    qc_pass: int
    qc_suspect: int
    qc_fail: int
    qc_tests: dict[str, dict[str, int]]
    duplicates: int
    redelivered: int
    rejected: int
    rejected_by_reason: dict[str, int]
    future: int
    skewed: int
    outages: int
    recovered_outages: int
    mttr_s: float | None
    down_s: float
    lost: bool
    outage_periods: list[Period]
    quality_incidents: list[Incident] | None
    battery_slope_pct_per_day: float | None
    projected_battery_days: float | None
    claimed_battery_days: float | None
    battery_ratio: float | None
    battery_reason: str | None
    fix_rate: float | None
    accuracy_p50_m: float | None
    accuracy_p95_m: float | None
    heartbeat_regularity: float | None
    profile_id: str | None
    profile_version: int | None
    declared_measurements: list[str] | None
    measurement_shares: dict[str, float | None] | None
    measurement_carried: dict[str, int] | None

    @property
    def kind_specific(self) -> float | None:
        return self.fix_rate if self.kind == "location_tracker" else self.heartbeat_regularity


def _readings_sql(rubric: Rubric, kind: str, interval_s: int, qc: QcColumns, *, rows: bool) -> sql.Composed:
    """Levels 1-3 (ordered readings with QC flags) and, unless `rows`, the per-device aggregate."""
    extra = {"location_tracker": ["fix_type", "accuracy_m"], "smart_switch": ["trigger"]}.get(kind, [])
    qc_metrics = sorted({name.split("__")[0] for name in qc.flag_names if not name.startswith("ts__")})
    columns = sorted(set(qc_metrics) | set(extra) | set(declared.telemetry_measurements(kind)) | {"battery_pct"})
    level1 = sql.SQL(", ").join([sql.SQL("t.{}").format(sql.Identifier(c)) for c in columns] + qc.window_level)
    level2 = sql.SQL(", ").join([sql.SQL("r.*"), *qc.run_level])
    level3 = sql.SQL(", ").join([sql.SQL("q.*"), *qc.flag_level])
    counting = delivery.counting(rubric, qc.flag_names)
    readings = sql.SQL("""
WITH w AS (
    SELECT u.device_id, u.ws, u.we, u.cmask, u.vmasks::int[] AS vmasks
    FROM unnest(%(ids)s::text[], %(starts)s::timestamptz[], %(ends)s::timestamptz[], %(cmasks)s::int[],
                %(vmasks)s::text[]) AS u(device_id, ws, we, cmask, vmasks)
), r AS (
    SELECT t.device_id, t.seq, t.device_time, w.ws, w.we,
           date_part('epoch', t.device_time) AS te, date_part('epoch', w.ws) AS ws_e, date_part('epoch', w.we) AS we_e,
           date_part('epoch', t.ingest_time - t.device_time) AS latency_s,
           lag(t.device_time) OVER s AS prev_time,
           floor(date_part('epoch', t.device_time) - date_part('epoch', lag(t.device_time) OVER s)) AS dt_s,
           row_number() OVER s AS n,
           {present} AS present, {required} AS required,
           {level1}
    FROM telemetry t JOIN w ON t.device_id = w.device_id
    WHERE t.channel = 'telemetry' AND t.device_time >= w.ws AND t.device_time < w.we
    WINDOW s AS (PARTITION BY t.device_id ORDER BY t.device_time, t.seq)
), q AS (
    SELECT {level2} FROM r
    WINDOW s2 AS (PARTITION BY r.device_id ORDER BY r.device_time, r.seq)
), f AS (
    SELECT {level3} FROM q
), g AS (  -- OFFSET 0: flags computed once per reading, not again at every use in the window functions
    SELECT f.*, {counted}, {mask} AS fmask FROM f OFFSET 0
)""").format(level1=level1, level2=level2, level3=level3, present=declared.present_sql(kind),
             required=declared.required_sql(sql.SQL("w.vmasks"), sql.SQL("w.cmask")), counted=counting.columns(),
             mask=delivery.failed_tests_mask(counting.tests))
    if rows:
        return readings + sql.SQL(" SELECT g.* FROM g ORDER BY device_id, device_time, seq")

    slot_s = sql.Literal(float(rubric.window.slot_factor * interval_s))
    outage_s = sql.Literal(float(rubric.window.outage_factor * interval_s))
    tol = sql.Literal(float(rubric.heartbeat.tolerance * interval_s))
    interval = sql.Literal(float(interval_s))
    heartbeat = (sql.SQL(", max(CASE WHEN dv AND trigger = 'heartbeat' THEN te END) OVER p AS prev_heartbeat")
                 if kind == "smart_switch" else sql.SQL(", NULL::float8 AS prev_heartbeat"))
    tracker = (sql.SQL("""count(*) FILTER (WHERE ok AND fix_type <> 'none') AS fixes,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY accuracy_m) FILTER (WHERE ok AND fix_type <> 'none') AS acc_p50,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY accuracy_m) FILTER (WHERE ok AND fix_type <> 'none') AS acc_p95""")
               if kind == "location_tracker" else sql.SQL("NULL::bigint AS fixes, NULL::float8 AS acc_p50, NULL::float8 AS acc_p95"))
    switch = (sql.SQL("""count(*) FILTER (WHERE dv AND trigger = 'heartbeat' AND prev_heartbeat IS NOT NULL) AS hb_intervals,
           count(*) FILTER (WHERE dv AND trigger = 'heartbeat' AND prev_heartbeat IS NOT NULL
                            AND abs(te - prev_heartbeat - {interval}) <= {tol}) AS hb_regular""")
              .format(interval=interval, tol=tol)
              if kind == "smart_switch" else sql.SQL("NULL::bigint AS hb_intervals, NULL::bigint AS hb_regular"))
    incidents: sql.Composable = sql.SQL("")
    joined = sql.SQL("SELECT agg.*, NULL::jsonb AS incidents FROM agg")
    if rubric.quality is not None:
        incident_s = sql.Literal(float(rubric.quality.incident_factor * interval_s))
        incidents = sql.SQL("""
, runs AS (  -- a run of failed delivered readings: those after the same valid one
    SELECT device_id, min(te) AS start_te, min(next_ok) AS next_ok, min(we_e) AS we_e, bit_or(fmask) AS mask
    FROM v WHERE dv AND NOT ok GROUP BY device_id, prev_ok
), inc AS (
    SELECT device_id, jsonb_agg(jsonb_build_array(start_te, coalesce(next_ok, we_e), next_ok IS NULL, {names})
                                ORDER BY start_te) AS incidents
    FROM runs WHERE coalesce(next_ok, we_e) - start_te > {incident_s} GROUP BY device_id
)""").format(names=delivery.mask_names(sql.SQL("mask"), counting.tests), incident_s=incident_s)
        joined = sql.SQL("SELECT agg.*, inc.incidents FROM agg LEFT JOIN inc USING (device_id)")
    return readings + sql.SQL("""
, v AS (
    SELECT g.*,
           max(CASE WHEN dv THEN te END) OVER p AS prev_dv,
           max(CASE WHEN ok THEN te END) OVER p AS prev_ok,
           min(CASE WHEN ok THEN te END) OVER nx AS next_ok
           {heartbeat}
    FROM g
    WINDOW s3 AS (PARTITION BY device_id ORDER BY device_time, seq),
           p AS (s3 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
           -- after: in reverse order with a fixed frame start (from 1 FOLLOWING min() restarts at every row)
           nx AS (PARTITION BY device_id ORDER BY device_time DESC, seq DESC
                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
){incidents}, agg AS (
SELECT device_id,
       count(*) AS readings,
       count(*) FILTER (WHERE dv) AS delivered,
       count(*) FILTER (WHERE ok) AS valid,
       count(*) FILTER (WHERE dv AND {complete}) AS complete,
       {carried} AS carried,
       count(*) FILTER (WHERE qb AND qc = 3) AS suspect,
       count(*) FILTER (WHERE qb AND qc = 4) AS fail,
       {qc_tests} AS qc_tests,
       count(*) FILTER (WHERE ts__duplicate = 4) AS duplicates,
       count(*) FILTER (WHERE qb AND ts__future = 4) AS future,
       count(*) FILTER (WHERE qb AND ts__skew = 3) AS skewed,
       count(*) FILTER (WHERE dv
                        AND floor((te - ws_e) / {slot_s}) < floor((we_e - ws_e) / {slot_s})
                        AND (prev_dv IS NULL OR floor((prev_dv - ws_e) / {slot_s})
                                                  <> floor((te - ws_e) / {slot_s}))) AS slots_hit,
       min(device_time) FILTER (WHERE dv) AS first_delivered,
       max(device_time) FILTER (WHERE dv) AS last_delivered,
       jsonb_agg(jsonb_build_array(prev_dv, te) ORDER BY te) FILTER (WHERE dv AND te - prev_dv > {outage_s})
           AS outage_list,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_s) FILTER (WHERE tm) AS latency_p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_s) FILTER (WHERE tm) AS latency_p95,
       regr_slope(battery_pct, te) FILTER (WHERE ok) * 86400 AS battery_slope,
       count(battery_pct) FILTER (WHERE ok) AS bat_n,
       {tracker},
       {switch}
FROM v
GROUP BY device_id
)
""").format(heartbeat=heartbeat, slot_s=slot_s, outage_s=outage_s, tracker=tracker, switch=switch,
           complete=declared.COMPLETE, carried=declared.carried_sql(kind, sql.SQL("dv")),
           qc_tests=delivery.qc_test_counts(counting.tests), incidents=incidents) + joined


Group = tuple[str, int, tuple[str, ...]]


def _groups(rubric: Rubric, windows: list[DeviceWindow]) -> list[tuple[Group, list[DeviceWindow]]]:
    """Devices grouped by (kind, declared interval, QC-tested metrics): QC window lengths and
    tests are SQL literals per group."""
    def key(w: DeviceWindow) -> Group:
        kind = w.device.kind
        return (kind, w.device.reporting_interval_s, declared.qc_metrics(rubric, kind, w.declared))

    ordered = sorted(windows, key=lambda w: (key(w), w.device.id))
    return [(k, list(g)) for k, g in groupby(ordered, key=key)]


def _params(kind: str, windows: list[DeviceWindow]) -> dict[str, Any]:
    return {"ids": [w.device.id for w in windows], "starts": [w.start for w in windows],
            "ends": [w.end for w in windows], **declared.mask_params(kind, [w.declared for w in windows])}


def reading_flags(conn: psycopg.Connection, rubric: Rubric, window: DeviceWindow) -> list[dict[str, Any]]:
    """Every reading of one device in its window with each test's flag, the aggregate `qc` and its
    `present` and `required` measurement masks (scoring.declared), for the per-device breakdown and
    for checking against ioos_qc."""
    kind, interval = window.device.kind, window.device.reporting_interval_s
    tested = declared.qc_metrics(rubric, kind, window.declared)
    query = _readings_sql(rubric, kind, interval, qc_columns(rubric, kind, interval, tested), rows=True)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, _params(kind, [window])).fetchall()


def device_metrics(conn: psycopg.Connection, rubric: Rubric, windows: list[DeviceWindow],
                   ratios: dict[str, float], progress: Callable[[int, int], None] | None = None, *,
                   timezone: str = "UTC", now: datetime | None = None,
                   ingest: dict[str, DeliveryCounts] | None = None) -> list[DeviceMetrics]:
    """Metrics of every device in `windows`, in device id order, merged from per-day summaries
    (scoring.daily; days are `timezone`'s, which only decides how summaries are cut, never a
    figure). `ratios` holds LPWA delivery ratios by device (scoring.lpwa), `ingest` what ingest
    counted that never became a reading (scoring.ingest_counts; none if not given).
    `progress(done, total)` is called as summaries are built and at the end."""
    parts = daily.device_parts(conn, rubric, timezone, windows, now or datetime.now(UTC), progress)
    return metrics_from_parts(rubric, windows, parts, ratios, ingest)


def metrics_from_parts(rubric: Rubric, windows: list[DeviceWindow], parts: dict[str, list[dict[str, Any]]],
                       ratios: dict[str, float], ingest: dict[str, DeliveryCounts] | None = None) -> list[DeviceMetrics]:
    """Metrics of every device in `windows`, in device id order, from its day summaries."""
    return [_finish(rubric, w, daily.merge(rubric, w, parts.get(w.device.id, [])), ratios.get(w.device.id),
                    (ingest or {}).get(w.device.id))
            for w in sorted(windows, key=lambda w: w.device.id)]


def raw_device_metrics(conn: psycopg.Connection, rubric: Rubric, windows: list[DeviceWindow],
                       ratios: dict[str, float], progress: Callable[[int, int], None] | None = None,
                       batch_size: int = 100, ingest: dict[str, DeliveryCounts] | None = None) -> list[DeviceMetrics]:
    """The same metrics from one ordered pass over every raw reading of the windows: the reference
    the summaries are tested against (exact percentiles), and `bench/scoring.py --raw`."""
    found: dict[str, dict[str, Any]] = {}
    done = 0
    for (kind, interval, tested), group in _groups(rubric, windows):
        query = _readings_sql(rubric, kind, interval, qc_columns(rubric, kind, interval, tested), rows=False)
        for i in range(0, len(group), batch_size):
            batch = group[i:i + batch_size]
            with conn.cursor(row_factory=dict_row) as cur:
                for row in cur.execute(query, _params(kind, batch)):
                    found[row["device_id"]] = row
            done += len(batch)
            if progress is not None:
                progress(done, len(windows))
    return [_finish(rubric, w, found.get(w.device.id), ratios.get(w.device.id), (ingest or {}).get(w.device.id))
            for w in sorted(windows, key=lambda w: w.device.id)]


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _period(start: datetime, end: datetime, open_: bool) -> Period:
    return Period(start, end, (end - start).total_seconds(), open_)


def outage_periods(w: DeviceWindow, limit_s: float, first: datetime | None, last: datetime | None,
                   inner: list[list[float]]) -> list[Period]:
    """Every outage of the window, in time order: the silence before the first delivered reading,
    those between delivered readings (`inner`: [last before, next] epochs) and the one after the
    last (open), each when longer than `limit_s`; the whole window (open) if nothing was delivered."""
    if first is None or last is None:
        return [_period(w.start, w.end, True)]
    found = [_period(_moment(a), _moment(b), False) for a, b in inner]
    if (first - w.start).total_seconds() > limit_s:
        found.append(_period(w.start, first, False))
    if (w.end - last).total_seconds() > limit_s:
        found.append(_period(last, w.end, True))
    return sorted(found, key=lambda p: p.start)


def _incidents(rows: list[list[Any]] | None) -> list[Incident]:
    return [Incident(_moment(a), _moment(b), (_moment(b) - _moment(a)).total_seconds(), bool(open_), list(tests))
            for a, b, open_, tests in rows or []]


def _qc_tests(tests: list[str], base: int, counts: dict[str, list[int]]) -> dict[str, dict[str, int]]:
    """Per test: pass / suspect / fail / not evaluated over the `base` QC-counted readings."""
    found = {}
    for name in tests:
        suspect, fail, not_evaluated = (int(n) for n in counts.get(name, (0, 0, 0)))
        found[name] = {"pass": base - suspect - fail - not_evaluated, "suspect": suspect, "fail": fail,
                       "not_evaluated": not_evaluated}
    return found


def _finish(rubric: Rubric, w: DeviceWindow, row: dict[str, Any] | None, delivery_ratio: float | None,
            counts: DeliveryCounts | None) -> DeviceMetrics:
    """Turn the SQL aggregate into metrics: outages, ratios, battery projection."""
    d = w.device
    row = row or {}
    counts = counts or DeliveryCounts()
    interval = d.reporting_interval_s
    seconds = w.seconds
    slots = int(seconds // (rubric.window.slot_factor * interval))
    expected = int(seconds // interval)
    readings, delivered, valid = (int(row.get(k) or 0) for k in ("readings", "delivered", "valid"))
    complete = int(row.get("complete") or 0)
    periods = outage_periods(w, rubric.window.outage_factor * interval, row.get("first_delivered"),
                             row.get("last_delivered"), row.get("outage_list") or [])
    recovered = [p.duration_s for p in periods if not p.open]
    open_s = sum(p.duration_s for p in periods if p.open)
    lost = not delivered or open_s >= rubric.window.attrition_after_h * 3600

    slope = row.get("battery_slope")
    projected = 100.0 / -slope if slope is not None and slope < 0 else None
    battery_ratio, battery_reason = _battery(slope, projected, int(row.get("bat_n") or 0), d.claimed_battery_days,
                                             declared.declares_battery(d.kind, w.declared))
    telemetry = declared.declared_telemetry(d.kind, w.declared)
    carried = {m: int((row.get("carried") or {}).get(m) or 0) for m in telemetry or ()}
    rule, numerator = completeness(rubric, expected, complete, carried)

    qc_base = delivered if delivery.arrived(rubric) else readings
    suspect, fail = int(row.get("suspect") or 0), int(row.get("fail") or 0)
    tests = delivery.counted_tests(rubric, qc_test_names(rubric, d.kind, declared.qc_metrics(rubric, d.kind, w.declared)))
    fixes = row.get("fixes")
    hb_intervals = row.get("hb_intervals")
    return DeviceMetrics(
        device_id=d.id, kind=d.kind, window_start=w.start, window_end=w.end,
        readings=readings, delivered=delivered, valid=valid, complete=complete, expected=expected, slots=slots,
        slots_hit=int(row.get("slots_hit") or 0),
        availability=_ratio(int(row.get("slots_hit") or 0), slots),
        completeness=numerator / expected if expected else None, completeness_rule=rule,
        completeness_numerator=numerator,
        delivery_ratio=delivery_ratio,
        latency_p50_s=row.get("latency_p50"), latency_p95_s=row.get("latency_p95"),
        qc_pass=qc_base - suspect - fail, qc_suspect=suspect, qc_fail=fail,
        qc_tests=_qc_tests(tests, qc_base, row.get("qc_tests") or {}),
        duplicates=int(row.get("duplicates") or 0), redelivered=counts.duplicates, rejected=counts.rejected,
        rejected_by_reason=dict(sorted(counts.rejected_by_reason.items())), future=int(row.get("future") or 0),
        skewed=int(row.get("skewed") or 0),
        outages=len(periods), recovered_outages=len(recovered),
        mttr_s=sum(recovered) / len(recovered) if recovered else None,
        down_s=sum(recovered) + open_s, lost=lost, outage_periods=periods,
        quality_incidents=_incidents(row.get("incidents")) if rubric.quality is not None else None,
        battery_slope_pct_per_day=slope, projected_battery_days=projected,
        claimed_battery_days=d.claimed_battery_days, battery_ratio=battery_ratio, battery_reason=battery_reason,
        fix_rate=_ratio(int(fixes), valid) if fixes is not None else None,
        accuracy_p50_m=row.get("acc_p50"), accuracy_p95_m=row.get("acc_p95"),
        heartbeat_regularity=(_ratio(int(row.get("hb_regular") or 0), int(hb_intervals))
                              if hb_intervals is not None else None),
        profile_id=w.declared.profile_id if w.declared else None,
        profile_version=w.declared.version if w.declared else None,
        declared_measurements=sorted(w.declared.measurements) if w.declared else None,
        measurement_shares=({m: _ratio(carried[m], delivered) for m in telemetry} if telemetry is not None else None),
        measurement_carried=carried if telemetry is not None else None,
    )


def completeness(rubric: Rubric, expected: int, complete: int, carried: dict[str, int]) -> tuple[str, float]:
    """The rule that applies and completeness's numerator (completeness = numerator / expected).

    per_reading: min(complete readings, expected). per_measurement (rubric v2), for a device whose
    profile declares telemetry measurements M (`carried`: delivered readings carrying each):
    sum over M of min(carried, expected) / |M|, so completeness = mean over M of min(1, carried /
    expected). A device that alternates reports (relay state in one, power in the next: each a
    reading) is complete when each measurement arrives as often as its declared interval says;
    the reading rule would count none of its readings complete."""
    if rubric.delivery.completeness == "per_measurement" and carried:
        return "per_measurement", sum(min(n, expected) for n in carried.values()) / len(carried)
    return "per_reading", float(min(complete, expected))


def _battery(slope: float | None, projected: float | None, readings: int, claimed: float | None,
             declares: bool | None) -> tuple[float | None, str | None]:
    """The battery ratio against the claimed life, and why there is none (or why it is 0)."""
    if claimed is None:
        return None, None  # nothing claimed (mains powered)
    if declares is False:
        return None, "the profile does not declare battery_pct: no battery ratio"
    if slope is not None:
        return (1.0 if projected is None else min(1.0, projected / claimed)), None
    if declares and readings == 0:
        return 0.0, "the profile declares battery_pct, but it was never reported in a valid reading: ratio 0"
    if readings == 0:
        return None, "no valid reading reported battery_pct: no battery trend"
    return None, "too few valid battery readings for a trend"
