"""Benchmark: how fast one ingest worker stores a backlog, beside a bare paho subscriber.

A backlog of M QoS 1 contract messages is queued in a persistent session on a private Mosquitto
(pilotlab's tuned config), fed by the C client `mosquitto_pub -l` (one process per device), so
the publisher is never the limit. Then, on the same broker and the same backlog:

- ceiling: a bare paho-mqtt 2.x subscriber that only counts (auto-ack, v5, clean_start off);
- ingest: `pilotlab ingest` (one worker process) decoding, validating, COPYing and acking.

Rates are messages / (last − first arrival) for the bare subscriber and messages /
(time all rows were committed − first ingest_time) for ingest. Prints a table; `--json PATH`
writes the figures. Speed is never asserted in tests: this script is where the numbers live.

    .venv/bin/python -m bench.ingest_backlog --messages 50000 [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from psycopg import sql

from devices.contract import subscription_filter
from devices.kinds import DeviceKind
from pilotlab.embedded.broker import EmbeddedBroker
from pilotlab.embedded.postgres import EmbeddedPostgres
from pilotlab.settings import MqttEndpoint
from simulators.burst import contract_messages
from simulators.device import SimulatedDevice
from store.migrate import migrate

KINDS = (DeviceKind.SMART_SWITCH, DeviceKind.LOCATION_TRACKER, DeviceKind.ENV_SENSOR)


def _session(endpoint: MqttEndpoint, client_id: str, on_message=None) -> mqtt.Client:  # noqa: ANN001
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = 1000
    if on_message:
        client.on_message = on_message
    subscribed = threading.Event()
    client.on_subscribe = lambda *a: subscribed.set()
    client.connect(endpoint.host, endpoint.port, clean_start=False, properties=props)
    client.loop_start()
    return client, subscribed


def feed_backlog(endpoint: MqttEndpoint, messages: list[tuple[str, bytes]]) -> float:
    """Publish with one `mosquitto_pub -l` per topic; returns seconds taken."""
    by_topic: dict[str, list[bytes]] = {}
    for topic, payload in messages:
        by_topic.setdefault(topic, []).append(payload)
    started = time.perf_counter()
    procs = []
    for topic, payloads in by_topic.items():
        proc = subprocess.Popen(
            ["mosquitto_pub", "-h", endpoint.host, "-p", str(endpoint.port), "-V", "mqttv5", "-q", "1",
             "-t", topic, "-l"], stdin=subprocess.PIPE)
        procs.append((proc, b"\n".join(payloads) + b"\n"))
    writers = [threading.Thread(target=p.communicate, args=(data,)) for p, data in procs]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    return time.perf_counter() - started


def bare_ceiling(endpoint: MqttEndpoint, messages: list[tuple[str, bytes]]) -> float:
    """msg/s of a paho subscriber that only counts, draining the same backlog."""
    client_id = f"bare-{uuid.uuid4().hex[:6]}"
    client, subscribed = _session(endpoint, client_id)
    client.subscribe(f"$share/bare/{subscription_filter()}", options=SubscribeOptions(qos=1))
    subscribed.wait(10)
    client.disconnect()
    client.loop_stop()
    feed_backlog(endpoint, messages)

    count = 0
    first = last = 0.0
    done = threading.Event()
    total = len(messages)

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


def ingest_rate(endpoint_url: str, database_url: str, messages: list[tuple[str, bytes]],
                workdir: Path, extra_env: dict[str, str]) -> dict[str, float]:
    env = dict(os.environ, PILOTLAB_DATABASE_URL=database_url, PILOTLAB_MQTT_URL=endpoint_url,
               PILOTLAB_SHARE_GROUP="bench", **extra_env)
    log_path = workdir / "worker.log"

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "pilotlab", "ingest", "--worker-id", "w1"],
                                env=env, stdout=log_path.open("ab"), stderr=subprocess.STDOUT)

    worker = start()  # creates the session and its subscription, then goes away
    deadline = time.monotonic() + 30
    while "consuming" not in log_path.read_text():
        if time.monotonic() > deadline or worker.poll() is not None:
            raise SystemExit(f"worker did not start: {log_path.read_text()}")
        time.sleep(0.1)
    worker.send_signal(signal.SIGTERM)
    worker.wait(30)
    feed_backlog(MqttEndpoint(endpoint_url), messages)

    worker = start()
    total = len(messages)
    peak_rss_kb = 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        while True:
            stored = conn.execute("SELECT count(*) FROM telemetry").fetchone()[0]
            if stored >= total:
                done = time.time()
                break
            if worker.poll() is not None:
                raise SystemExit(f"worker exited: {log_path.read_text()[-2000:]}")
            time.sleep(0.05)
        first = conn.execute("SELECT extract(epoch FROM min(ingest_time)) FROM telemetry").fetchone()[0]
        dead = conn.execute("SELECT count(*) FROM dead_letter").fetchone()[0]
    for line in Path(f"/proc/{worker.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak_rss_kb = int(line.split()[1])
    worker.send_signal(signal.SIGTERM)
    worker.wait(30)
    return {"rate": total / (done - float(first)), "stored": stored, "dead_letters": dead,
            "peak_rss_mb": peak_rss_kb / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--devices", type=int, default=30)
    parser.add_argument("--database-url", help="admin URL of a PostgreSQL server (default: embedded pgserver)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    if not shutil.which("mosquitto_pub") or not shutil.which("mosquitto"):
        raise SystemExit("this benchmark needs mosquitto and mosquitto_pub on PATH")

    workdir = Path(tempfile.mkdtemp(prefix="pilotlab-bench-"))
    embedded_pg = None
    admin_url = args.database_url
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
        devices = [SimulatedDevice(f"bench-{i}", "bench", KINDS[i % 3], 60) for i in range(args.devices)]
        with psycopg.connect(database_url) as conn:
            conn.execute("INSERT INTO firm (id, name) VALUES ('bench', 'Bench')")
            conn.execute("INSERT INTO pilot (id, firm_id, name, site, starts_at, status) "
                         "VALUES ('bench', 'bench', 'Bench', 'bench', now() - interval '30 days', 'running')")
            for d in devices:
                conn.execute("INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s) "
                             "VALUES (%s, 'bench', %s, 'wifi', 60)", (d.id, d.kind.value))
        per_device = args.messages // args.devices
        start = datetime.now(UTC) - timedelta(days=per_device // 1440 + 2)
        messages = list(contract_messages(devices, per_device, start, seed=3))
        endpoint = MqttEndpoint(broker.url)

        ceiling = bare_ceiling(endpoint, messages)
        extra = {"PILOTLAB_BATCH_SIZE": str(args.batch_size)} if args.batch_size else {}
        ingest = ingest_rate(broker.url, database_url, messages, workdir, extra)
        figures = {
            "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
            "database": "embedded pgserver" if embedded_pg else "given server",
            "messages": len(messages),
            "bare_paho_msg_s": round(ceiling),
            "ingest_one_worker_msg_s": round(ingest["rate"]),
            "ingest_over_ceiling": round(ingest["rate"] / ceiling, 3),
            "stored": ingest["stored"], "dead_letters": ingest["dead_letters"],
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
