"""Fault run (acceptance of issue 12): a fleet of honest devices publishes at QoS 1 through a
private Mosquitto into ingest worker processes writing to a private PostgreSQL, while workers are
SIGKILLed, PostgreSQL crashes, and the broker restarts (once on its own, once during a database
outage). At the end it waits for ingest to drain and prints published / stored / lost /
duplicated; exit code 1 if anything published was lost or stored twice.

    .venv/bin/python -m bench.fault_run --messages 200000 --workers 3 --kills 24 --seed 1

Everything is the run's own, in a temporary directory: PostgreSQL from the pgserver wheel
(pilotlab.embedded.postgres; crashed with SIGKILL of the postmaster, then started again on the
same port), the broker pilotlab ships, Mosquitto 2.1.2 with persist-sqlite as
scripts/build-mosquitto.sh builds it, with the shipped deploy/mosquitto/mosquitto.conf and
persistence-sqlite.conf (pilotlab.embedded.broker adds the loopback listener and the persistence
location; `--mosquitto PATH` runs another binary, a 2.0 one with persistence-file.conf), and
`pilotlab ingest --worker-id i` processes on one shared subscription. A worker that exits by
itself is restarted after a second, as a container's restart policy would.

Devices are honest: each connection (a paho-mqtt v5 client, `clean_start` false, like a gateway
for its devices) keeps every unacknowledged message and resends it after a reconnect; a message
counts as published once the broker PUBACKed it with a success code. Devices run in several
publisher processes, each device with its own seq from 0. Lost = published (device, seq) not in
`telemetry`; duplicated = rows beyond one per (device, seq). Lost messages are attributed to the
fault whose window their PUBACK fell in (or followed within FAULT_AFTERMATH_S), with the PUBACK's
reason code (0x10: "no matching subscribers", the broker dropped it).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

import orjson
import psycopg
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from bench.harness import BENCH_PILOT, KINDS, register_bench_pilot
from devices.kinds import DeviceKind
from pilotlab.embedded.broker import EmbeddedBroker, MosquittoInstall, built_mosquitto, mosquitto_install
from pilotlab.embedded.lifetime import die_with_parent, pid_alive, stop_process
from pilotlab.embedded.postgres import EmbeddedPostgres
from pilotlab.errors import ConfigError
from pilotlab.settings import MqttEndpoint
from simulators.burst import contract_messages
from simulators.device import SimulatedDevice
from store.migrate import migrate

SHARE_GROUP = "faultrun"
NO_MATCHING_SUBSCRIBERS = 0x10
FAULT_AFTERMATH_S = 15.0  # a loss this long after a fault ended is still put down to it
WORKER_RESTART_DELAY_S = 1.0  # for a worker that exited by itself (a container restart policy)
ACK_TIMEOUT_S = 300.0  # a publisher gives up waiting for its last PUBACKs after this
DRAIN_IDLE_S = 30.0  # no new row for this long after publishing ended: ingest has drained


# --- publishers (each in its own process) -----------------------------------------------------

@dataclass
class PublisherSpec:
    index: int
    port: int
    devices: list[tuple[str, str]]  # (id, kind)
    per_device: int
    rate: float  # messages per second for the whole process
    connections: int
    max_inflight: int
    seed: int
    result_path: str


class Connection:
    """One device connection: publishes its messages paced, records each PUBACK (time, reason)."""

    def __init__(self, name: str, port: int, messages: list[tuple[str, bytes]], max_inflight: int) -> None:
        from simulators.publisher import AckCounter, open_client

        self.messages = messages
        self.ack_time = array("d", [0.0]) * len(messages)
        self.reason = bytearray(len(messages))
        self.unacked = len(messages)
        self.window = threading.Semaphore(max_inflight)
        self.done = threading.Event()
        self._by_mid: dict[int, int] = {}
        self._early: dict[int, tuple[float, int]] = {}  # PUBACKs that beat the mid bookkeeping
        self._lock = threading.Lock()
        acks = AckCounter()
        self.client = open_client(MqttEndpoint(f"mqtt://127.0.0.1:{port}"), name, acks,
                                  clean_start=False, session_expiry_s=3600)
        self.client.on_publish = self._on_publish

    def _on_publish(self, client: object, userdata: object, mid: int, reason: ReasonCode,
                    properties: Properties) -> None:
        now = time.time()
        with self._lock:
            index = self._by_mid.pop(mid, None)
            if index is None:
                self._early[mid] = (now, reason.value)
                return
        self._settle(index, now, reason.value)

    def _settle(self, index: int, when: float, reason: int) -> None:
        self.ack_time[index], self.reason[index] = when, reason
        self.window.release()
        with self._lock:
            self.unacked -= 1
            if self.unacked == 0:
                self.done.set()

    def run(self, per_second: float, go_at: float) -> None:
        for n, (topic, payload) in enumerate(self.messages):
            if n % 20 == 0:
                time.sleep(max(0.0, go_at + n / per_second - time.time()))
            self.window.acquire()
            info = self.client.publish(topic, payload, qos=1)  # queued by paho while disconnected
            with self._lock:
                early = self._early.pop(info.mid, None)
                if early is None:
                    self._by_mid[info.mid] = n
            if early is not None:
                self._settle(n, *early)


def publisher_main(spec: PublisherSpec, ready: Any, go: MpEvent) -> None:
    from simulators.publisher import close_client

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the orchestrator decides when to stop
    logging.getLogger("simulators.publisher").setLevel(logging.ERROR)  # reconnects are expected here
    devices = [SimulatedDevice(device_id, BENCH_PILOT, DeviceKind(kind), 60) for device_id, kind in spec.devices]
    start = datetime.now(UTC) - timedelta(days=spec.per_device // 1440 + 2)
    groups: list[list[tuple[str, bytes]]] = [[] for _ in range(spec.connections)]
    slot = {device.id: k % spec.connections for k, device in enumerate(devices)}
    for topic, payload in contract_messages(devices, spec.per_device, start, seed=spec.seed + spec.index):
        groups[slot[topic.split("/")[-2]]].append((topic, payload))
    connections = [Connection(f"faultrun-dev-{spec.index}-{c}", spec.port, messages, spec.max_inflight)
                   for c, messages in enumerate(groups) if messages]
    ready.put(spec.index)
    go.wait()
    go_at = time.time()
    threads = [threading.Thread(target=c.run, args=(spec.rate / len(connections), go_at), daemon=True)
               for c in connections]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    deadline = time.monotonic() + ACK_TIMEOUT_S
    for c in connections:
        c.done.wait(max(0.0, deadline - time.monotonic()))
    records = []
    for c in connections:
        for n, (topic, payload) in enumerate(c.messages):
            records.append((topic.split("/")[-2], orjson.loads(payload)["seq"], c.ack_time[n], c.reason[n]))
        close_client(c.client)
    Path(spec.result_path).write_bytes(orjson.dumps(records))


# --- the services and the workers --------------------------------------------------------------

@dataclass
class FaultRecord:
    label: str
    start: float  # seconds since publishing began
    end: float
    detail: str = ""


@dataclass
class Worker:
    worker_id: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    exited_at: float | None = None  # exited by itself, waiting for its restart


@dataclass
class Run:
    args: argparse.Namespace
    workdir: Path
    pg: EmbeddedPostgres
    broker: EmbeddedBroker
    database_url: str
    workers: list[Worker] = field(default_factory=list)
    faults: list[FaultRecord] = field(default_factory=list)
    t0: float = 0.0
    self_exits: int = 0

    def now(self) -> float:
        return time.monotonic() - self.t0

    def say(self, text: str) -> None:
        print(f"[{self.now():7.1f} s] {text}", flush=True)

    # Workers: started and restarted only from the main thread (their parent-death signal fires
    # when the starting thread ends).
    def start_worker(self, worker: Worker) -> None:
        env = dict(os.environ, PILOTLAB_DATABASE_URL=self.database_url, PILOTLAB_MQTT_URL=self.broker.url,
                   PILOTLAB_SHARE_GROUP=SHARE_GROUP)
        with worker.log_path.open("ab") as log:
            log.write(f"--- start {worker.starts + 1} at {self.now():.1f} s ---\n".encode())
            log.flush()
            worker.process = subprocess.Popen(
                [sys.executable, "-m", "pilotlab", "ingest", "--worker-id", worker.worker_id],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=die_with_parent())
        worker.starts += 1
        worker.exited_at = None

    def kill_worker(self, worker: Worker) -> int:
        assert worker.process is not None
        pid = worker.process.pid
        stop_process(worker.process, sig=signal.SIGKILL)
        self.start_worker(worker)
        return pid

    def supervise(self) -> None:
        """Restart a worker that exited by itself, after WORKER_RESTART_DELAY_S."""
        for worker in self.workers:
            assert worker.process is not None
            code = worker.process.poll()
            if code is None:
                continue
            if worker.exited_at is None:
                worker.exited_at = time.monotonic()
                self.self_exits += 1
                self.say(f"worker {worker.worker_id} exited by itself (exit code {code}): {last_line(worker.log_path)}")
            elif time.monotonic() - worker.exited_at >= WORKER_RESTART_DELAY_S:
                self.start_worker(worker)
                self.say(f"worker {worker.worker_id} restarted after exiting by itself")

    def stop_workers(self) -> None:
        for worker in self.workers:
            if worker.process is not None:
                stop_process(worker.process, sig=signal.SIGTERM, timeout=30)

    def crash_postgres(self) -> int:
        """SIGKILL the postmaster (its backends notice and exit): what a power cut does to it."""
        pid = int((self.pg.data_dir / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        return pid

    def start_postgres(self) -> None:
        """Start again on the same port; after a crash, until the old backends have let go of
        shared memory ("pre-existing shared memory block is still in use")."""
        deadline = time.monotonic() + 60
        while True:
            try:
                self.pg.start()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def last_line(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][-200:] if lines else ""


# --- faults: generators that yield seconds to wait, so the main loop keeps supervising --------

Fault = Callable[[Run], Iterator[float]]


def worker_kill(index: int) -> Fault:
    def run(r: Run) -> Iterator[float]:
        worker = r.workers[index % len(r.workers)]
        started = r.now()
        pid = r.kill_worker(worker)
        r.faults.append(FaultRecord("worker SIGKILL", started, r.now(), f"worker {worker.worker_id} pid {pid}, restarted"))
        yield 0.0

    return run


def postgres_crash(r: Run) -> Iterator[float]:
    started = r.now()
    pid = r.crash_postgres()
    r.say(f"PostgreSQL crash: SIGKILL of the postmaster (pid {pid})")
    yield 3.0
    r.start_postgres()
    r.faults.append(FaultRecord("PostgreSQL crash", started, r.now(), f"postmaster pid {pid} SIGKILLed, down 3 s"))
    r.say("PostgreSQL back")


def broker_restart(r: Run) -> Iterator[float]:
    started = r.now()
    r.say("broker restart: SIGTERM")
    r.broker.stop()
    yield 1.0
    r.broker.start()
    r.faults.append(FaultRecord("broker restart", started, r.now(), "SIGTERM, down 1 s"))
    r.say("broker back")


def broker_restart_during_database_outage(r: Run) -> Iterator[float]:
    started = r.now()
    r.say("database outage: PostgreSQL stopped")
    r.pg.stop()
    yield 2.0
    # Every worker (re)starts while the database is down (issue 12 point 3), one after another.
    for worker in r.workers:
        pid = r.kill_worker(worker)
        r.faults.append(FaultRecord("worker SIGKILL", r.now(), r.now(), f"worker {worker.worker_id} pid {pid}, "
                                    "restarted during the database outage"))
        yield 0.5
    yield 1.0
    r.say("broker restart during the database outage: SIGTERM")
    r.broker.stop()
    yield 1.0
    r.broker.start()
    r.say("broker back; database still down")
    yield 5.0
    r.start_postgres()
    r.faults.append(FaultRecord("broker restart during database outage", started, r.now(),
                                "PostgreSQL stopped; every worker SIGKILLed; broker SIGTERM, down 1 s; PostgreSQL back 5 s after the broker"))
    r.say("PostgreSQL back")


def schedule(args: argparse.Namespace) -> list[tuple[float, str, Fault]]:
    """Fault start times over the expected publishing time: the three service faults at a quarter,
    half and three quarters; the worker kills spread at random (seeded) over the rest."""
    duration = args.messages / args.rate
    rng = random.Random(args.seed)
    plan: list[tuple[float, str, Fault]] = [
        (0.25 * duration, "PostgreSQL crash", postgres_crash),
        (0.50 * duration, "broker restart", broker_restart),
        (0.75 * duration, "broker restart during database outage", broker_restart_during_database_outage),
    ]
    kills = max(0, args.kills - args.workers)  # each worker is killed once inside the database outage
    for _ in range(kills):
        plan.append((rng.uniform(0.05, 0.95) * duration, "worker SIGKILL", worker_kill(rng.randrange(args.workers))))
    return sorted(plan, key=lambda item: item[0])


# --- the run -----------------------------------------------------------------------------------

def register_fleet(database_url: str, devices: int) -> list[tuple[str, str]]:
    fleet = [(f"fr-{i}", KINDS[i % len(KINDS)].value) for i in range(devices)]
    with psycopg.connect(database_url) as conn:
        register_bench_pilot(conn)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, commissioned_at) "
                "VALUES (%s, %s, %s, 'wifi', 60, now() - interval '400 days')",
                [(device_id, BENCH_PILOT, kind) for device_id, kind in fleet])
    return fleet


def stored_rows(database_url: str) -> int | None:
    try:
        with psycopg.connect(database_url, connect_timeout=3) as conn:
            return int(conn.execute("SELECT count(*) FROM telemetry").fetchone()[0])  # type: ignore[index]
    except psycopg.OperationalError:
        return None


def wait_consuming(run: Run, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    for worker in run.workers:
        while "consuming" not in worker.log_path.read_text(errors="replace"):
            assert worker.process is not None
            if worker.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"worker {worker.worker_id} did not start:\n{worker.log_path.read_text()[-2000:]}")
            time.sleep(0.05)


def execute(args: argparse.Namespace, workdir: Path) -> int:
    timings: dict[str, float] = {}
    began = time.monotonic()
    pg = EmbeddedPostgres(workdir / "pg")
    database_url = pg.start()
    migrate(database_url)
    fleet = register_fleet(database_url, args.devices)
    broker = EmbeddedBroker(workdir / "broker", prefer="mosquitto", mosquitto=args.mosquitto.binary)
    broker.start()
    run = Run(args, workdir, pg, broker, database_url)
    run.t0 = time.monotonic()
    publishers: list[multiprocessing.process.BaseProcess] = []
    try:
        for i in range(args.workers):
            worker = Worker(str(i + 1), workdir / f"worker-{i + 1}.log")
            run.workers.append(worker)
            run.start_worker(worker)
        wait_consuming(run)

        per_device = -(-args.messages // args.devices)  # at least --messages in all
        context = multiprocessing.get_context("spawn")
        ready, go = context.Queue(), context.Event()
        for p in range(args.publishers):
            spec = PublisherSpec(p, broker.port or 0, fleet[p::args.publishers], per_device, args.rate / args.publishers,
                                 args.connections, args.max_inflight, args.seed, str(workdir / f"published-{p}.json"))
            process = context.Process(target=publisher_main, args=(spec, ready, go), daemon=True)
            process.start()
            publishers.append(process)
        for _ in publishers:
            ready.get(timeout=300)
        timings["setup"] = time.monotonic() - began
        print(f"fault run: {per_device * args.devices:,} messages from {args.devices} devices "
              f"({args.publishers} publisher processes x {args.connections} connections) at {args.rate:,.0f} msg/s; "
              f"broker {args.mosquitto}, {'persist-sqlite' if broker.restart_safe else 'mosquitto.db (2.0: not restart-safe)'}; "
              f"{args.workers} ingest workers; {args.kills} worker kills, a PostgreSQL crash, a broker restart, "
              f"a broker restart during a database outage; seed {args.seed}; work dir {workdir}", flush=True)

        plan = schedule(args)
        run.t0 = time.monotonic()
        go.set()
        active: list[tuple[str, float, Iterator[float]]] = []  # (label, wake at, steps)
        last_report = 0.0
        while plan or active or any(p.is_alive() for p in publishers):
            now = run.now()
            run.supervise()
            # Due faults start; a service fault waits while another one is under way (kills never wait).
            for due in [item for item in plan if item[0] <= now]:
                service_busy = any(label != "worker SIGKILL" for label, _, _ in active)
                if due[1] == "worker SIGKILL" or not service_busy:
                    plan.remove(due)
                    active.append((due[1], now, due[2](run)))
            still: list[tuple[str, float, Iterator[float]]] = []
            for label, wake, steps in active:
                if wake <= run.now():
                    try:
                        still.append((label, run.now() + next(steps), steps))
                    except StopIteration:
                        pass
                else:
                    still.append((label, wake, steps))
            active = still
            if now - last_report >= 10:
                last_report = now
                run.say(f"stored {stored_rows(database_url) or 'n/a (database down)'} rows; "
                        f"faults done {len(run.faults)}, to come {len(plan)}")
            time.sleep(0.02)
        timings["publishing"] = run.now()
        failed = [p.exitcode for p in publishers if p.exitcode != 0]
        if failed:
            raise SystemExit(f"publisher processes failed (exit codes {failed})")

        published = []
        for p in range(args.publishers):
            published += orjson.loads((workdir / f"published-{p}.json").read_bytes())
        acked = [r for r in published if r[2] > 0 and r[3] < 0x80]
        run.say(f"publishing done: {len(acked):,} of {len(published):,} PUBACKed; waiting for ingest to drain")

        last, last_change = -1, time.monotonic()
        drain_started = time.monotonic()
        while True:
            run.supervise()
            rows = stored_rows(database_url)
            if rows is not None and rows != last:
                last, last_change = rows, time.monotonic()
            if rows is not None and rows >= len(acked):
                break
            if time.monotonic() - last_change > DRAIN_IDLE_S:
                break
            time.sleep(0.5)
        timings["drain"] = time.monotonic() - drain_started
        return report(run, published, timings)
    finally:
        for publisher in publishers:
            if publisher.is_alive():
                publisher.terminate()
        run.stop_workers()
        broker.stop()
        pg.stop()


def report(run: Run, published: list[list[Any]], timings: dict[str, float]) -> int:
    with psycopg.connect(run.database_url) as conn:
        rows = conn.execute("SELECT device_id, seq, count(*) FROM telemetry GROUP BY device_id, seq").fetchall()
        dead = conn.execute("SELECT reason, count(*) FROM dead_letter GROUP BY reason ORDER BY 2 DESC").fetchall()
    stored_keys = {(device, seq): n for device, seq, n in rows}
    acked = [r for r in published if r[2] > 0 and r[3] < 0x80]
    refused = [r for r in published if r[2] > 0 and r[3] >= 0x80]
    unacked = [r for r in published if r[2] == 0]
    lost = [r for r in acked if (r[0], r[1]) not in stored_keys]
    stored = len(acked) - len(lost)
    duplicated = sum(n - 1 for n in stored_keys.values())
    published_keys = {(r[0], r[1]) for r in published}
    strangers = sum(1 for key in stored_keys if key not in published_keys)
    no_subscribers = sum(1 for r in acked if r[3] == NO_MATCHING_SUBSCRIBERS)

    print()
    print("fault log (seconds since publishing began):")
    for fault in sorted(run.faults, key=lambda f: f.start):
        print(f"  {fault.start:7.1f} – {fault.end:7.1f}  {fault.label}: {fault.detail}")
    print(f"  workers exited by themselves (and were restarted): {run.self_exits}")
    kills = sum(1 for f in run.faults if f.label == "worker SIGKILL")
    print()
    print(f"published (PUBACKed)      {len(acked):>9,}   ({no_subscribers:,} answered 'no matching subscribers')")
    print(f"stored                    {stored:>9,}")
    print(f"lost                      {len(lost):>9,}")
    print(f"duplicated                {duplicated:>9,}")
    print(f"refused by the broker     {len(refused):>9,}")
    print(f"never acknowledged        {len(unacked):>9,}")
    print(f"rows nobody published     {strangers:>9,}")
    print(f"dead letters              {sum(n for _, n in dead):>9,}   {dict(dead) if dead else ''}")
    print(f"worker SIGKILLs           {kills:>9,}")
    print(f"timings: setup {timings['setup']:.1f} s, publishing {timings['publishing']:.1f} s, "
          f"drain {timings['drain']:.1f} s")
    if lost:
        wall_t0 = time.time() - run.now()  # publishing began at this wall-clock time
        print("lost, by the fault they were PUBACKed during (or soon after) and the PUBACK reason code:")
        causes: dict[str, list[float]] = {}
        for _, _, acked_at, reason in lost:
            at = acked_at - wall_t0
            causes.setdefault(f"{blame(run.faults, at)}, PUBACK 0x{reason:02x}", []).append(at)
        for cause, times in sorted(causes.items(), key=lambda item: -len(item[1])):
            print(f"  {len(times):>7,}  {cause} (PUBACKs {min(times):.1f}–{max(times):.1f} s)")
        (run.workdir / "lost.json").write_bytes(orjson.dumps(lost))
    ok = not lost and not duplicated and not refused and not unacked
    if args_json := run.args.json:
        Path(args_json).write_text(json.dumps({
            "published": len(acked), "stored": stored, "lost": len(lost), "duplicated": duplicated,
            "refused": len(refused), "unacknowledged": len(unacked), "no_matching_subscribers": no_subscribers,
            "dead_letters": dict(dead), "worker_kills": kills, "worker_self_exits": run.self_exits,
            "faults": [f.__dict__ for f in run.faults], "timings_s": timings, "seed": run.args.seed,
            "broker": str(run.args.mosquitto),
        }, indent=2))
    print("OK: every published message stored exactly once" if ok else "FAILED: see above")
    return 0 if ok else 1


def blame(faults: list[FaultRecord], at: float) -> str:
    """The fault a loss at `at` s is put down to: one in progress before one just ended, a
    database or broker fault before a worker kill, the latest before earlier ones."""
    near = [f for f in faults if f.start - 1 <= at <= f.end + FAULT_AFTERMATH_S]
    if not near:
        return "no fault nearby"
    f = min(near, key=lambda f: (not f.start - 1 <= at <= f.end + 1, f.label == "worker SIGKILL", -f.start))
    return f"{f.label} at {f.start:.1f}–{f.end:.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=200_000, help="at least this many (rounded up to whole devices)")
    parser.add_argument("--devices", type=int, default=300)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--kills", type=int, default=24, help="worker SIGKILLs (each worker once during the database outage)")
    parser.add_argument("--rate", type=float, default=1500, help="publish rate, messages per second, all devices")
    parser.add_argument("--publishers", type=int, default=3, help="publisher processes")
    parser.add_argument("--connections", type=int, default=4, help="MQTT connections per publisher process")
    parser.add_argument("--max-inflight", type=int, default=100, help="unacknowledged messages per connection")
    parser.add_argument("--seed", type=int, default=1, help="fault times, which worker is killed, the readings")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, data) even on success")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--mosquitto", type=Path, default=built_mosquitto(),
                        help="the broker binary (default: the one scripts/build-mosquitto.sh built, "
                             "Mosquitto 2.1.2 with persist-sqlite)")
    args = parser.parse_args()
    if args.devices < 1 or args.messages < args.devices:
        parser.error("--messages must be at least --devices")
    if args.mosquitto is None:
        parser.error("no broker: run `bash scripts/build-mosquitto.sh` (Mosquitto 2.1.2, the one pilotlab ships) "
                     "or pass --mosquitto PATH")
    try:
        install: MosquittoInstall | None = mosquitto_install(args.mosquitto)
    except ConfigError as exc:
        parser.error(str(exc))
    if install is None:
        parser.error(f"--mosquitto {args.mosquitto}: no such broker")
    args.mosquitto = install
    workdir = Path(tempfile.mkdtemp(prefix="pilotlab-faultrun-"))
    code = 1
    try:
        code = execute(args, workdir)
    except BaseException:
        traceback.print_exc()
        raise
    finally:
        if code == 0 and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"work dir kept: {workdir} (worker logs, broker log, PostgreSQL log)")
    sys.exit(code)


if __name__ == "__main__":
    main()
