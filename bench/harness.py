"""What the benchmarks share: a throwaway database, a private tuned broker, a registered bench
pilot, a C-client feeder, ingest worker processes, and reading a process's memory."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

from devices.kinds import DeviceKind
from pilotlab.embedded.broker import EmbeddedBroker
from pilotlab.embedded.postgres import EmbeddedPostgres
from pilotlab.settings import MqttEndpoint
from simulators.burst import contract_messages
from simulators.device import SimulatedDevice
from store.migrate import migrate

KINDS = (DeviceKind.SMART_SWITCH, DeviceKind.LOCATION_TRACKER, DeviceKind.ENV_SENSOR)
BENCH_PILOT = "bench"


@dataclass
class Stack:
    workdir: Path
    admin_url: str
    broker: EmbeddedBroker
    database_description: str

    @property
    def endpoint(self) -> MqttEndpoint:
        return MqttEndpoint(self.broker.url)


@contextmanager
def bench_stack(admin_url: str | None) -> Iterator[Stack]:
    """A private tuned Mosquitto and a PostgreSQL (the given server, else embedded pgserver)."""
    if not shutil.which("mosquitto") or not shutil.which("mosquitto_pub"):
        raise SystemExit("the benchmarks need mosquitto and mosquitto_pub on PATH (Debian package mosquitto)")
    workdir = Path(tempfile.mkdtemp(prefix="pilotlab-bench-"))
    embedded = None
    if admin_url is None:
        embedded = EmbeddedPostgres(workdir / "pg")
        admin_url = embedded.start()
    broker = EmbeddedBroker(workdir / "broker", prefer="mosquitto")
    try:
        broker.start()
        described = "embedded pgserver (PostgreSQL 16)" if embedded else _server_version(admin_url)
        yield Stack(workdir, admin_url, broker, described)
    finally:
        broker.stop()
        if embedded:
            embedded.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _server_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        return "PostgreSQL " + str(conn.execute("SHOW server_version").fetchone()[0]).split()[0]


@contextmanager
def throwaway_database(admin_url: str) -> Iterator[str]:
    """A migrated database of its own on the server at `admin_url`; dropped after."""
    name = f"pilotlab_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    info = psycopg.conninfo.conninfo_to_dict(admin_url)
    info["dbname"] = name
    url = psycopg.conninfo.make_conninfo(**info)  # type: ignore[arg-type]
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def register_bench_pilot(conn: psycopg.Connection) -> None:
    conn.execute("INSERT INTO firm (id, name) VALUES ('bench', 'Bench')")
    conn.execute("INSERT INTO pilot (id, firm_id, name, site, starts_at, status) "
                 "VALUES (%s, 'bench', 'Bench', 'bench', now() - interval '400 days', 'running')", (BENCH_PILOT,))


@contextmanager
def bench_database(admin_url: str, devices: int) -> Iterator[tuple[str, list[SimulatedDevice]]]:
    """A throwaway database with the bench pilot and `devices` contract devices."""
    with throwaway_database(admin_url) as url:
        fleet = [SimulatedDevice(f"bench-{i}", BENCH_PILOT, KINDS[i % 3], 60) for i in range(devices)]
        with psycopg.connect(url) as conn:
            register_bench_pilot(conn)
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, commissioned_at) "
                    "VALUES (%s, %s, %s, 'wifi', 60, now() - interval '400 days')",
                    [(d.id, BENCH_PILOT, d.kind.value) for d in fleet])
        yield url, fleet


def backlog_messages(fleet: Sequence[SimulatedDevice], total: int, seed: int = 3) -> list[tuple[str, bytes]]:
    """`total` valid telemetry messages (rounded down to whole devices), device times in the past."""
    per_device = total // len(fleet)
    start = datetime.now(UTC) - timedelta(days=per_device // 1440 + 2)
    return list(contract_messages(fleet, per_device, start, seed=seed))


def feed(endpoint: MqttEndpoint, messages: Sequence[tuple[str, bytes]]) -> float:
    """Publish at QoS 1 with one C-client `mosquitto_pub -l` per topic, in parallel; seconds taken.

    The C client, not paho: a paho publisher tops out near 6,600 msg/s here, below what a
    subscriber can take, so it would measure itself."""
    by_topic: dict[str, list[bytes]] = {}
    for topic, payload in messages:
        by_topic.setdefault(topic, []).append(payload)
    started = time.perf_counter()
    procs = [
        (subprocess.Popen(["mosquitto_pub", "-h", endpoint.host, "-p", str(endpoint.port), "-V", "mqttv5",
                           "-q", "1", "-t", topic, "-l"], stdin=subprocess.PIPE),
         b"\n".join(payloads) + b"\n")
        for topic, payloads in by_topic.items()
    ]
    writers = [threading.Thread(target=proc.communicate, args=(data,)) for proc, data in procs]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    failed = [proc.returncode for proc, _ in procs if proc.returncode]
    if failed:
        raise SystemExit(f"mosquitto_pub failed: exit codes {failed}")
    return time.perf_counter() - started


def new_share_group(name: str) -> str:
    """A share group no earlier measurement used (its sessions are gone, but be sure)."""
    return f"{name}-{uuid.uuid4().hex[:6]}"


class WorkerProcess:
    """`pilotlab ingest` as a child process of the benchmark, a member of share group `group`
    (workers meant to split one feed get the same group). `stop()` also discards its broker
    session, so a later measurement's feed is not queued for a worker that has gone."""

    def __init__(self, database_url: str, mqtt_url: str, worker_id: str, log_dir: Path,
                 group: str, extra_env: dict[str, str] | None = None) -> None:
        self.client_id = f"{group}-{worker_id}"
        self.endpoint = MqttEndpoint(mqtt_url)
        self.log_path = log_dir / f"worker-{self.client_id}.log"
        env = dict(os.environ, PILOTLAB_DATABASE_URL=database_url, PILOTLAB_MQTT_URL=mqtt_url,
                   PILOTLAB_SHARE_GROUP=group, **(extra_env or {}))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pilotlab", "ingest", "--worker-id", worker_id],
            env=env, stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT)

    def wait_consuming(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while "consuming" not in self.log_path.read_text():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit(f"worker did not start:\n{self.log_path.read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)
            end_session(self.endpoint, self.client_id)

    def received(self) -> int:
        """Messages the worker took off the broker, from its closing log line (after `stop()`)."""
        found = re.findall(r"ingest worker stopped: received (\d+)", self.log_path.read_text())
        if not found:
            raise SystemExit(f"worker {self.client_id} did not log its totals:\n{self.log_path.read_text()[-2000:]}")
        return int(found[-1])

    def memory_mb(self) -> tuple[float, float]:
        """(current RSS, peak RSS) in MB."""
        return rss_mb(self.process.pid)


def end_session(endpoint: MqttEndpoint, client_id: str) -> None:
    """Have the broker discard `client_id`'s session (clean start, expiry 0)."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.connect(endpoint.host, endpoint.port, clean_start=True)
    client.loop_start()
    time.sleep(0.2)
    client.disconnect()
    client.loop_stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (from /proc, in seconds)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> tuple[float, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def stored_count(conn: psycopg.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM telemetry").fetchone()[0])  # type: ignore[index]


def wait_stored(database_url: str, total: int, timeout: float = 300,
                workers: Sequence[WorkerProcess] = ()) -> float:
    """Block until `total` rows are stored; return time.time() when seen."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(database_url, autocommit=True) as conn:
        while stored_count(conn) < total:
            for worker in workers:
                if worker.process.poll() is not None:
                    raise SystemExit(f"worker exited:\n{worker.log_path.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise SystemExit(f"only {stored_count(conn)} of {total} stored after {timeout} s")
            time.sleep(0.02)
        return time.time()


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def print_table(rows: Sequence[tuple[str, str, str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
