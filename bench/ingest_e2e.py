"""Benchmark: end-to-end ingest at QoS 1 with 1, 2 … N workers, beside the ceiling and a naive
baseline measured in the same run; latency at half rate; worker memory at full rate and while
the database stalls; API latency at a fixed request rate.

Everything runs on this machine: a private Mosquitto with pilotlab's tuned config, fed by the C
client `mosquitto_pub -l` (one process per device topic, so the feed is never the limit), and a
throwaway PostgreSQL database (the server given with --database-url, else embedded pgserver).

- ceiling: a bare paho-mqtt 2.x subscriber (one member of a shared subscription) that only counts;
- naive: a paho callback doing one INSERT and one commit per message (both in bench/subscribers.py,
  each in its own process like an ingest worker);
- ingest ×W: W `pilotlab ingest` processes on one shared subscription; rate = messages /
  (last stored_at − first ingest_time), and published = stored, no duplicates, checked;
- latency: a paced paho publisher at half the one-worker rate; publish→committed is
  stored_at − device ts (the payload carries the publish time);
- memory: peak RSS of a worker after the full-rate run, and its RSS while the telemetry table is
  locked (a database stall) with a backlog waiting at the broker;
- API: p50/p99 of /health, a telemetry read and a score read (when the scoring API exists) at a
  fixed rate.

    .venv/bin/python -m bench.ingest_e2e --messages 50000 --workers 1,2,3 --json bench-results.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import psycopg

from access.api_keys import create_demo_key
from bench.harness import (
    BENCH_PILOT,
    Stack,
    WorkerProcess,
    backlog_messages,
    bench_database,
    bench_stack,
    cpu_seconds,
    feed,
    new_share_group,
    percentile,
    print_table,
    wait_stored,
)
from devices.contract import topic_for
from pilotlab.embedded.ports import free_port, wait_until_listening
from pilotlab.settings import MqttEndpoint
from scoring.rubric import load_rubric
from scoring.scorer import save_history, score_pilot
from simulators.device import SimulatedDevice


def measure_reference(stack: Stack, mode: str, messages: Sequence[tuple[str, bytes]],
                      database_url: str | None = None, topic_filter: str | None = None) -> dict[str, float]:
    """msg/s of bench.subscribers' bare or naive subscriber, in its own process, on a live feed."""
    command = [sys.executable, "-m", "bench.subscribers", mode, "--mqtt-url", stack.broker.url,
               "--count", str(len(messages)), "--group", mode]
    if database_url:
        command += ["--database-url", database_url]
    if topic_filter:
        command += ["--filter", topic_filter]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "subscribed":
        raise SystemExit(f"{mode} subscriber did not start")
    feed(stack.endpoint, messages)
    result = json.loads(proc.stdout.readline())
    proc.wait(30)
    if result["seconds"] is None:
        raise SystemExit(f"{mode} subscriber got {result['count']} of {len(messages)}")
    return {"msg_s": len(messages) / result["seconds"], "cpu_us_per_msg": result["cpu_us_per_msg"]}


def measure_ingest(stack: Stack, workers: int, total_messages: int, devices: int) -> dict[str, float]:
    with bench_database(stack.admin_url, devices) as (url, fleet):
        return drive_workers(stack, url, backlog_messages(fleet, total_messages), workers, f"ingest{workers}")


def drive_workers(stack: Stack, url: str, messages: Sequence[tuple[str, bytes]], workers: int, group: str,
                  extra_env: dict[str, str] | None = None) -> dict[str, float]:
    """Start `workers` ingest processes on one shared subscription, feed `messages`, wait until all
    are stored; rate = messages / (last stored_at - first ingest_time)."""
    group = new_share_group(group)
    procs = [WorkerProcess(url, stack.broker.url, f"w{i}", stack.workdir, group, extra_env=extra_env)
             for i in range(workers)]
    try:
        for proc in procs:
            proc.wait_consuming()
        cpu_before = sum(cpu_seconds(proc.process.pid) for proc in procs)
        feed(stack.endpoint, messages)
        wait_stored(url, len(messages), workers=procs)
        cpu_used = sum(cpu_seconds(proc.process.pid) for proc in procs) - cpu_before
        peak_rss = max(proc.memory_mb()[1] for proc in procs)
    finally:
        for proc in procs:
            proc.stop()
    received = [proc.received() for proc in procs]
    with psycopg.connect(url) as conn:
        span, stored, distinct, dead = conn.execute(
            "SELECT extract(epoch FROM max(stored_at) - min(ingest_time)), count(*), "
            "count(DISTINCT (device_id, seq)), (SELECT count(*) FROM dead_letter) FROM telemetry").fetchone()
    return {"msg_s": len(messages) / float(span), "cpu_us_per_msg": 1e6 * cpu_used / len(messages),
            "published": len(messages), "stored": stored,
            "duplicates": stored - distinct, "dead_letters": dead, "peak_rss_mb": peak_rss,
            "received_per_worker": received}


def measure_latency(stack: Stack, rate: float, seconds: float, devices: int) -> dict[str, float]:
    """Publish at `rate` msg/s for `seconds`, each payload stamped with its publish time."""
    with bench_database(stack.admin_url, devices) as (url, fleet):
        worker = WorkerProcess(url, stack.broker.url, "lat", stack.workdir, new_share_group("latency"))
        try:
            worker.wait_consuming()
            sent = _paced_publish(stack.endpoint, fleet, rate, seconds)
            wait_stored(url, sent, workers=[worker])
        finally:
            worker.stop()
        with psycopg.connect(url) as conn:
            p50, p99, mx = conn.execute(
                "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lat), "
                "percentile_cont(0.99) WITHIN GROUP (ORDER BY lat), max(lat) FROM "
                "(SELECT extract(epoch FROM stored_at - device_time) * 1000 AS lat FROM telemetry) t").fetchone()
    return {"rate": rate, "sent": sent, "p50_ms": float(p50), "p99_ms": float(p99), "max_ms": float(mx)}


def _paced_publish(endpoint: MqttEndpoint, fleet: Sequence[SimulatedDevice], rate: float, seconds: float) -> int:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    client.connect(endpoint.host, endpoint.port)
    client.loop_start()
    topics = [topic_for(BENCH_PILOT, d.id, "telemetry") for d in fleet]
    switches = [i for i, d in enumerate(fleet) if d.kind.value == "smart_switch"]
    total = int(rate * seconds)
    started = time.perf_counter()
    infos = []
    for n in range(total):
        due = started + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        device = switches[n % len(switches)]
        payload = orjson.dumps({"ts": int(time.time() * 1000), "seq": n // len(switches), "relay_on": True,
                                "power_w": 10.0, "energy_wh": float(n), "trigger": "heartbeat"})
        infos.append(client.publish(topics[device], payload, qos=1))
    for info in infos:
        info.wait_for_publish(30)
    client.disconnect()
    client.loop_stop()
    return total


def measure_stall_memory(stack: Stack, total_messages: int, devices: int, hold_s: float) -> dict[str, float]:
    """Lock `telemetry` so every commit waits, feed a backlog, sample the worker's RSS."""
    with bench_database(stack.admin_url, devices) as (url, fleet):
        messages = backlog_messages(fleet, total_messages, seed=5)
        worker = WorkerProcess(url, stack.broker.url, "stall", stack.workdir, new_share_group("stall"))
        try:
            worker.wait_consuming()
            locker = psycopg.connect(url)
            locker.execute("LOCK TABLE telemetry IN ACCESS EXCLUSIVE MODE")
            feeder = threading.Thread(target=feed, args=(stack.endpoint, messages))
            feeder.start()
            samples = []
            deadline = time.monotonic() + hold_s
            while time.monotonic() < deadline:
                samples.append(worker.memory_mb()[0])
                time.sleep(0.2)
            feeder.join()
            locker.rollback()
            locker.close()
            wait_stored(url, len(messages), workers=[worker])
            rss_after = worker.memory_mb()
        finally:
            worker.stop()
    return {"stall_s": hold_s, "backlog": len(messages), "rss_max_during_stall_mb": max(samples),
            "rss_start_mb": samples[0], "peak_rss_mb": rss_after[1]}


def measure_api(stack: Stack, devices: int, rate: float, seconds: float) -> dict[str, dict[str, float]]:
    import httpx

    with bench_database(stack.admin_url, devices) as (url, fleet):
        messages = backlog_messages(fleet, 30 * devices)
        worker = WorkerProcess(url, stack.broker.url, "api", stack.workdir, new_share_group("api"))
        worker.wait_consuming()
        feed(stack.endpoint, messages)
        wait_stored(url, len(messages), workers=[worker])
        worker.stop()
        token = create_demo_key(url)  # an admin API key (issue 6: every route but /health needs one)
        with psycopg.connect(url) as conn:  # what the daily rescoring stores, for the score read
            save_history(conn, score_pilot(conn, BENCH_PILOT, load_rubric()))
            conn.commit()
        port = free_port()
        env = dict(os.environ, PILOTLAB_DATABASE_URL=url, PILOTLAB_API_PORT=str(port))
        log = (stack.workdir / "api.log").open("ab")
        api = subprocess.Popen([sys.executable, "-m", "pilotlab", "api"], env=env, stdout=log, stderr=log)
        try:
            wait_until_listening(port, what="pilotlab api", process=api, timeout=30)  # type: ignore[arg-type]
            base = f"http://127.0.0.1:{port}"
            endpoints = {
                "health": "/health",
                "score read (latest stored)": f"/pilots/{BENCH_PILOT}/score/history?limit=1",
                "telemetry (100 rows)": f"/devices/{fleet[0].id}/telemetry?limit=100&from=2000-01-01T00:00:00Z",
                "device health": f"/devices/{fleet[0].id}/health",
            }
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=base, headers=headers) as probe:
                for path in endpoints.values():
                    response = probe.get(path)
                    if response.status_code != 200:
                        raise SystemExit(f"GET {path}: {response.status_code} {response.text[:200]}")
            return {name: _fixed_rate(base, path, rate, seconds, headers) for name, path in endpoints.items()}
        finally:
            api.terminate()
            api.wait(15)


def _fixed_rate(base: str, path: str, rate: float, seconds: float, headers: dict[str, str]) -> dict[str, float]:
    """Open-loop load: request n is due at n / rate, spread over a few client threads."""
    import httpx

    total = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    started = time.perf_counter() + 0.2
    threads = 4

    def run(k: int) -> None:
        nonlocal errors
        with httpx.Client(base_url=base, timeout=10, headers=headers) as client:
            for n in range(k, total, threads):
                delay = started + n / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                t0 = time.perf_counter()
                status = client.get(path).status_code
                elapsed = (time.perf_counter() - t0) * 1000
                with lock:
                    latencies.append(elapsed)
                    errors += status >= 400

    workers = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return {"rate": rate, "requests": total, "errors": errors,
            "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--naive-messages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5, help="ceiling + ingest rounds (medians reported)")
    parser.add_argument("--devices", type=int, default=30)
    parser.add_argument("--workers", default="1,2,3", help="comma-separated worker counts")
    parser.add_argument("--latency-seconds", type=float, default=10)
    parser.add_argument("--stall-seconds", type=float, default=8)
    parser.add_argument("--api-rate", type=float, default=200)
    parser.add_argument("--api-seconds", type=float, default=5)
    parser.add_argument("--database-url", help="admin URL of a PostgreSQL server (default: embedded pgserver)")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: naive,latency,stall,api")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    counts = [int(w) for w in args.workers.split(",")]

    results: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "feeder": "mosquitto_pub -l (C client), one process per topic",
    }
    rows = [("figure", "value", "beside it")]
    with bench_stack(args.database_url) as stack:
        results["database"] = stack.database_description
        with bench_database(stack.admin_url, args.devices) as (_, fleet):
            messages = backlog_messages(fleet, args.messages)
        # Absolute rates swing with whatever else the machine does, so each round measures the
        # ceiling and then every worker count back to back, and ratios are taken within a round;
        # the table shows each figure's median over the rounds.
        rounds = []
        bare_cpu: list[float] = []
        for _ in range(args.rounds):
            bare = measure_reference(stack, "bare", messages)
            bare_cpu.append(bare["cpu_us_per_msg"])
            runs = {w: measure_ingest(stack, w, args.messages, args.devices) for w in counts}
            rounds.append((bare["msg_s"], runs))
        ceiling = statistics.median(c for c, _ in rounds)
        results["ceiling_msg_s"] = [round(c) for c, _ in rounds]
        results["ceiling_cpu_us_per_msg"] = bare_cpu
        rows.append(("bare paho subscriber (ceiling)", f"{ceiling:,.0f} msg/s",
                     f"{len(messages):,} messages; median of {args.rounds} round(s); "
                     f"{statistics.median(bare_cpu):.0f} µs CPU per message"))

        naive = float("nan")
        if "naive" not in skip:
            with bench_database(stack.admin_url, args.devices) as (url, fleet):
                naive = measure_reference(stack, "naive", backlog_messages(fleet, args.naive_messages), url)["msg_s"]
            results["naive_msg_s"] = round(naive)
            rows.append(("naive: INSERT+commit per message", f"{naive:,.0f} msg/s",
                         f"{naive / ceiling:.2f} × ceiling ({args.naive_messages:,} messages)"))

        ingest: dict[int, dict[str, float]] = {}
        for workers in counts:
            per_round = [runs[workers] for _, runs in rounds]
            ratios = [runs[workers]["msg_s"] / c for c, runs in rounds]
            run = dict(per_round[-1])
            run["msg_s"] = statistics.median(r["msg_s"] for r in per_round)
            run["cpu_us_per_msg"] = statistics.median(r["cpu_us_per_msg"] for r in per_round)
            run["over_ceiling"] = statistics.median(ratios)
            # One shared subscription: every message went to exactly one worker, once.
            run["exact"] = all(r["stored"] == r["published"] == sum(r["received_per_worker"]) and r["duplicates"] == 0
                               for r in per_round)
            ingest[workers] = run
            rows.append((f"ingest, {workers} worker{'s' if workers > 1 else ''}", f"{run['msg_s']:,.0f} msg/s",
                         f"{run['over_ceiling']:.2f} × ceiling"
                         + (f", {run['msg_s'] / naive:.1f} × naive" if "naive" not in skip else "")
                         + f"; {run['cpu_us_per_msg']:.0f} µs CPU per message"
                         + f"; published = received = stored, no duplicates: {'yes' if run['exact'] else 'NO'}"
                         + (f"; split {'/'.join(map(str, run['received_per_worker']))}" if workers > 1 else "")))
        results["ingest"] = {str(w): [runs[w] for _, runs in rounds] for w in counts}
        best_workers = max(ingest, key=lambda w: ingest[w]["over_ceiling"])
        best = ingest[best_workers]
        one = ingest.get(1, best)
        rows.append(("ingest, best worker count", f"{best['msg_s']:,.0f} msg/s",
                     f"{best_workers} workers: {best['over_ceiling']:.2f} × ceiling"))
        rows.append(("worker peak RSS, full rate", f"{one['peak_rss_mb']:.0f} MB", ""))

        if "latency" not in skip:
            latency = measure_latency(stack, one["msg_s"] / 2, args.latency_seconds, args.devices)
            results["latency"] = latency
            rows.append(("publish→committed p50 / p99", f"{latency['p50_ms']:.0f} / {latency['p99_ms']:.0f} ms",
                         f"at {latency['rate']:,.0f} msg/s (half the 1-worker rate), {latency['sent']:,} messages"))
        if "stall" not in skip:
            stall = measure_stall_memory(stack, args.messages, args.devices, args.stall_seconds)
            results["stall"] = stall
            rows.append(("worker RSS while the database stalls", f"{stall['rss_max_during_stall_mb']:.0f} MB",
                         f"{stall['backlog']:,}-message backlog, {stall['stall_s']:.0f} s lock; "
                         f"peak {stall['peak_rss_mb']:.0f} MB"))
        if "api" not in skip:
            api = measure_api(stack, args.devices, args.api_rate, args.api_seconds)
            results["api"] = api
            for name, figures in api.items():
                rows.append((f"API {name} p50 / p99", f"{figures['p50_ms']:.1f} / {figures['p99_ms']:.1f} ms",
                             f"at {figures['rate']:.0f} req/s, {figures['requests']} requests, {figures['errors']} errors"))

    print(f"pilotlab ingest benchmark — {results['machine']}; {results['database']}; feeder {results['feeder']}")
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
        print(f"results written to {args.json}")


if __name__ == "__main__":
    main()
