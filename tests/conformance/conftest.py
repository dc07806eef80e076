"""One conformance run over the real broker and ingest worker, shared by the tests here.

A pilot of simulated devices, each 2 s apart (its profile declares it): a conformant one, one per
non-conformant mode of simulators.nonconformant, one whose broker account was revoked, one that
never publishes, one without a profile and one whose profile declares no battery; and LoRaWAN
devices published as ChirpStack events (one joining with a good codec, one whose profile lacks the
fPort it sends on, one silent). `pilotlab conformance run` observes them all for RUN_S seconds as
a child process while they publish, then judges, signs and stores a report each, and writes its
bundle. The whole run takes about RUN_S + 5 s.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from access import credentials
from devices.kinds import DeviceKind
from devices.profiles import ProfileDefinition
from pilotlab.settings import MqttEndpoint, NetworkServerSource, Settings
from scoring.signing import generate_key
from simulators.device import SimulatedDevice
from simulators.fleet import Fleet
from simulators.lpwa import LpwaDevice, RadioConditions, join_event, run_lpwa
from simulators.nonconformant import Misbehaviour
from store import profiles
from tests.ingest.conftest import ThreadWorker
from tests.support import publish, wait_until

RUN_S = 12
INTERVAL_S = 2
DECLARED = ["temperature_c", "humidity_pct", "pm25_ugm3", "battery_pct"]

# device name -> (misbehaviour, measurement omitted, profile measurements or None)
NATIVE: dict[str, tuple[Misbehaviour | None, str | None, list[str] | None]] = {
    "ok": (None, None, DECLARED),
    "wrong-topic": (Misbehaviour.WRONG_TOPIC, None, DECLARED),
    "drifting-clock": (Misbehaviour.DRIFTING_CLOCK, None, DECLARED),
    "wrong-interval": (Misbehaviour.WRONG_INTERVAL, None, DECLARED),
    "bad-payload": (Misbehaviour.BAD_PAYLOAD, None, DECLARED),
    "missing-measurement": (Misbehaviour.MISSING_MEASUREMENT, "humidity_pct", DECLARED),
    "no-battery": (Misbehaviour.MISSING_MEASUREMENT, "battery_pct", DECLARED),
    "counter-reset": (Misbehaviour.COUNTER_RESET, None, DECLARED),
    "qos0": (Misbehaviour.QOS0, None, DECLARED),
    "revoked": (None, None, DECLARED),
    "plain": (None, None, None),
    "mains": (None, None, ["temperature_c", "humidity_pct"]),
}
SILENT = "silent"
LORAWAN = ("lora-ok", "lora-badcodec", "lora-silent")


@dataclass(frozen=True)
class RunOutcome:
    database_url: str
    pilot_id: str
    firm_id: str
    device: dict[str, str]               # name -> device id
    public_key: Path
    signing_key: Path
    out: Path
    exit_code: int
    stdout: str
    started_at: datetime

    def report(self, name: str) -> dict[str, Any]:
        """The signed report's record of the device called `name`, as stored."""
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute("SELECT document FROM conformance_report WHERE device_id = %s",
                               (self.device[name],)).fetchone()
        assert row is not None, f"no report for {name}"
        record: dict[str, Any] = json.loads(bytes(row[0]))["record"]
        return record

    def check(self, name: str, check: str) -> dict[str, Any]:
        found = [c for c in self.report(name)["checks"] if c["name"] == check]
        assert len(found) == 1
        return found[0]

    def bundle(self, name: str) -> Path:
        [path] = self.out.glob(f"conformance-{self.device[name]}-cr_*.json")
        return path


def _profile(conn: psycopg.Connection, profile_id: str, measurements: list[str], uplinks: dict[str, Any]) -> None:
    profiles.create(conn, profile_id, None, ProfileDefinition.model_validate({
        "vendor": "Test", "model": profile_id, "firmware_version": "1.0", "kind": "env_sensor",
        "reporting_interval_s": INTERVAL_S, "measurements": measurements, "uplinks": uplinks}))


def _register(url: str, tag: str) -> tuple[str, str, dict[str, str], dict[str, str]]:
    firm, pilot = f"cf-firm-{tag}", f"cf-pilot-{tag}"
    ids = {name: f"cf-{name}-{tag}" for name in (*NATIVE, SILENT, *LORAWAN)}
    euis = {name: secrets.token_hex(8) for name in LORAWAN}
    env_port = {"codec": {"type": "pilotlab", "layout": "env_sensor"}}
    status_port = {"codec": {"type": "pilotlab", "layout": "status"}, "channel": "status"}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO firm (id, name) VALUES (%s, 'Conformance test')", (firm,))
        conn.execute("INSERT INTO pilot (id, firm_id, name, site, starts_at, status) VALUES (%s, %s, 'c', 's', %s, "
                     "'planned')", (pilot, firm, datetime.now(UTC) - timedelta(days=1)))
        for name, device_id in ids.items():
            lora = name in LORAWAN
            conn.execute("INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, dev_eui, "
                         "commissioned_at) VALUES (%s, %s, 'env_sensor', %s, %s, %s, now() - interval '1 day')",
                         (device_id, pilot, "lpwa" if lora else "wifi", INTERVAL_S, euis.get(name)))
            measurements = NATIVE[name][2] if name in NATIVE else DECLARED
            if measurements is not None:
                uplinks = {"2": status_port} if name == "lora-badcodec" else {"1": env_port, "2": status_port}
                _profile(conn, f"cf-profile-{name}-{tag}", measurements, uplinks if lora else {})
                profiles.assign(conn, device_id, f"cf-profile-{name}-{tag}")
            if not lora:
                credentials.issue(conn, "device", device_id)
        credentials.revoke(conn, ids["revoked"], "lost")
    return firm, pilot, ids, euis


def _cli(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTLAB_")}
    env["PILOTLAB_DATA_DIR"] = "/nonexistent/pilotlab-no-demo"
    return subprocess.Popen([sys.executable, "-m", "pilotlab", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def _runs_started(url: str, device_ids: list[str]) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM conformance_run WHERE device_id = ANY(%s)", (device_ids,)).fetchone()
    return bool(row and row[0] == len(device_ids))


@pytest.fixture(scope="session")
def conformance_run(database_url: str, mqtt_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunOutcome]:
    tag = secrets.token_hex(4)
    firm, pilot, ids, euis = _register(database_url, tag)
    root = tmp_path_factory.mktemp("conformance")
    key = root / "signing.pem"
    generate_key(key)
    out = root / "reports"
    out.mkdir()
    app = f"cf-app-{tag}"
    worker = ThreadWorker(Settings(
        database_url=database_url, mqtt_url=mqtt_url, share_group=f"cf-{tag}", worker_id="w1", session_expiry_s=120,
        batch_linger_ms=5, lpwa_sources=[NetworkServerSource(name="cs", network_server="chirpstack",
                                                             topics=(f"application/{app}/device/+/event/+",))])).start()
    endpoint = MqttEndpoint(mqtt_url)
    try:
        started_at = datetime.now(UTC)
        cli = _cli("conformance", "run", *ids.values(), "--duration", f"{RUN_S}s", "--out", str(out),
                   "--database-url", database_url, "--signing-key", str(key))
        wait_until(lambda: _runs_started(database_url, list(ids.values())), 20, what="the runs to start")
        fleets = [Fleet(endpoint, [SimulatedDevice(ids[name], pilot, DeviceKind.ENV_SENSOR, INTERVAL_S)],
                        client_id=f"cf-sim-{name}-{tag}", session_expiry_s=30, duration_s=RUN_S + 0.5,
                        misbehaviour=mode, omit=omit) for name, (mode, omit, _) in NATIVE.items()]
        threads = [threading.Thread(target=fleet.run, daemon=True) for fleet in fleets]
        stop_lpwa = threading.Event()
        lora = [LpwaDevice(SimulatedDevice(ids[name], pilot, DeviceKind.ENV_SENSOR, INTERVAL_S), euis[name], "chirpstack",
                           app) for name in ("lora-ok", "lora-badcodec")]
        publish(mqtt_url, [join_event(lora[0], datetime.now(UTC))])
        threads.append(threading.Thread(target=run_lpwa, args=(endpoint, lora, RadioConditions()),
                                        kwargs={"stop": stop_lpwa}, daemon=True))
        for thread in threads:
            thread.start()
        stdout, stderr = cli.communicate(timeout=RUN_S + 60)
        stop_lpwa.set()
        for thread in threads:
            thread.join(20)
    finally:
        worker.stop()
    assert cli.returncode in (0, 1), stderr
    yield RunOutcome(database_url, pilot, firm, ids, Path(f"{key}.pub"), key, out, cli.returncode, stdout, started_at)


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """`pilotlab …` as a child process without the environment's PILOTLAB_ settings."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        process = _cli(*args)
        stdout, stderr = process.communicate(timeout=60)
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

    return run
