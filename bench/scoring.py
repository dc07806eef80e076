"""Benchmark: score a pilot of 1,000 devices x 90 days at a 5-minute interval (~26 M readings).

Creates a throwaway database on the given server (an admin URL), migrates it, registers one
pilot with equal numbers of environment sensors, trackers and switches, generates their telemetry
in SQL with generate_series (one INSERT ... SELECT per kind, run in parallel, into an UNLOGGED
telemetry table with its indexes built after the load, as a restore would: the database is
thrown away, and reads do not depend on it), ANALYZEs, then times and prints:

(a) the cold build: every day's summaries (scoring.daily, scoring.summaries) built at once, as the
    first score of a pilot (or of a new rubric) does (target <= 45 s); then keeping them current: one
    more day as the daily rescoring adds it (the last day's summaries deleted and rebuilt), and late
    readings of 100 devices stored into one past day (those days found and rebuilt);
(b) the warm score: `scoring.scorer.score_pilot` from the summaries (every per-device metric, fleet
    verdict, daily counts and the evidence digest);
(c) with `--raw`, the same score from one pass over the raw readings (the previous design).

`--compare-ioos N` also times fetching N devices' readings with psycopg and running ioos_qc.qartod's
four tests in Python, extrapolated to the whole fleet.

    .venv/bin/python -m bench.scoring --database-url postgresql://postgres@127.0.0.1:5432/postgres
        [--devices 1000] [--days 90] [--interval 300] [--raw] [--compare-ioos 30] [--keep]
"""

from __future__ import annotations

import argparse
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

from scoring import daily
from scoring.rubric import load_rubric
from scoring.scorer import score_pilot
from scoring.window import load_pilot, pilot_window
from store.migrate import migrate

START = datetime(2024, 1, 1, tzinfo=UTC)

# One INSERT per kind; $-free SQL over generate_series(device) x generate_series(reading).
_VALUES = {
    "env_sensor": ("temperature_c, humidity_pct, pm25_ugm3, battery_pct",
                   "18 + 6 * sin(i / 288.0 * 2 * pi()) + (random() - 0.5) * 0.2, "
                   "55 + 15 * sin(i / 288.0 * 2 * pi() + 1) + (random() - 0.5), 12 + random() * 4, "
                   "100 - i * 0.0005"),
    "location_tracker": ("fix_type, lat, lon, accuracy_m, speed_mps, battery_pct",
                         "CASE WHEN random() < 0.05 THEN 'none' ELSE '3d' END, 37.5 + random() * 0.01, "
                         "127.0 + random() * 0.01, 3 + random() * 10, random() * 2, 100 - i * 0.001"),
    "smart_switch": ("relay_on, power_w, energy_wh, trigger",
                     "true, 40 + random() * 5, i * 3.5, 'heartbeat'"),
}


def _database(admin_url: str, name: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(admin_url)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo(**info)  # type: ignore[arg-type]


def generate(url: str, devices: int, days: int, interval: int) -> int:
    readings = days * 86400 // interval
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO firm (id, name) VALUES ('bench', 'Bench')")
        conn.execute("INSERT INTO pilot (id, firm_id, name, site, starts_at, ends_at, status) VALUES "
                     "('bench', 'bench', 'Bench', 'Bench', %s, %s, 'completed')", (START, START + timedelta(days=days)))
        kinds = list(_VALUES)
        for k, kind in enumerate(kinds):
            conn.execute("INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, commissioned_at, "
                         "claimed_battery_days) SELECT 'd' || lpad(d::text, 5, '0'), 'bench', %s, 'wifi', %s, %s, 180 "
                         "FROM generate_series(%s, %s - 1, %s) d",
                         (kind, interval, START - timedelta(days=7), k, devices, len(kinds)))
        conn.execute("ALTER TABLE telemetry DROP CONSTRAINT telemetry_pkey")
        conn.execute("DROP INDEX telemetry_device_time_idx")
        conn.execute("DROP INDEX telemetry_stored_at_brin")
        conn.execute("ALTER TABLE telemetry SET UNLOGGED")
    queries = [sql.SQL(
        "INSERT INTO telemetry (device_id, seq, device_time, ingest_time, channel, size_bytes, {columns}) "
        "SELECT d.id, i, {start}::timestamptz + i * {step}, {start}::timestamptz + i * {step} + interval '1.5 s' "
        "  + random() * interval '3 s', 'telemetry', 90, {values} "
        "FROM device d CROSS JOIN generate_series(0, {n} - 1) AS i WHERE d.pilot_id = 'bench' AND d.kind = {kind}"
    ).format(columns=sql.SQL(columns), values=sql.SQL(values), start=sql.Literal(START),
             step=sql.Literal(timedelta(seconds=interval)), n=sql.Literal(readings), kind=sql.Literal(kind))
        for kind, (columns, values) in _VALUES.items()]

    def run(statement: sql.Composable) -> None:
        with psycopg.connect(url, autocommit=True) as own:
            own.execute(statement)

    with ThreadPoolExecutor(len(queries)) as pool:  # one connection per kind: the server's cores in parallel
        list(pool.map(run, queries))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE telemetry ADD PRIMARY KEY (device_id, seq, device_time)")
        conn.execute("CREATE INDEX telemetry_device_time_idx ON telemetry (device_id, device_time DESC)")
        conn.execute("CREATE INDEX telemetry_stored_at_brin ON telemetry USING brin (stored_at)")
        conn.execute("VACUUM ANALYZE telemetry")
        row = conn.execute("SELECT count(*) FROM telemetry").fetchone()
    return int(row[0]) if row else 0


def build_summaries(url: str, days: int) -> tuple[float, int, float, float, int]:
    """Seconds to build every day's summaries, device-days built, seconds to rebuild the last day,
    and seconds to find and rebuild the days late readings fell into, with their count."""
    rubric = load_rubric().rubric
    with psycopg.connect(url, autocommit=True) as conn:
        pilot = load_pilot(conn, "bench")
        window = pilot_window(conn, pilot, rubric, START + timedelta(days=days))
        now = datetime.now(UTC)
        started = time.perf_counter()
        built = daily.refresh(conn, rubric, pilot.timezone, window.scored, now)
        all_s = time.perf_counter() - started
        conn.execute("DELETE FROM scoring_day WHERE day = %s", ((START + timedelta(days=days - 1)).date(),))
        started = time.perf_counter()
        daily.refresh(conn, rubric, pilot.timezone, window.scored, now)
        one_s = time.perf_counter() - started
        late_day = START + timedelta(days=days // 2, seconds=150)  # between two readings
        conn.execute("INSERT INTO telemetry (device_id, seq, device_time, ingest_time, channel, size_bytes, battery_pct) "
                     "SELECT id, 1000000000, %s, now(), 'telemetry', 90, 50 FROM device "
                     "WHERE kind = 'env_sensor' ORDER BY id LIMIT 100", (late_day,))
        started = time.perf_counter()
        late = daily.refresh(conn, rubric, pilot.timezone, window.scored, datetime.now(UTC))
        late_s = time.perf_counter() - started
    return all_s, built, one_s, late_s, late


def compare_ioos(url: str, sample: int, devices: int) -> tuple[float, float]:
    """Seconds to fetch `sample` env sensors' readings and run ioos_qc on them, and the fleet extrapolation."""
    import numpy as np
    from ioos_qc import qartod

    rubric = load_rubric().rubric
    qc = rubric.qc["env_sensor"]  # type: ignore[index]
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM device WHERE kind = 'env_sensor' ORDER BY id LIMIT %s", (sample,))]
        for device_id in ids:
            rows = conn.execute("SELECT extract(epoch FROM device_time), temperature_c, humidity_pct FROM telemetry "
                                "WHERE device_id = %s ORDER BY device_time, seq", (device_id,)).fetchall()
            data = np.array(rows, dtype=float)
            tinp = data[:, 0].astype("datetime64[s]")
            for col, metric in ((1, "temperature_c"), (2, "humidity_pct")):
                m = qc[metric]
                x = data[:, col]
                assert m.spike and m.rate_of_change and m.flat_line
                qartod.gross_range_test(x, m.sensor_span, m.user_span)
                qartod.spike_test(x, m.spike.suspect, m.spike.fail)
                qartod.rate_of_change_test(x, tinp, m.rate_of_change.suspect_per_s)
                qartod.flat_line_test(x, tinp, int(m.flat_line.suspect_s), int(m.flat_line.fail_s), m.flat_line.tolerance)
    elapsed = time.perf_counter() - started
    return elapsed, elapsed / len(ids) * devices


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database-url", required=True, help="admin URL of the server to create a throwaway database on")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--interval", type=int, default=300)
    parser.add_argument("--raw", action="store_true", help="also score from raw rows (the old design: minutes)")
    parser.add_argument("--compare-ioos", type=int, default=0, metavar="N", help="also time ioos_qc in Python on N devices")
    parser.add_argument("--keep", action="store_true", help="keep the database (prints its URL)")
    args = parser.parse_args()

    name = f"pilotlab_bench_scoring_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _database(args.database_url, name)
    try:
        migrate(url)
        started = time.perf_counter()
        rows = generate(url, args.devices, args.days, args.interval)
        print(f"generated {rows:,} readings of {args.devices} devices x {args.days} days at {args.interval} s "
              f"in {time.perf_counter() - started:.0f} s")
        all_s, built, one_s, late_s, late = build_summaries(url, args.days)
        print(f"(a) cold build: summaries of {built:,} device-days in {all_s:.1f} s (target <= 45 s for 1,000 devices "
              f"x 90 days); kept current: one more day as the daily rescoring adds it {one_s:.2f} s, late readings "
              f"of 100 devices in one past day found and {late} device-days rebuilt in {late_s:.2f} s")
        rubric = load_rubric()
        runs = [("(b) warm score, from summaries", False)] + ([("(c) from raw rows", True)] if args.raw else [])
        for label, raw in runs:
            with psycopg.connect(url, autocommit=True) as conn:
                started = time.perf_counter()
                result = score_pilot(conn, "bench", rubric, as_of=START + timedelta(days=args.days), raw=raw)
                elapsed = time.perf_counter() - started
            f = result.fleet
            print(f"{label}: scored {f.fleet['scored']} devices ({rows:,} readings) in {elapsed:.2f} s: "
                  f"score {f.score:.2f}, verdict {f.verdict}, availability {f.pooled['availability']:.4f}, "
                  f"qc fail share {f.pooled['qc_fail_share']:.5f}, "
                  f"latency p95 median {f.pooled['latency_p95_median_s']:.3f} s")
        if args.compare_ioos:
            sample_s, fleet_s = compare_ioos(url, args.compare_ioos, args.devices)
            print(f"ioos_qc in Python: {args.compare_ioos} devices fetched and tested in {sample_s:.2f} s, "
                  f"~{fleet_s:.0f} s for {args.devices} devices (QC alone, before any other metric)")
    finally:
        if args.keep:
            print(f"kept {url}")
        else:
            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
