"""QARTOD quality flags per reading, as SQL expressions over the device's ordered readings.

The tests and their flag values are those of IOOS QARTOD as implemented by `ioos_qc.qartod`
(1 pass, 2 not evaluated, 3 suspect, 4 fail, 9 missing), with parameters per device kind and
metric from the rubric (`qc:`), on the metrics a device's profile declares (scoring.declared; a
metric it does not declare is not evaluated: no flag, nothing in the QC shares):

- gross range   x outside sensor_span -> 4; outside user_span -> 3          (qartod.gross_range_test)
- spike         |x[n] - (x[n-1] + x[n+1]) / 2| > fail -> 4, > suspect -> 3;
                first and last reading, or a missing neighbour -> 2         (qartod.spike_test, "average")
- rate of change |x[n] - x[n-1]| / whole seconds between them > suspect_per_s -> 3   (qartod.rate_of_change_test)
- flat line     each of the last N steps |x[k] - x[k-1]| < tolerance, N = floor(threshold_s / interval_s):
                fail_s -> 4, suspect_s -> 3                                (qartod.flat_line_test, see below)

and timestamp sanity from pilotlab: a device time later than the ingest time plus
`timestamps.future_tolerance_s` fails (4); a device time equal to the previous reading's
(a duplicate message under another seq) fails (4); |ingest - device time| above
`timestamps.max_skew_s` is suspect (3).

A reading's flag is the worst of its tests (QARTOD's aggregate precedence: fail > suspect > pass;
"not evaluated" and "missing" do not count against it). What a failed reading still counts for
(delivery under rubric v2, nothing but QC under v1) is scoring.delivery's business.

Why SQL and not `ioos_qc` itself: ioos_qc works on numpy arrays in Python, so every reading would
first have to leave the database. Measured once on this machine (bench/scoring.py, 1,000 devices x
90 days x 5 min = 25.9 M readings, PostgreSQL 15, 2 cores shared with other jobs): the whole
in-database scoring took 405 s; fetching 20 sensors' readings with psycopg and running ioos_qc's
four tests on two metrics took 3.9 s, ~194 s extrapolated to 1,000 devices for QC alone. So the
measurement does NOT show SQL to be faster: at this size both miss the 10 s target, and the fix is
to QC each reading once, in daily rollups, rather than at every scoring: scoring.daily runs these
same expressions once per closed day (with the readings before midnight as context).
The expressions here are checked reading by reading against ioos_qc.qartod in
tests/scoring/test_quality_flags.py, so ioos_qc stays the reference they are held to.

One measured deviation: QARTOD's flat line takes the range (max - min) of the last N+1 values,
a sliding max/min that PostgreSQL recomputes per row (O(N) each: 72 values per row at a 5-minute
interval and a 6-hour threshold). We flag when each of the last N *steps* is below tolerance,
an O(1) running count. For a stuck sensor (the case the test exists for) both agree exactly; they
differ only for a slow drift made of many sub-tolerance steps, which we do not flag.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from psycopg import sql

from scoring.rubric import MetricQc, Rubric

PASS, NOT_EVALUATED, SUSPECT, FAIL, MISSING = 1, 2, 3, 4, 9


@dataclass(frozen=True)
class QcColumns:
    """SQL fragments for the successive query levels (see scoring.metrics)."""

    window_level: list[sql.Composable]   # level 1: lag/lead per metric (window `s`)
    run_level: list[sql.Composable]      # level 2: last "moved" row per metric (window `s2`)
    flag_level: list[sql.Composable]     # level 3: one flag column per test
    flag_names: list[str]


def _lit(value: float) -> sql.Composable:
    return sql.Literal(float(value))


TIMESTAMP_TESTS = ("ts__future", "ts__duplicate", "ts__skew")


def _metric_tests(metric: str, qc: MetricQc) -> list[str]:
    present = [("gross", True), ("spike", qc.spike is not None), ("roc", qc.rate_of_change is not None),
               ("flat", qc.flat_line is not None)]
    return [f"{metric}__{name}" for name, on in present if on]


def _tested(rubric: Rubric, kind: str, tested: Collection[str] | None) -> list[tuple[str, MetricQc]]:
    metrics: dict[str, MetricQc] = {str(k): v for k, v in rubric.qc.items()}.get(kind, {})  # type: ignore[assignment]
    return [(m, qc) for m, qc in sorted(metrics.items()) if tested is None or m in tested]


def qc_test_names(rubric: Rubric, kind: str, tested: Collection[str] | None = None) -> list[str]:
    """The flag columns qc_columns makes, in its order: each tested metric's tests, then timestamps."""
    return [name for metric, qc in _tested(rubric, kind, tested) for name in _metric_tests(metric, qc)] + list(
        TIMESTAMP_TESTS)


def qc_columns(rubric: Rubric, kind: str, interval_s: int, tested: Collection[str] | None = None) -> QcColumns:
    """The per-test flag columns of a device kind, for devices declaring `interval_s`, over the
    rubric's metrics of the kind (only those in `tested`, if given)."""
    window_level: list[sql.Composable] = []
    run_level: list[sql.Composable] = []
    flag_level: list[sql.Composable] = []
    names: list[str] = []
    for metric, qc in _tested(rubric, kind, tested):
        x = sql.Identifier(metric)
        prev, nxt, moved = (sql.Identifier(f"{metric}__{s}") for s in ("prev", "next", "moved"))
        window_level += [sql.SQL("lag({x}) OVER s AS {p}").format(x=x, p=prev),
                         sql.SQL("lead({x}) OVER s AS {n}").format(x=x, n=nxt)]

        lo, hi = qc.sensor_span
        ulo, uhi = qc.user_span
        names.append(f"{metric}__gross")
        flag_level.append(sql.SQL(
            "CASE WHEN {x} IS NULL THEN 9 WHEN {x} < {lo} OR {x} > {hi} THEN 4 "
            "WHEN {x} < {ulo} OR {x} > {uhi} THEN 3 ELSE 1 END AS {name}").format(
            x=x, lo=_lit(lo), hi=_lit(hi), ulo=_lit(ulo), uhi=_lit(uhi), name=sql.Identifier(names[-1])))

        if qc.spike is not None:
            names.append(f"{metric}__spike")
            flag_level.append(sql.SQL(
                "CASE WHEN {x} IS NULL THEN 9 WHEN {p} IS NULL OR {n} IS NULL THEN 2 "
                "WHEN abs({x} - ({p} + {n}) / 2) > {fail} THEN 4 "
                "WHEN abs({x} - ({p} + {n}) / 2) > {suspect} THEN 3 ELSE 1 END AS {name}").format(
                x=x, p=prev, n=nxt, fail=_lit(qc.spike.fail), suspect=_lit(qc.spike.suspect),
                name=sql.Identifier(names[-1])))

        if qc.rate_of_change is not None:
            names.append(f"{metric}__roc")
            flag_level.append(sql.SQL(
                "CASE WHEN {x} IS NULL THEN 9 WHEN {p} IS NULL THEN 1 "
                "WHEN dt_s = 0 THEN CASE WHEN {x} <> {p} THEN 3 ELSE 1 END "
                "WHEN abs({x} - {p}) / dt_s > {thr} THEN 3 ELSE 1 END AS {name}").format(
                x=x, p=prev, thr=_lit(qc.rate_of_change.suspect_per_s), name=sql.Identifier(names[-1])))

        if qc.flat_line is not None:
            fl = qc.flat_line
            run_level.append(sql.SQL(
                "max(CASE WHEN {x} IS NULL OR {p} IS NULL OR abs({x} - {p}) >= {tol} THEN n END) "
                "OVER (s2 ROWS UNBOUNDED PRECEDING) AS {m}").format(x=x, p=prev, tol=_lit(fl.tolerance), m=moved))
            n_suspect = int(fl.suspect_s // interval_s)
            n_fail = int(fl.fail_s // interval_s)
            names.append(f"{metric}__flat")
            flag_level.append(sql.SQL(
                "CASE WHEN {x} IS NULL THEN 9 WHEN n - {m} >= {nf} THEN 4 WHEN n - {m} >= {ns} THEN 3 "
                "ELSE 1 END AS {name}").format(
                x=x, m=moved, nf=sql.Literal(max(n_fail, 1)), ns=sql.Literal(max(n_suspect, 1)),
                name=sql.Identifier(names[-1])))

    ts = rubric.timestamps
    names += TIMESTAMP_TESTS
    flag_level += [
        sql.SQL("CASE WHEN latency_s < {tol} THEN 4 ELSE 1 END AS ts__future").format(tol=_lit(-ts.future_tolerance_s)),
        sql.SQL("CASE WHEN prev_time = device_time THEN 4 ELSE 1 END AS ts__duplicate"),
        sql.SQL("CASE WHEN abs(latency_s) > {skew} THEN 3 ELSE 1 END AS ts__skew").format(skew=_lit(ts.max_skew_s)),
    ]
    assert names == qc_test_names(rubric, kind, tested)
    return QcColumns(window_level, run_level, flag_level, names)


def reading_flag_sql(names: list[str]) -> sql.Composable:
    """The reading's aggregate flag: 4 if any test failed, 3 if any was suspect, else 1."""
    parts = [sql.SQL("CASE WHEN {c} IN (3, 4) THEN {c} ELSE 1 END").format(c=sql.Identifier(n)) for n in names]
    return sql.SQL("GREATEST({})").format(sql.SQL(", ").join(parts))
