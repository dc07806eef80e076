"""Benchmark: one ingest worker through the ChirpStack adapter (JSON event, base64, binary codec,
frame + reception records), beside a bare paho subscriber on the same backlog.

Same method as bench.ingest_backlog (whose functions it reuses): a backlog of M ChirpStack v4
uplink events (env sensors, binary layout v1, two gateways each) is queued on a private tuned
Mosquitto with `mosquitto_pub -l`, then drained by a counting paho subscriber (the ceiling) and
by `pilotlab ingest` with a ChirpStack source. Prints a table; `--json PATH` writes it.

    .venv/bin/python -m bench.lpwa_adapter --messages 20000 [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg
from psycopg import sql

from bench.ingest_backlog import _session, feed_backlog, ingest_rate
from devices.kinds import DeviceKind
from pilotlab.embedded.broker import EmbeddedBroker
from pilotlab.embedded.postgres import EmbeddedPostgres
from pilotlab.settings import MqttEndpoint
from simulators.device import SimulatedDevice
from simulators.lpwa import LpwaStream, RadioConditions, lpwa_devices
from store.migrate import migrate

APPLICATION = "bench-app"


def uplinks(devices: int, total: int) -> tuple[list[tuple[str, bytes]], dict[str, str]]:
    sims = [SimulatedDevice(f"bench-lora-{i}", "bench", DeviceKind.ENV_SENSOR, 60) for i in range(devices)]
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


def bare_ceiling(endpoint: MqttEndpoint, messages: list[tuple[str, bytes]]) -> float:
    """As bench.ingest_backlog.bare_ceiling, on the ChirpStack topics."""
    import threading
    import time

    from paho.mqtt.subscribeoptions import SubscribeOptions

    client_id = f"bare-{uuid.uuid4().hex[:6]}"
    client, subscribed = _session(endpoint, client_id)
    client.subscribe(f"$share/bare/application/{APPLICATION}/device/+/event/+", options=SubscribeOptions(qos=1))
    subscribed.wait(10)
    client.disconnect()
    client.loop_stop()
    feed_backlog(endpoint, messages)
    count, first, last, total, done = 0, 0.0, 0.0, len(messages), threading.Event()

    def on_message(c, u, m) -> None:  # noqa: ANN001
        nonlocal count, first, last
        count += 1
        if count == 1:
            first = time.perf_counter()
        if count == total:
            last = time.perf_counter()
            done.set()

    client, _ = _session(endpoint, client_id, on_message)
    if not done.wait(300):
        raise SystemExit(f"bare subscriber received {count} of {total}")
    client.disconnect()
    client.loop_stop()
    return total / (last - first)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--database-url", help="admin URL of a PostgreSQL server (default: embedded pgserver)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not shutil.which("mosquitto_pub") or not shutil.which("mosquitto"):
        raise SystemExit("this benchmark needs mosquitto and mosquitto_pub on PATH")
    workdir = Path(tempfile.mkdtemp(prefix="pilotlab-bench-lpwa-"))
    embedded_pg, admin_url = None, args.database_url
    if admin_url is None:
        embedded_pg = EmbeddedPostgres(workdir / "pg")
        admin_url = embedded_pg.start()
    db_name = f"pilotlab_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db_name)))
    info = psycopg.conninfo.conninfo_to_dict(admin_url)
    info["dbname"] = db_name
    database_url = psycopg.conninfo.make_conninfo(**info)
    broker = EmbeddedBroker(workdir / "broker", prefer="mosquitto")
    try:
        broker.start()
        migrate(database_url)
        messages, euis = uplinks(args.devices, args.messages)
        with psycopg.connect(database_url) as conn:
            conn.execute("INSERT INTO firm (id, name) VALUES ('bench', 'Bench')")
            conn.execute("INSERT INTO pilot (id, firm_id, name, site, starts_at, status) "
                         "VALUES ('bench', 'bench', 'Bench', 'bench', now() - interval '60 days', 'running')")
            for device_id, eui in euis.items():
                conn.execute("INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, dev_eui, "
                             "commissioned_at) VALUES (%s, 'bench', 'env_sensor', 'lpwa', 60, %s, now() - interval '60 days')",
                             (device_id, eui))
        endpoint = MqttEndpoint(broker.url)
        ceiling = bare_ceiling(endpoint, messages)
        sources = orjson.dumps([{"name": "cs", "network_server": "chirpstack",
                                 "topics": [f"application/{APPLICATION}/device/+/event/+"]}]).decode()
        ingest = ingest_rate(broker.url, database_url, messages, workdir, {"PILOTLAB_LPWA_SOURCES": sources})
        with psycopg.connect(database_url) as conn:
            receptions = conn.execute("SELECT count(*) FROM uplink_reception").fetchone()[0]
        figures = {
            "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
            "database": "embedded pgserver" if embedded_pg else "given server",
            "messages": len(messages),
            "bare_paho_msg_s": round(ceiling),
            "ingest_one_worker_chirpstack_msg_s": round(ingest["rate"]),
            "ingest_over_ceiling": round(ingest["rate"] / ceiling, 3),
            "stored": ingest["stored"], "receptions": receptions, "dead_letters": ingest["dead_letters"],
            "worker_peak_rss_mb": round(ingest["peak_rss_mb"], 1),
        }
        width = max(map(len, figures))
        for key, value in figures.items():
            print(f"{key:<{width}}  {value}")
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2))
    finally:
        broker.stop()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db_name)))
        if embedded_pg:
            embedded_pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
