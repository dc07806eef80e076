"""Benchmark: one ingest worker through the ChirpStack adapter (JSON event, base64, binary codec,
frame + reception records), beside a bare paho subscriber on the same broker and the same stream.

The same harness as bench/ingest_e2e.py: a private tuned Mosquitto fed at QoS 1 by the C client
`mosquitto_pub -l`, a throwaway database; M ChirpStack v4 uplink events (env sensors, binary
layout v1, two gateways each). Prints a table; `--json PATH` writes it.

    .venv/bin/python -m bench.lpwa_adapter --messages 20000 [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg

from bench.harness import BENCH_PILOT, bench_stack, print_table, register_bench_pilot, throwaway_database
from bench.ingest_e2e import drive_workers, measure_reference
from devices.kinds import DeviceKind
from simulators.device import SimulatedDevice
from simulators.lpwa import LpwaStream, RadioConditions, lpwa_devices

APPLICATION = "bench-app"
UPLINK_FILTER = f"application/{APPLICATION}/device/+/event/+"


def uplinks(devices: int, total: int) -> tuple[list[tuple[str, bytes]], dict[str, str]]:
    sims = [SimulatedDevice(f"bench-lora-{i}", BENCH_PILOT, DeviceKind.ENV_SENSOR, 60) for i in range(devices)]
    euis = {d.id: f"{i + 1:016x}" for i, d in enumerate(sims)}
    lora = lpwa_devices(sims, euis, APPLICATION, network_servers=("chirpstack",))
    stream = LpwaStream(lora, RadioConditions(gateways=2), seed=3)
    start = datetime.now(UTC) - timedelta(minutes=total // devices + 10)
    out: list[tuple[str, bytes]] = []
    tick = 0
    while len(out) < total:
        for device in lora:
            out += [(topic, body) for topic, body, _ in stream.tick(device, start + timedelta(minutes=tick))]
        tick += 1
    return out[:total], euis


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--database-url", help="admin URL of a PostgreSQL server (default: embedded pgserver)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with bench_stack(args.database_url) as stack, throwaway_database(stack.admin_url) as url:
        messages, euis = uplinks(args.devices, args.messages)
        with psycopg.connect(url) as conn:
            register_bench_pilot(conn)
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, dev_eui, "
                    "commissioned_at) VALUES (%s, %s, 'env_sensor', 'lpwa', 60, %s, now() - interval '60 days')",
                    [(device_id, BENCH_PILOT, eui) for device_id, eui in euis.items()])
        ceiling = measure_reference(stack, "bare", messages, topic_filter=UPLINK_FILTER)
        sources = orjson.dumps([{"name": "cs", "network_server": "chirpstack", "topics": [UPLINK_FILTER]}]).decode()
        run = drive_workers(stack, url, messages, 1, "lpwa", {"PILOTLAB_LPWA_SOURCES": sources})
        with psycopg.connect(url) as conn:
            receptions = conn.execute("SELECT count(*) FROM uplink_reception").fetchone()[0]  # type: ignore[index]
        figures = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "database": stack.database_description,
            "messages": len(messages),
            "bare_paho_msg_s": round(ceiling["msg_s"]),
            "ingest_one_worker_chirpstack_msg_s": round(run["msg_s"]),
            "ingest_over_ceiling": round(run["msg_s"] / ceiling["msg_s"], 3),
            "cpu_us_per_msg": round(run["cpu_us_per_msg"]),
            "stored": run["stored"], "receptions": receptions, "dead_letters": run["dead_letters"],
            "worker_peak_rss_mb": round(run["peak_rss_mb"], 1),
        }
        print_table([("figure", "value", "")] + [(key, f"{value}", "") for key, value in figures.items()])
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
