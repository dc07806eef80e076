"""Exact latency percentiles for signed records, from the raw rows at issue time.

Scores and dashboards read latency p50 / p95 off the day summaries' histograms (scoring.histogram:
within 1 %). A reference record carries the exact figures by their definition (scoring.metrics):
percentile_cont(0.5) and (0.95) of ingest_time - device_time over the device's *timed* readings
in its window. Under rubric v2 a reading is timed when it was delivered (not a repeat of the
previous device time: the first seq at each device time) and its device time is not in the future
(latency >= -timestamps.future_tolerance_s), which needs no QC flag, so one statement per pilot
reads each device's rows through the (device_id, device_time) index and sorts them per device
(memory bounded by one device's window, however large the pilot). Under v1 timed meant valid,
which needs every QC flag: the raw pass (scoring.metrics.raw_device_metrics) gives them.
"""

from __future__ import annotations

import psycopg

from scoring.delivery import arrived
from scoring.metrics import raw_device_metrics
from scoring.rubric import Rubric
from scoring.window import DeviceWindow

Percentiles = tuple[float | None, float | None]  # p50, p95 in seconds; None without timed readings

_EXACT_SQL = """
SELECT w.device_id, l.p[1], l.p[2]
FROM unnest(%(ids)s::text[], %(starts)s::timestamptz[], %(ends)s::timestamptz[]) AS w(device_id, ws, we)
CROSS JOIN LATERAL (
    SELECT percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY r.latency_s) AS p
    FROM (SELECT DISTINCT ON (t.device_time)
                 date_part('epoch', t.ingest_time - t.device_time) AS latency_s
          FROM telemetry t
          WHERE t.device_id = w.device_id AND t.channel = 'telemetry' AND t.device_time >= w.ws AND t.device_time < w.we
          ORDER BY t.device_time, t.seq) r
    WHERE r.latency_s >= %(tolerance)s
) l
"""


def exact_latencies(conn: psycopg.Connection, rubric: Rubric, windows: list[DeviceWindow]) -> dict[str, Percentiles]:
    """Per device of `windows`, its exact latency p50 and p95."""
    if not windows:
        return {}
    if not arrived(rubric):
        return {m.device_id: (m.latency_p50_s, m.latency_p95_s) for m in raw_device_metrics(conn, rubric, windows, {})}
    params = {"ids": [w.device.id for w in windows], "starts": [w.start for w in windows],
              "ends": [w.end for w in windows], "tolerance": -float(rubric.timestamps.future_tolerance_s)}
    with conn.transaction():
        conn.execute("SET LOCAL work_mem = '64MB'")
        rows = conn.execute(_EXACT_SQL, params).fetchall()
    return {device_id: (p50, p95) for device_id, p50, p95 in rows}
