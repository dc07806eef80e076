"""Benchmark: one ingest worker through the ChirpStack adapter, per codec path, beside a bare paho
subscriber on the same broker and the same stream, in one run.

The same harness as bench/ingest_e2e.py: a private tuned Mosquitto fed at QoS 1 by the C client
`mosquitto_pub -l`, a throwaway database per part. M ChirpStack v4 uplink events of environment
sensors (telemetry on fPort 1, status on fPort 2, two gateways each, so each message also writes
a frame and two receptions); the parts differ only in what fPort 1 carries and who reads it:

- bare:    a bare paho subscriber that only counts (bench/subscribers.py): the ceiling;
- binary:  pilotlab's binary layout, devices without a profile (the built-in codec);
- cayenne: Cayenne LPP, devices with a profile reading fPort 1 as `cayenne_lpp`;
- js:      the Milesight EM300-TH layout, devices with a profile running the vendor's JavaScript
           codec (tests/codecs/vendor_codecs) and a mapping;
- js100:   as js, but each of 100 devices on a profile of its own with a distinct codec (100
           compiled runtimes in the worker): the worker's peak RSS against the 200 MB target.

The readings are the same in every part (a Cayenne or EM300-TH frame carries the fields its format
has: no particulate matter or noise). Status frames are pilotlab's layout throughout. Prints a
table; `--json PATH` writes the figures.

    .venv/bin/python -m bench.lpwa_adapter [--messages 20000] [--only bare,js] [--database-url URL]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg

from bench.harness import BENCH_PILOT, Stack, bench_stack, print_table, register_bench_pilot, throwaway_database
from bench.ingest_e2e import drive_workers, measure_reference
from devices.codecs import FPORT_TELEMETRY, cayenne_lpp, env_sensor
from devices.kinds import DeviceKind
from devices.profiles import ProfileDefinition
from simulators.device import SimulatedDevice
from simulators.lpwa import LpwaStream, RadioConditions, lpwa_devices
from store import profiles

APPLICATION = "bench-app"
UPLINK_FILTER = f"application/{APPLICATION}/device/+/event/+"
PARTS = ("bare", "binary", "cayenne", "js", "js100")
EM300_TH = (Path(__file__).resolve().parent.parent / "tests" / "codecs" / "vendor_codecs"
            / "milesight-em300-th.js").read_text()
RSS_TARGET_MB = 200

Messages = list[tuple[str, bytes]]


def uplinks(devices: int, total: int) -> tuple[Messages, dict[str, str]]:
    sims = [SimulatedDevice(f"bench-lora-{i}", BENCH_PILOT, DeviceKind.ENV_SENSOR, 60) for i in range(devices)]
    euis = {d.id: f"{i + 1:016x}" for i, d in enumerate(sims)}
    lora = lpwa_devices(sims, euis, APPLICATION, network_servers=("chirpstack",))
    stream = LpwaStream(lora, RadioConditions(gateways=2), seed=3)
    start = datetime.now(UTC) - timedelta(minutes=total // devices + 10)
    out: Messages = []
    tick = 0
    while len(out) < total:
        for device in lora:
            out += [(topic, body) for topic, body, _ in stream.tick(device, start + timedelta(minutes=tick))]
        tick += 1
    return out[:total], euis


# --- the same readings in a vendor's format ------------------------------------------------------

def cayenne_frame(fields: dict[str, Any]) -> bytes:
    values = [(1, "temperature", "temperature_c"), (2, "humidity", "humidity_pct"),
              (3, "concentration", "co2_ppm"), (4, "percentage", "battery_pct")]
    return cayenne_lpp.encode([cayenne_lpp.LppValue(channel, kind, fields[name])
                               for channel, kind, name in values if name in fields])


def em300_th_frame(fields: dict[str, Any]) -> bytes:
    """Milesight's layout: [channel id][channel type][value], little-endian."""
    out = b""
    if "battery_pct" in fields:
        out += bytes((0x01, 0x75, round(fields["battery_pct"])))
    if "temperature_c" in fields:
        out += bytes((0x03, 0x67)) + round(fields["temperature_c"] * 10).to_bytes(2, "little", signed=True)
    if "humidity_pct" in fields:
        out += bytes((0x04, 0x68, round(fields["humidity_pct"] * 2)))
    return out


def reencoded(messages: Messages, frame: Callable[[dict[str, Any]], bytes]) -> Messages:
    """The same uplink events with each telemetry frame in another format (same fPort)."""
    out = []
    for topic, body in messages:
        event = orjson.loads(body)
        if event["fPort"] == FPORT_TELEMETRY:
            event["data"] = base64.b64encode(frame(env_sensor.decode(base64.b64decode(event["data"])))).decode()
            body = orjson.dumps(event)
        out.append((topic, body))
    return out


def profile(model: str, telemetry: dict[str, Any], measurements: list[str]) -> ProfileDefinition:
    return ProfileDefinition.model_validate({
        "vendor": "Bench", "model": model, "firmware_version": "1.0", "kind": "env_sensor", "reporting_interval_s": 60,
        "measurements": measurements,
        "uplinks": {str(FPORT_TELEMETRY): telemetry,
                    "2": {"codec": {"type": "pilotlab", "layout": "status"}, "channel": "status"}}})


CAYENNE = profile("Cayenne LPP sensor", {"codec": {"type": "cayenne_lpp"}},
                  ["temperature_c", "humidity_pct", "co2_ppm", "battery_pct"])


def em300_th(script: str) -> ProfileDefinition:
    return profile("EM300-TH", {"codec": {"type": "javascript", "script": script}, "mapping": [
        {"from": "temperature", "to": "temperature_c"}, {"from": "humidity", "to": "humidity_pct"},
        {"from": "battery", "to": "battery_pct"}]}, ["temperature_c", "humidity_pct", "battery_pct"])


# --- one part --------------------------------------------------------------------------------------

def run_part(stack: Stack, messages: Messages, euis: dict[str, str],
             profile_of: Callable[[int], ProfileDefinition] | None, shared: bool = True,
             workers: int = 1) -> dict[str, Any]:
    """`workers` workers (one share group) on a fresh database; devices on one shared profile, one
    each, or none."""
    with throwaway_database(stack.admin_url) as url:
        with psycopg.connect(url) as conn:
            register_bench_pilot(conn)
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, dev_eui, "
                    "commissioned_at) VALUES (%s, %s, 'env_sensor', 'lpwa', 60, %s, now() - interval '60 days')",
                    [(device_id, BENCH_PILOT, eui) for device_id, eui in euis.items()])
            if profile_of is not None:
                for index, device_id in enumerate(euis):
                    profile_id = "bench-profile" if shared else f"bench-profile-{index}"
                    if not shared or index == 0:
                        profiles.create(conn, profile_id, None, profile_of(index))
                    profiles.assign(conn, device_id, profile_id)
        sources = orjson.dumps([{"name": "cs", "network_server": "chirpstack", "topics": [UPLINK_FILTER]}]).decode()
        run = drive_workers(stack, url, messages, workers, "lpwa", {"PILOTLAB_LPWA_SOURCES": sources})
        with psycopg.connect(url) as conn:
            run["receptions"] = conn.execute("SELECT count(*) FROM uplink_reception").fetchone()[0]  # type: ignore[index]
        return run


def row(name: str, run: dict[str, Any], bare: dict[str, float] | None) -> tuple[str, str, str]:
    ratio = f"{run['msg_s'] / bare['msg_s']:.2f} × bare" if bare else "— (no bare part)"
    return (name, f"{run['msg_s']:,.0f} msg/s",
            f"{ratio}; {run['cpu_us_per_msg']:.0f} µs CPU per message; peak RSS {run['peak_rss_mb']:.0f} MB; "
            f"stored {run['stored']:,} / receptions {run['receptions']:,} / dead letters {run['dead_letters']}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--profiles-messages", type=int, default=10_000, help="messages of the js100 part")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts: {','.join(PARTS)}")
    parser.add_argument("--database-url", help="admin URL of a PostgreSQL server (default: embedded pgserver)")
    parser.add_argument("--workers", default="1",
                        help="comma-separated worker counts for the binary, cayenne and js parts, e.g. 1,2")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    try:
        worker_counts = [int(n) for n in args.workers.split(",") if n.strip()]
    except ValueError:
        parser.error(f"--workers: expected comma-separated counts such as 1,2, got {args.workers!r}")
    if not worker_counts or min(worker_counts) < 1:
        parser.error("--workers: each count must be at least 1")
    only = [part.strip() for part in args.only.split(",") if part.strip()]
    unknown = sorted(set(only) - set(PARTS))
    if unknown:
        parser.error(f"--only: unknown part(s) {', '.join(unknown)}; the parts are {', '.join(PARTS)}")

    messages, euis = uplinks(args.devices, args.messages)
    streams = {"binary": messages, "cayenne": reencoded(messages, cayenne_frame),
               "js": reencoded(messages, em300_th_frame)}
    figures: dict[str, Any] = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
                               "messages": len(messages)}
    rows = [("part", "rate", "beside it")]
    with bench_stack(args.database_url) as stack:
        figures["database"] = stack.database_description
        bare = None
        if "bare" in only:
            bare = measure_reference(stack, "bare", messages, topic_filter=UPLINK_FILTER)
            figures["bare"] = bare
            rows.append(("bare paho subscriber", f"{bare['msg_s']:,.0f} msg/s", f"{bare['cpu_us_per_msg']:.0f} µs CPU per message"))
        parts: dict[str, tuple[str, Callable[[int], ProfileDefinition] | None]] = {
            "binary": ("built-in binary codec", None),
            "cayenne": ("profile: Cayenne LPP", lambda _: CAYENNE),
            "js": ("profile: EM300-TH JavaScript", lambda _: em300_th(EM300_TH)),
        }
        for part, (name, profile_of) in parts.items():
            if part not in only:
                continue
            for workers in worker_counts:
                key = part if workers == 1 else f"{part}_{workers}_workers"
                figures[key] = run_part(stack, streams[part], euis, profile_of, workers=workers)
                rows.append(row(f"{workers} worker{'s' if workers > 1 else ''}, {name}", figures[key], bare))
        if "js100" in only:
            devices, total = 100, args.profiles_messages
            messages100, euis100 = uplinks(devices, total)
            # each device its own profile, its codec distinct by one line (a profile version of its own)
            run = run_part(stack, reencoded(messages100, em300_th_frame), euis100,
                           lambda index: em300_th(EM300_TH + f"\nvar pilotlabProfileVersion = {index};\n"), shared=False)
            figures["js100"] = run
            rows.append(row(f"1 worker, {devices} JS profiles", run, bare))
            rows.append((f"  peak RSS, {devices} JS profiles", f"{run['peak_rss_mb']:.0f} MB",
                         f"target ≤ {RSS_TARGET_MB} MB: {'met' if run['peak_rss_mb'] <= RSS_TARGET_MB else 'NOT met'}"))
    print(f"LPWA adapter benchmark — {figures['machine']}; {figures['database']}; {len(messages):,} messages a part")
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
