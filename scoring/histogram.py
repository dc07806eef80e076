"""Log-spaced fixed-bucket histograms: mergeable percentiles for latency and tracker accuracy.

An exact percentile over a window is not mergeable from daily parts, and percentile_cont over
26 M readings is what made scoring slow; so the daily summaries (scoring.daily) keep, per device
and day, how many valid readings fell in each bucket, and the percentile is read off the merged
counts.

Bucket of a value v (the same expression in SQL and in Python):

    0                                        if |v| < FLOOR (1 ms, or 1 mm for accuracy)
    sign(v) * (1 + floor(ln(|v| / FLOOR) / ln(BASE)))   otherwise, BASE = 1.02

Bucket k > 0 covers [FLOOR * BASE^(k-1), FLOOR * BASE^k); its representative is the geometric
midpoint FLOOR * BASE^(k-1) * sqrt(BASE), so any value in it is within sqrt(1.02) - 1 = 0.995 %
of the representative: a percentile read from the histogram (with percentile_cont's linear
interpolation between ranks) is within **1 % relative error**, or 1 ms absolute below 1 ms, of the
exact one. Buckets are small integers (|k| <= 1,500 up to 10^10 FLOOR), so a day's histogram is
two short arrays.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from psycopg import sql

BASE = 1.02
FLOOR = 1e-3
RELATIVE_ERROR = math.sqrt(BASE) - 1  # 0.00995


def bucket_sql(value: sql.Composable) -> sql.Composable:
    """SQL bucket number (int) of a float8 expression; NULL stays NULL."""
    return sql.SQL(
        "(CASE WHEN abs({v}) < {floor} THEN 0 "
        "ELSE sign({v})::int * (1 + floor(ln(abs({v}) / {floor}) / ln({base}))::int) END)").format(
        v=value, floor=sql.Literal(FLOOR), base=sql.Literal(BASE))


def representative(bucket: int) -> float:
    if bucket == 0:
        return 0.0
    k = abs(bucket)
    value = FLOOR * BASE ** (k - 1) * math.sqrt(BASE)
    return value if bucket > 0 else -value


def merge(into: dict[int, int], buckets: Iterable[int] | None, counts: Iterable[int] | None) -> None:
    if buckets is None or counts is None:
        return
    for b, c in zip(buckets, counts, strict=True):
        into[b] = into.get(b, 0) + c


def percentile(hist: dict[int, int], q: float) -> float | None:
    """percentile_cont(q) read off the histogram: the values at ranks floor/ceil of (N - 1) q,
    each its bucket's representative, linearly interpolated."""
    total = sum(hist.values())
    if total == 0:
        return None
    pos = (total - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    ordered = sorted(hist.items())
    value_lo = value_hi = None
    seen = 0
    for bucket, count in ordered:
        if value_lo is None and lo < seen + count:
            value_lo = representative(bucket)
        if hi < seen + count:
            value_hi = representative(bucket)
            break
        seen += count
    assert value_lo is not None and value_hi is not None
    return value_lo + (value_hi - value_lo) * (pos - lo)
