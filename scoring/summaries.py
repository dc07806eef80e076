"""Day summaries computed from each run's readings with numpy (the quantities of scoring.daily).

A run is one device's readings in [d0, d1) with their context (scoring.daily): up to C readings
before d0 (never before the window start) and the first reading in [d1, lim). PostgreSQL packs
each run's columns into arrays (`array_send`: one value per reading, big-endian, fixed width),
which numpy reads as they are; every per-reading quantity (QC flags, delivered / valid, slots,
buckets) is then a vector operation, and each local day's summary a count or sum over its slice.

Why not in SQL, where the raw pass (scoring.metrics) stays: the same summaries as one SQL query
with four window-function passes over every reading cost ~17 µs per reading (455 s for a cold
build of 1,000 devices x 90 days); reading the packed columns costs ~1 µs and the numpy work less.
Why by hand and not ioos_qc: its tests take one metric of one device at a time with its own
handling of gaps and time units, while a summary needs the flags of every test of every reading
in the run at once, each exactly as the SQL reference computes them (scoring.quality). The
expressions follow scoring.quality and scoring.delivery term for term (IEEE double arithmetic in
the same order); tests/scoring/test_rollups.py holds every summary to the raw pass.

Stored readings never hold NaN (the contract refuses it), so NaN stands for SQL NULL here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from psycopg import sql

from scoring import declared, delivery, histogram
from scoring.quality import qc_test_names
from scoring.rubric import MetricQc, Rubric
from scoring.window import DeviceWindow

Run = tuple[DeviceWindow, datetime, datetime, datetime]  # window, from, to, lead limit
Day = tuple[Any, datetime, datetime]  # local date, start, end

_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in µs since 1970: binary timestamptz counts from it
_DAY_US = 86_400_000_000
_NONE, _NO_FIX, _FIX = 0, 1, 2  # fix_type coded: NULL, 'none', any other
_ARRAY_HEADER = 20  # array_send: ndim, flags, element type, then per dimension (+8 each) length, lower bound


@dataclass(frozen=True)
class Readings:
    """One run's readings in (device_time, seq) order, context first and lead last."""

    t: np.ndarray          # device time, µs since 1970
    ingest: np.ndarray     # ingest time, µs since 1970
    part: np.ndarray       # -1 context, 0 the run, 1 the reading after it
    version: np.ndarray    # profile_version, 0 for none
    values: dict[str, np.ndarray]  # float columns (NaN = NULL); fix_type and trigger coded


def _columns(kind: str, tested: tuple[str, ...]) -> list[str]:
    extra = {"location_tracker": ["fix_type", "accuracy_m"], "smart_switch": ["trigger"]}.get(kind, [])
    return sorted(set(tested) | set(extra) | set(declared.telemetry_measurements(kind)) | {"battery_pct"})


def _packed(column: str) -> sql.Composable:
    """A column as float8 (NaN for NULL; fix_type and trigger coded)."""
    if column == "fix_type":
        return sql.SQL("CASE WHEN fix_type IS NULL THEN 0 WHEN fix_type = 'none' THEN 1 ELSE 2 END::float8")
    if column == "trigger":
        return sql.SQL("CASE WHEN trigger IS NULL THEN 'NaN'::float8 WHEN trigger = 'heartbeat' THEN 1 ELSE 0 END")
    if column == "relay_on":
        return sql.SQL("coalesce(relay_on::int::float8, 'NaN')")
    return sql.SQL("coalesce({}::float8, 'NaN')").format(sql.Identifier(column))


def fetch_sql(kind: str, tested: tuple[str, ...], context: int, versions: bool) -> sql.Composed:
    """One row per run (parameters ids/anchors/froms/tos/lims): the run's number, its device and
    ingest times, and a two-dimensional float8 array, a row per reading of seq, profile version
    (if `versions`: only a device with a profile needs it) and the values (all NULL without
    readings). The readings are one range of the device's, from
    the C-th before d0 through the first at or after d1 (`unpack` sorts them and keeps C and 1 of
    those).

    What it costs PostgreSQL is mostly the aggregates' work per value: one range rather than three
    queries in a union, no ORDER BY (numpy sorts 26 k readings in a millisecond) and one array
    aggregate of a row array rather than one per column make it ~3x cheaper than the first form."""
    version = sql.SQL("coalesce(profile_version, 0)::float8" if versions else "0::float8")
    values = sql.SQL(", ").join([sql.SQL("seq::float8"), version, *(_packed(c) for c in _columns(kind, tested))])
    return sql.SQL("""
SELECT u.i, c.* FROM unnest(%(ids)s::text[], %(anchors)s::timestamptz[], %(froms)s::timestamptz[],
                            %(tos)s::timestamptz[], %(lims)s::timestamptz[]) WITH ORDINALITY AS u(device_id, ws, d0, d1, lim, i)
CROSS JOIN LATERAL (SELECT coalesce(
    (SELECT t.device_time FROM telemetry t WHERE t.device_id = u.device_id AND t.channel = 'telemetry'
       AND t.device_time >= u.ws AND t.device_time < u.d0 ORDER BY t.device_time DESC OFFSET {ctx} - 1 LIMIT 1),
    u.ws) AS lo,
    coalesce((SELECT min(t.device_time) FROM telemetry t WHERE t.device_id = u.device_id AND t.channel = 'telemetry'
       AND t.device_time >= u.d1 AND t.device_time < u.lim), u.d1 - interval '1 microsecond') AS hi) b
CROSS JOIN LATERAL (
    SELECT array_send(array_agg(device_time)), array_send(array_agg(ingest_time)), array_send(array_agg(ARRAY[{values}]))
    FROM telemetry t
    WHERE t.device_id = u.device_id AND t.channel = 'telemetry' AND t.device_time >= b.lo AND t.device_time <= b.hi) c
""").format(values=values, ctx=sql.Literal(context))


def _cells(data: bytes, dtype: str, header: int) -> np.ndarray:
    """The values of an array_send of a NULL-free int8/float8/timestamptz array (each a length and
    a big-endian value), in element order."""
    cells = np.frombuffer(data, dtype=np.dtype([("length", ">i4"), ("value", dtype)]), offset=header)
    return cells["value"].astype(dtype.replace(">", "<"))


def unpack(kind: str, tested: tuple[str, ...], context: int, run: Run, row: tuple[Any, ...]) -> Readings:
    """The Readings of one row of fetch_sql: in (device time, seq) order, the last `context` before
    the run, the run, and the first after it."""
    columns = _columns(kind, tested)
    _, t, ingest, table = row
    if t is None:
        return empty(kind, tested)
    times = _cells(t, ">i8", _ARRAY_HEADER) + _PG_EPOCH_US
    values = _cells(table, ">f8", _ARRAY_HEADER + 8).reshape(len(times), 2 + len(columns))
    order = np.lexsort((values[:, 0], times))
    times = times[order]
    d0, d1 = _us(run[1]), _us(run[2])
    before, after = int(np.searchsorted(times, d0)), int(np.searchsorted(times, d1))
    keep = slice(max(before - context, 0), min(after + 1, len(times)))
    chosen = order[keep]
    part = np.zeros(len(chosen), dtype=np.int64)
    part[:before - keep.start] = -1
    part[after - keep.start:] = 1
    picked = values[chosen]
    return Readings(t=times[keep], ingest=_cells(ingest, ">i8", _ARRAY_HEADER)[chosen] + _PG_EPOCH_US, part=part,
                    version=picked[:, 1].astype(np.int64),
                    values={c: np.ascontiguousarray(picked[:, 2 + i]) for i, c in enumerate(columns)})


def empty(kind: str, tested: tuple[str, ...]) -> Readings:
    none = np.zeros(0, dtype=np.int64)
    return Readings(none, none, none, none, {c: np.zeros(0) for c in _columns(kind, tested)})


def _prev(x: np.ndarray) -> np.ndarray:
    """lag(x): NaN for the first."""
    out = np.empty_like(x, dtype=float)
    out[:1] = np.nan
    out[1:] = x[:-1]
    return out


def _next(x: np.ndarray) -> np.ndarray:
    """lead(x): NaN for the last."""
    out = np.empty_like(x, dtype=float)
    out[-1:] = np.nan
    out[:-1] = x[1:]
    return out


def _last_before(cond: np.ndarray) -> np.ndarray:
    """Per row, the index of the last earlier row where `cond` holds, -1 if none."""
    idx = np.where(cond, np.arange(len(cond)), -1)
    running = np.maximum.accumulate(idx) if len(idx) else idx
    out = np.empty_like(running)
    out[:1] = -1
    out[1:] = running[:-1]
    return out


def _bucket(v: np.ndarray) -> np.ndarray:
    """scoring.histogram's bucket of each value (as its SQL)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        k = 1 + np.floor(np.log(np.abs(v) / histogram.FLOOR) / math.log(histogram.BASE))
        return np.where(np.abs(v) < histogram.FLOOR, 0, np.sign(v) * k).astype(np.int64)


def _gross(x: np.ndarray, null: np.ndarray, qc: MetricQc) -> np.ndarray:
    lo, hi = qc.sensor_span
    ulo, uhi = qc.user_span
    return np.select([null, (x < lo) | (x > hi), (x < ulo) | (x > uhi)], [9, 4, 3], 1)


def flags(rubric: Rubric, kind: str, interval_s: int, tested: tuple[str, ...], r: Readings,
          te: np.ndarray, latency: np.ndarray) -> dict[str, np.ndarray]:
    """Per test of scoring.quality (in qc_test_names order), each reading's flag."""
    found: dict[str, np.ndarray] = {}
    metrics: dict[str, MetricQc] = {str(k): v for k, v in rubric.qc.items()}.get(kind, {})  # type: ignore[assignment]
    n = np.arange(1, len(te) + 1)
    dt_s = np.floor(te - _prev(te))
    for metric in sorted(m for m in metrics if m in tested):
        qc = metrics[metric]
        x = r.values[metric]
        p, nx = _prev(x), _next(x)
        null, pnull = np.isnan(x), np.isnan(p)
        found[f"{metric}__gross"] = _gross(x, null, qc)
        if qc.spike is not None:
            with np.errstate(invalid="ignore"):
                d = np.abs(x - (p + nx) / 2)
            found[f"{metric}__spike"] = np.select(
                [null, pnull | np.isnan(nx), d > qc.spike.fail, d > qc.spike.suspect], [9, 2, 4, 3], 1)
        if qc.rate_of_change is not None:
            with np.errstate(invalid="ignore", divide="ignore"):
                rate = np.abs(x - p) / dt_s
            found[f"{metric}__roc"] = np.select(
                [null, pnull, (dt_s == 0) & (x != p), dt_s == 0, rate > qc.rate_of_change.suspect_per_s],
                [9, 1, 3, 1, 3], 1)
        if qc.flat_line is not None:
            fl = qc.flat_line
            with np.errstate(invalid="ignore"):
                moved = null | pnull | (np.abs(x - p) >= fl.tolerance)
            last_moved = np.maximum.accumulate(np.where(moved, n, 0)) if len(n) else n
            still = n - last_moved
            n_fail = max(int(fl.fail_s // interval_s), 1)
            n_suspect = max(int(fl.suspect_s // interval_s), 1)
            found[f"{metric}__flat"] = np.select([null, still >= n_fail, still >= n_suspect], [9, 4, 3], 1)
    ts = rubric.timestamps
    found["ts__future"] = np.where(latency < -ts.future_tolerance_s, 4, 1)
    prev_t = np.empty_like(r.t)
    prev_t[:1] = -1
    prev_t[1:] = r.t[:-1]
    duplicate = (prev_t == r.t)
    duplicate[:1] = False
    found["ts__duplicate"] = np.where(duplicate, 4, 1)
    found["ts__skew"] = np.where(np.abs(latency) > ts.max_skew_s, 3, 1)
    assert list(found) == qc_test_names(rubric, kind, tested)
    return found


def _worst(tests: Iterable[str], flag: dict[str, np.ndarray], size: int) -> np.ndarray:
    """scoring.quality.reading_flag_sql: 4 if any failed, 3 if any was suspect, else 1."""
    worst = np.ones(size, dtype=np.int64)
    for t in tests:
        f = flag[t]
        worst = np.maximum(worst, np.where((f == 3) | (f == 4), f, 1))
    return worst


def _latency(r: Readings) -> np.ndarray:
    """date_part('epoch', ingest_time - device_time): the difference justified into days and µs."""
    diff = r.ingest - r.t
    days = np.where(diff < 0, -((-diff) // _DAY_US), diff // _DAY_US)
    return (diff - days * _DAY_US) / 1e6 + (days * 86_400).astype(float)


def _moment(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(us))


def _us(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


Histogram = tuple[list[int], list[int]]  # buckets in order, their counts


def _split(table: np.ndarray, low: int) -> list[Histogram]:
    """Each row of a days x buckets table as its nonzero buckets (offset by `low`) and counts."""
    days, buckets = np.nonzero(table)
    bounds = np.searchsorted(days, np.arange(len(table) + 1)).tolist()
    b, c = (buckets + low).tolist(), table[days, buckets].tolist()
    return [(b[i:j], c[i:j]) for i, j in zip(bounds[:-1], bounds[1:], strict=True)]


def _histograms(day: np.ndarray, bucket: np.ndarray, days: int) -> tuple[list[Histogram], list[Histogram]]:
    """Per day, its histogram, and the running histogram through it."""
    if len(day) == 0:
        return [([], [])] * days, [([], [])] * days
    low = int(bucket.min())
    width = int(bucket.max()) - low + 1
    tally = np.bincount(day * width + (bucket - low), minlength=days * width).reshape(days, width)
    return _split(tally, low), _split(np.cumsum(tally, axis=0), low)


def _first_last(day: np.ndarray, mask: np.ndarray, values: np.ndarray) -> tuple[dict[int, Any], dict[int, Any]]:
    """Per day, the value at the day's first and last row where `mask` holds (rows in time order)."""
    d, v = day[mask], values[mask]
    if len(d) == 0:
        return {}, {}
    starts = np.flatnonzero(np.r_[True, d[1:] != d[:-1]])
    ends = np.r_[starts[1:], len(d)] - 1
    return ({int(d[i]): v[i] for i in starts}, {int(d[i]): v[i] for i in ends})


@dataclass(frozen=True)
class Masks:
    """What a run's device must carry: its current version's mask and each version's (declared)."""

    current: int
    by_version: tuple[int | None, ...]  # element v - 1: version v's mask


def masks(kind: str, declaration: declared.Declaration | None) -> Masks:
    return Masks(*declared.version_masks(kind, declaration))


def _required(version: np.ndarray, m: Masks) -> np.ndarray:
    """The mask each reading must carry: its profile version's, else the device's current one's."""
    table = np.array([m.current] + [m.current if v is None else v for v in m.by_version], dtype=np.int64)
    return np.where((version >= 1) & (version < len(table)), table[np.clip(version, 0, len(table) - 1)], m.current)


def _present(kind: str, r: Readings) -> np.ndarray:
    """The measurements each reading carries, as a bit mask (declared.present_sql)."""
    present = np.zeros(len(r.t), dtype=np.int64)
    no_fix = r.values["fix_type"] == _NO_FIX if kind == "location_tracker" else None
    for bit, m in enumerate(declared.telemetry_measurements(kind)):
        x = r.values[m]
        carried = (x != _NONE) if m == "fix_type" else ~np.isnan(x)
        if no_fix is not None and m in declared.POSITION:
            carried = carried | no_fix
        present |= np.where(carried, 1 << bit, 0)
    return present


def _fail_runs(f_pok: np.ndarray, f_te: np.ndarray, f_mask: np.ndarray, e_pok: np.ndarray, e_te: np.ndarray,
               tests: list[str]) -> list[list[Any]] | None:
    """The day's runs of failed delivered readings, keyed by the valid reading before them in the
    day (none: the run is the day's head), each ended by the valid reading after it, if in the day."""
    if len(f_te) == 0:
        return None
    ends = {None if math.isnan(p) else float(p): float(t) for p, t in zip(e_pok, e_te, strict=True)}
    runs: dict[float | None, list[Any]] = {}
    for p, t, mask in zip(f_pok, f_te, f_mask, strict=True):
        key = None if math.isnan(p) else float(p)
        run = runs.setdefault(key, [float(t), 0])
        run[0] = min(run[0], float(t))
        run[1] |= int(mask)
    return [[start, ends.get(key), key is None, [t for i, t in enumerate(tests) if mask & (1 << i)]]
            for key, (start, mask) in sorted(runs.items(), key=lambda kv: kv[1][0])]


def summarise(rubric: Rubric, kind: str, interval_s: int, tested: tuple[str, ...], context: int, run: Run,
              m: Masks, days: tuple[Day, ...], r: Readings, no_end: datetime) -> list[dict[str, Any]]:
    """The summaries of one run's local days (`days`, those without readings too), with the columns
    of scoring_day that come from its readings."""
    w = run[0]
    tests = delivery.counted_tests(rubric, qc_test_names(rubric, kind, tested))
    size = len(r.t)
    te = r.t / 1e6
    ws_e = _us(w.start) / 1e6
    latency = _latency(r)
    flag = flags(rubric, kind, interval_s, tested, r, te, latency)
    qc = _worst(tests, flag, size)
    qc_nolead = _worst([t for t in tests if not t.endswith("__spike")], flag, size)
    spikes = [t for t in tests if t.endswith("__spike")]
    fmask = np.zeros(size, dtype=np.int64)
    for i, t in enumerate(tests):
        fmask |= np.where(flag[t] == 4, 1 << i, 0)
    spike_bits = sum(1 << i for i, t in enumerate(tests) if t in spikes)
    if delivery.arrived(rubric):
        dv = flag[delivery.DUPLICATE_TEST] != 4
        qb, ok, tm = dv, dv & (qc < 4), dv & (flag["ts__future"] != 4)
    else:
        dv = qc < 4
        qb, ok, tm = np.ones(size, dtype=bool), dv, dv

    # each reading's local day: -1 before the run, len(days) after it (neither is one of its days)
    nd = len(days)
    starts = np.array([_us(d[1]) for d in days], dtype=np.int64)
    day = np.where(r.part < 0, -1, np.where(r.part > 0, nd, np.searchsorted(starts, r.t, side="right") - 1))
    tracker, switch = kind == "location_tracker", kind == "smart_switch"
    is_hb = (r.values["trigger"] == 1) if switch else np.zeros(size, dtype=bool)
    is_fix = (r.values["fix_type"] == _FIX) if tracker else np.zeros(size, dtype=bool)

    def same_day_before(cond: np.ndarray) -> np.ndarray:
        """te of the last earlier reading where `cond` holds, if on the same day; else NaN."""
        last = _last_before(cond)
        at = np.maximum(last, 0)
        return np.where((last >= 0) & (day[at] == day), te[at], np.nan)

    pv, pok, phb = same_day_before(dv), same_day_before(ok), same_day_before(dv & is_hb)
    is_last = np.r_[day[1:] != day[:-1], True] if size else np.zeros(0, dtype=bool)
    has_next = np.arange(size) < size - 1
    next_t = np.r_[r.t[1:], 0] if size else r.t
    back_ok = np.arange(size) >= context
    back_t = np.r_[np.zeros(min(context, size), dtype=np.int64), r.t[:max(size - context, 0)]]
    slot_s = float(rubric.window.slot_factor * interval_s)
    outage_s = float(rubric.window.outage_factor * interval_s)
    tol = float(rubric.heartbeat.tolerance * interval_s)
    slot = np.floor((te - ws_e) / slot_s)
    with np.errstate(invalid="ignore"):
        new_slot = np.isnan(pv) | (np.floor((pv - ws_e) / slot_s) != slot)
        outage = dv & (te - pv > outage_s)
        hb_interval = dv & is_hb & ~np.isnan(phb)
        hb_regular = hb_interval & (np.abs(te - phb - float(interval_s)) <= tol)
    present = _present(kind, r)
    required = _required(r.version, m)
    battery = r.values["battery_pct"]
    has_battery = ~np.isnan(battery)
    x = te - ws_e

    run0 = r.part == 0
    d = np.where(run0, day, 0)

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(d[run0 & mask], minlength=nd)[:nd]

    def total(mask: np.ndarray, weights: np.ndarray) -> np.ndarray:
        sel = run0 & mask
        return np.bincount(d[sel], weights=weights[sel], minlength=nd)[:nd]

    def first_last(mask: np.ndarray, values: np.ndarray) -> tuple[dict[int, Any], dict[int, Any]]:
        return _first_last(d, run0 & mask, values)

    everything = np.ones(size, dtype=bool)
    readings, delivered, valid = count(everything), count(dv), count(ok)
    complete = count(dv & ((present & required) == required))
    carried = {name: count(dv & (present & (1 << bit) != 0))
               for bit, name in enumerate(declared.telemetry_measurements(kind))}
    suspect, fail = count(qb & (qc == 3)), count(qb & (qc == 4))
    per_test = {t: (count(qb & (flag[t] == 3)), count(qb & (flag[t] == 4)),
                    count(qb & ((flag[t] == 2) | (flag[t] == 9)))) for t in tests}
    duplicates = count(flag["ts__duplicate"] == 4)
    future, skewed = count(qb & (flag["ts__future"] == 4)), count(qb & (flag["ts__skew"] == 3))
    slots_hit = count(dv & new_slot)
    first_slot, last_slot = first_last(dv, slot)
    first_delivered, last_delivered = first_last(dv, r.t)
    first_ok, _ = first_last(ok, r.t)
    bat_n = count(ok & has_battery)
    bat_sx = total(ok & has_battery, x)
    bat_sy = total(ok & has_battery, battery)
    bat_sxy = total(ok & has_battery, x * np.where(has_battery, battery, 0))
    bat_sxx = total(ok & has_battery, x * x)
    fixes, hb_intervals, hb_regulars = count(ok & is_fix), count(hb_interval), count(hb_regular)
    first_hb, last_hb = first_last(dv & is_hb, te)
    lat, lat_through = _histograms(d[run0 & tm], _bucket(latency[run0 & tm]), nd)
    acc: list[Histogram] = [([], [])] * nd
    acc_through = acc
    if tracker:
        accuracy = r.values["accuracy_m"]
        chosen = run0 & ok & is_fix & ~np.isnan(accuracy)
        acc, acc_through = _histograms(d[chosen], _bucket(accuracy[chosen]), nd)
    short = count(~back_ok) > 0
    back_from, _ = first_last(back_ok, back_t)
    _, lead = first_last(is_last & has_next, next_t)
    needs_next = count(is_last & ((qc != qc_nolead) | (fmask & spike_bits != 0))) > 0
    _, tail = first_last(is_last & qb, np.arange(size))
    outages = np.flatnonzero(run0 & outage)
    incident = rubric.quality is not None
    failed = np.flatnonzero(run0 & dv & ~ok) if incident else np.zeros(0, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        ending = run0 & ok & ~np.isnan(pv) & (np.isnan(pok) | (pv > pok))
    ends = np.flatnonzero(ending) if incident else np.zeros(0, dtype=np.int64)

    found: list[dict[str, Any]] = []
    for k, (local, day_start, day_end) in enumerate(days):
        n = int(readings[k])
        qc_tests = {t: [int(s[k]), int(f[k]), int(ne[k])] for t, (s, f, ne) in per_test.items() if s[k] + f[k] + ne[k]}
        row_tail = None
        if spikes and k in tail:
            i = int(tail[k])
            row_tail = {t: int(flag[t][i]) for t in spikes if flag[t][i] in (1, 3, 4)}
        day_out = outages[d[outages] == k]
        day_fail, day_end_rows = failed[d[failed] == k], ends[d[ends] == k]
        lat_k, acc_k = lat[k] if lat[k][0] else (None, None), acc[k] if acc[k][0] else (None, None)
        found.append({
            "device_id": w.device.id, "day_start": day_start, "day": local, "day_end": day_end, "anchor": w.start,
            "interval_s": interval_s,
            "span_from": max(day_start, w.start) if n == 0 else w.start if short[k] else _moment(back_from[k]),
            "span_to": day_end if n == 0 else _moment(lead[k]) if k in lead else no_end,
            "readings": n, "delivered": int(delivered[k]), "valid": int(valid[k]), "suspect": int(suspect[k]),
            "fail": int(fail[k]), "qc_tests": qc_tests, "tail_spike": row_tail, "duplicates": int(duplicates[k]),
            "future": int(future[k]), "skewed": int(skewed[k]), "slots_hit": int(slots_hit[k]),
            "first_slot": int(first_slot[k]) if k in first_slot else None,
            "last_slot": int(last_slot[k]) if k in last_slot else None,
            "first_delivered": _moment(first_delivered[k]) if k in first_delivered else None,
            "last_delivered": _moment(last_delivered[k]) if k in last_delivered else None,
            "first_ok": _moment(first_ok[k]) if k in first_ok else None,
            "outage_list": [[float(pv[i]), float(te[i])] for i in day_out] or None,
            "fail_runs": _fail_runs(pok[day_fail], te[day_fail], fmask[day_fail], pok[day_end_rows],
                                    te[day_end_rows], tests),
            "bat_n": float(bat_n[k]), "bat_sx": float(bat_sx[k]), "bat_sy": float(bat_sy[k]),
            "bat_sxy": float(bat_sxy[k]), "bat_sxx": float(bat_sxx[k]),
            "fixes": int(fixes[k]) if tracker else None,
            "hb_intervals": int(hb_intervals[k]) if switch else None,
            "hb_regular": int(hb_regulars[k]) if switch else None,
            "first_hb": float(first_hb[k]) if k in first_hb else None,
            "last_hb": float(last_hb[k]) if k in last_hb else None,
            "lat_buckets": lat_k[0], "lat_counts": lat_k[1], "acc_buckets": acc_k[0], "acc_counts": acc_k[1],
            "lead_time": _moment(lead[k]) if k in lead else None, "tail_needs_next": bool(needs_next[k]),
            "complete": int(complete[k]),
            "carried": {name: int(c[k]) for name, c in carried.items()} if n else None,
            # the running histograms since the run's first day: stored as `cum_*` when it is the window's
            "cum_days": k + 1, "cum_lat_buckets": lat_through[k][0], "cum_lat_counts": lat_through[k][1],
            "cum_acc_buckets": acc_through[k][0], "cum_acc_counts": acc_through[k][1],
        })
    return found
