"""`pilotlab demo`: the whole stack on one machine, on embedded defaults, until Ctrl-C.

    database   --database-url, else an embedded PostgreSQL in <data-dir>/postgres
    broker     --mqtt-url, else an embedded broker in <data-dir>/broker (mosquitto, else iotcore)
    then       migrate, seed the demo pilot, and run as child processes of the same Python:
               `pilotlab ingest --worker-id demo-1`, `pilotlab api`, `pilotlab simulate --speed 20`

Services reach the children through PILOTLAB_DATABASE_URL, PILOTLAB_MQTT_URL and
PILOTLAB_API_PORT; the `pilotlab` command in another terminal reaches them through
<data-dir>/demo.json (pilotlab.demo_state), written once the API listens, removed at the stop.
The children run in their own sessions, so a Ctrl-C in the terminal reaches only this process,
which stops everything in data-flow order: simulator, ingest (SIGTERM: it commits and acks what
it holds), api, broker, database; each step escalates to SIGKILL after its share of a 15 s budget.
A child that exits on its own is reported with its exit code and the stack is stopped the same
way (exit code 1). Children also get a parent-death signal, so even a SIGKILLed demo leaves
nothing running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Literal, cast

from pilotlab.demo_state import DemoState, remove_state, write_state
from pilotlab.embedded.lifetime import die_with_parent, stop_process
from pilotlab.embedded.ports import accepts_connections, free_port
from pilotlab.errors import ServiceUnavailable
from pilotlab.settings import Settings

SIMULATOR_SPEED = 20  # devices declare 30-60 s intervals: every 1.5-3 s at this speed
API_START_TIMEOUT_S = 30.0
SUPERVISE_POLL_S = 0.2
DEMO_FIRST_SCORE_S, DEMO_SCORE_EVERY_S = 10.0, 60.0  # the demo's scorecard: its pilot scored and stored
# Stop budget per step, in stop order; the sum stays under the promised 15 s.
STOP_TIMEOUTS_S = {"simulator": 2.0, "ingest": 5.0, "api": 2.5, "broker": 2.0, "database": 2.5}


class _StopRequested(Exception):
    """SIGINT or SIGTERM arrived: leave whatever step we are in and shut down."""


@dataclass
class _Service:
    """One thing the demo started, with how to stop it and how to tell if it died."""

    name: str
    stop: Callable[[float], None]
    exit_code: Callable[[], int | None]


class _Stack:
    """What the demo started, stopped in the reverse of start order (the data-flow order)."""

    def __init__(self, stop_flag: threading.Event) -> None:
        self.services: list[_Service] = []
        self.stop_flag = stop_flag

    def add(self, service: _Service) -> None:
        self.services.append(service)

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "pilotlab", *args], env=env, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=die_with_parent(),
        )
        self.add(_Service(name, lambda timeout: _stop_child(process, timeout), process.poll))
        return process

    def check(self) -> None:
        if self.stop_flag.is_set():
            raise _StopRequested

    def first_failure(self) -> tuple[str, int] | None:
        for service in self.services:
            code = service.exit_code()
            if code is not None:
                return service.name, code
        return None

    def shutdown(self) -> None:
        for service in reversed(self.services):
            try:
                service.stop(STOP_TIMEOUTS_S.get(service.name, 2.0))
            except Exception as exc:  # noqa: BLE001 - keep stopping the rest
                _say(f"stopping {service.name} failed: {exc}", err=True)
        self.services.clear()


def run_demo(settings: Settings, devices_per_kind: int = 3, broker: str = "auto") -> int:
    """Run the demo stack until SIGINT/SIGTERM (returns 0) or until a child dies (returns 1).

    Raises ServiceUnavailable if a configured database or broker cannot be reached.
    """
    stop_flag = threading.Event()
    stack = _Stack(stop_flag)
    restore = _catch_stop_signals(stop_flag)
    try:
        try:
            return _run(settings, devices_per_kind, broker, stack)
        except _StopRequested:
            return 0
        finally:
            if stack.services:
                _say("stopping")
                started = time.monotonic()
                stack.shutdown()
                _say(f"stopped in {time.monotonic() - started:.1f} s")
    finally:
        restore()


def _run(settings: Settings, devices_per_kind: int, broker: str, stack: _Stack) -> int:
    from store.connection import redact
    from store.migrate import migrate

    data_dir = settings.data_dir.expanduser().absolute()
    database_url, database_note = _database(settings, data_dir, stack)
    stack.check()
    mqtt_url, broker_note = _broker(settings, data_dir, broker, stack)
    stack.check()
    migrate(database_url)
    from simulators.seed import seed_demo_pilot  # after the checks: they need no simulator code

    pilot = seed_demo_pilot(database_url, devices_per_kind=devices_per_kind)
    from simulators.seed import seed_demo_links

    seed_demo_links(database_url)  # LoRaWAN devices and a Wi-Fi gateway (issue 3)
    from access.api_keys import create_demo_key  # the API needs a key (issue 6); printed once below

    api_key = create_demo_key(database_url)
    stack.check()

    api_port = _api_port(settings)
    env = _child_env(settings, database_url, mqtt_url, api_port)
    from pilotlab.scoring_commands import demo_scoring_env  # signing key + demo rubric (issue 4)

    scoring_env = demo_scoring_env(data_dir)
    env.update(scoring_env)
    env["PILOTLAB_LPWA_SOURCES"] = _demo_lpwa_sources(mqtt_url, v5_only="embedded iotcore" in broker_note)
    stack.spawn("ingest", ["ingest", "--worker-id", "demo-1"], env)
    stack.spawn("api", ["api"], env)
    _wait_for_api(settings.api_host, api_port, stack)
    base = f"http://{settings.api_host}:{api_port}"
    state = DemoState(pid=os.getpid(), database_url=database_url, mqtt_url=mqtt_url, api_url=base,
                      signing_key=scoring_env["PILOTLAB_SIGNING_KEY"], rubric=scoring_env["PILOTLAB_RUBRIC"])
    state_file = write_state(data_dir, state)  # the CLI in another terminal reads it (pilotlab.demo_state)
    stack.add(_Service("state file", lambda timeout: remove_state(data_dir, state.pid), lambda: None))
    stack.spawn("simulator", ["simulate", "--pilot", str(pilot.pilot_id), "--speed", str(SIMULATOR_SPEED)], env)

    _start_link_simulators(mqtt_url, str(pilot.pilot_id), stack)
    _start_demo_scorer(database_url, str(pilot.pilot_id), Path(scoring_env["PILOTLAB_RUBRIC"]), stack)

    from api.pages.signin_links import demo_link  # the web pages (issue 16): a one-time link signs the admin in

    signin_link = demo_link(database_url, api_key, base)
    device_ids = [str(d) for d in pilot.device_ids]
    first = device_ids[0] if device_ids else "<device-id>"
    _say("\n".join([
        "running (Ctrl-C stops it)",
        f"  database   {redact(database_url)}{database_note}",
        f"  broker     {mqtt_url}{broker_note}",
        f"  pilot      {pilot.pilot_id}: {len(device_ids)} simulated devices, reporting every few seconds",
        f"  devices    {' '.join(device_ids)}",
        f"  API        {base}",
        f"  API docs   {base}/docs   (in a browser: Authorize, paste the key below, then Try it out)",
        f"  API key    {api_key}   (admin; shown once: send it as Authorization: Bearer <key>)",
        "  links      need that header: opened in a browser they answer 401; use curl as on the next line, or /docs",
        f"  telemetry  curl -s -H 'Authorization: Bearer {api_key}' '{base}/devices/{first}/telemetry'",
        f"  health     {base}/devices/{first}/health",
        f"             {base}/pilots/{pilot.pilot_id}/health",
        f"  LoRaWAN    demo-lora-env-1 (ChirpStack), demo-lora-env-2 (The Things Stack): "
        f"{base}/devices/demo-lora-env-1/receptions, {base}/devices/demo-lora-env-2/uplink-loss",
        f"  Wi-Fi gw   {base}/gateways/demo-wifi-gw-1/health, {base}/devices/demo-wifi-switch-1/telemetry",
        f"  score      {base}/pilots/{pilot.pilot_id}/score   (records: POST {base}/pilots/{pilot.pilot_id}/records)",
        f"  CLI        {_pilotlab_command()} score {pilot.pilot_id}   (another terminal, this directory: uses this "
        f"demo's database, rubric and signing key, from {_shown(state_file)})",
        f"  web pages  {signin_link}   (open in a browser, click Sign in: the demo admin; one-time, for 24 h)",
    ]))

    while True:
        stack.check()
        failure = stack.first_failure()
        if failure is not None:
            name, code = failure
            _say(f"{name} exited unexpectedly with code {code}; stopping the demo", err=True)
            return 1
        stack.stop_flag.wait(SUPERVISE_POLL_S)


def _pilotlab_command() -> str:
    """How to run `pilotlab` from here: the venv's script, relative to the current directory when
    inside it (`.venv/bin/pilotlab`); `pilotlab` if the venv is not where this Python lives."""
    script = Path(sys.executable).parent / "pilotlab"
    return _shown(script) if script.exists() else "pilotlab"


def _shown(path: Path) -> str:
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _database(settings: Settings, data_dir: Path, stack: _Stack) -> tuple[str, str]:
    if settings.database_url is not None:
        from store.connection import connect

        connect(settings.database_url).close()  # ServiceUnavailable with one line if unreachable
        return settings.database_url, ""
    from pilotlab.embedded.postgres import EmbeddedPostgres

    server = EmbeddedPostgres(data_dir / "postgres")
    stack.add(_Service("database", lambda timeout: server.stop(timeout=timeout), server.exit_code))
    url = server.start()
    return url, f"  (embedded PostgreSQL 16, data in {server.data_dir}, up in {server.start_seconds:.1f} s)"


def _broker(settings: Settings, data_dir: Path, prefer: str, stack: _Stack) -> tuple[str, str]:
    if settings.mqtt_url is not None:
        endpoint = settings.mqtt
        if not accepts_connections(endpoint.port, endpoint.host, timeout=3.0):
            raise ServiceUnavailable(f"cannot reach the MQTT broker at {endpoint.host}:{endpoint.port}")
        return settings.mqtt_url, ""
    from pilotlab.embedded.broker import EmbeddedBroker

    choice = cast(Literal["auto", "mosquitto", "iotcore"], prefer)
    server = EmbeddedBroker(data_dir / "broker", prefer=choice)
    stack.add(_Service("broker", lambda timeout: server.stop(timeout=timeout), server.exit_code))
    url = server.start()
    return url, f"  (embedded {server.kind}, data in {server.data_dir})"


def _api_port(settings: Settings) -> int:
    if settings.api_port == 0:
        return free_port(settings.api_host)
    if accepts_connections(settings.api_port, settings.api_host):
        raise ServiceUnavailable(f"port {settings.api_port} on {settings.api_host} is in use: pass --api-port")
    return settings.api_port


def _child_env(settings: Settings, database_url: str, mqtt_url: str, api_port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "PILOTLAB_DATABASE_URL": database_url,
        "PILOTLAB_MQTT_URL": mqtt_url,
        "PILOTLAB_API_PORT": str(api_port),
        "PILOTLAB_API_HOST": settings.api_host,
        "PYTHONUNBUFFERED": "1",
    })
    if settings.mqtt_username is not None:
        env["PILOTLAB_MQTT_USERNAME"] = settings.mqtt_username
    if settings.mqtt_password is not None:
        env["PILOTLAB_MQTT_PASSWORD"] = settings.mqtt_password.get_secret_value()
    return env


def _wait_for_api(host: str, port: int, stack: _Stack) -> None:
    """Start the simulator only once the API (and so the database) is up; fail fast otherwise."""
    deadline = time.monotonic() + API_START_TIMEOUT_S
    while not accepts_connections(port, host):
        stack.check()
        failure = stack.first_failure()
        if failure is not None:
            raise ServiceUnavailable(f"{failure[0]} exited with code {failure[1]} while the demo was starting")
        if time.monotonic() > deadline:
            raise ServiceUnavailable(f"the API did not listen on {host}:{port} within {API_START_TIMEOUT_S:g} s")
        time.sleep(0.1)


def _stop_child(process: subprocess.Popen[bytes], timeout: float) -> None:
    # SIGTERM: ingest commits and acks what it holds; uvicorn and the simulator exit cleanly.
    stop_process(process, sig=signal.SIGTERM, timeout=timeout)


def _catch_stop_signals(stop_flag: threading.Event) -> Callable[[], None]:
    """SIGINT/SIGTERM set `stop_flag` instead of interrupting whatever runs; returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_flag.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def _say(message: str, *, err: bool = False) -> None:
    print(f"pilotlab demo: {message}", file=sys.stderr if err else sys.stdout, flush=True)


def _demo_lpwa_sources(mqtt_url: str, *, v5_only: bool) -> str:
    """ChirpStack publishing to the demo broker, and a TTS-like MQTT server (3.1.1, QoS 0, as The
    Things Stack's is), which in the demo is the same broker. iotcore's listener speaks only MQTT
    v5, so on it the TTS source connects with v5."""
    import orjson

    return orjson.dumps([
        {"name": "chirpstack", "network_server": "chirpstack"},
        {"name": "tts", "network_server": "tts", "url": mqtt_url, "protocol": "5" if v5_only else "3.1.1",
         "qos": 0, "shared": False},
    ]).decode()


def _start_link_simulators(mqtt_url: str, pilot_id: str, stack: _Stack) -> None:
    """The LPWA path (lossy, multi-gateway, delayed, rejoining) and the Wi-Fi gateway path, in
    threads of this process, stopped with the rest of the stack."""
    from devices.kinds import DeviceKind
    from pilotlab.settings import MqttEndpoint
    from simulators.device import SimulatedDevice
    from simulators.lpwa import RadioConditions, lpwa_devices, run_lpwa
    from simulators.seed import DEMO_GATEWAY_DEVICES, DEMO_GATEWAY_ID, DEMO_LORA_DEVICES, DEMO_LPWA_APPLICATION
    from simulators.wifi_gateway import WifiGateway, run_gateway

    endpoint = MqttEndpoint(mqtt_url)
    lora = [SimulatedDevice(device_id, pilot_id, kind, 60 / SIMULATOR_SPEED) for device_id, kind, _ in DEMO_LORA_DEVICES]
    devices = lpwa_devices(lora, {d: eui for d, _, eui in DEMO_LORA_DEVICES}, DEMO_LPWA_APPLICATION)
    conditions = RadioConditions(loss=0.05, gateways=2, duplicates=0.1, max_delay_s=5, rejoin_every=200)
    switches = [SimulatedDevice(d, pilot_id, DeviceKind.SMART_SWITCH, 60) for d in DEMO_GATEWAY_DEVICES]
    gateway = WifiGateway(DEMO_GATEWAY_ID, pilot_id, switches)
    lpwa_stop, gateway_stop = threading.Event(), threading.Event()
    _thread_service(stack, "lpwa simulator", lpwa_stop,
                    lambda: run_lpwa(endpoint, devices, conditions, speed=1.0, stop=lpwa_stop))
    _thread_service(stack, "wifi gateway simulator", gateway_stop,
                    lambda: run_gateway(endpoint, gateway, 60 / SIMULATOR_SPEED, gateway_stop))


def _start_demo_scorer(database_url: str, pilot_id: str, rubric_path: Path, stack: _Stack) -> None:
    """Score the demo pilot now and then and store it as the daily rescoring would, so its
    scorecard page has a score to show (a real pilot is scored once a day, after its day closes)."""
    import psycopg

    from pilotlab.errors import PilotlabError
    from scoring.rubric import load_rubric
    from scoring.scorer import score_pilot
    from scoring.stored_breakdowns import save_score

    rubric = load_rubric(rubric_path)
    stop = threading.Event()

    def run() -> None:
        wait = DEMO_FIRST_SCORE_S
        while not stop.wait(wait):
            wait = DEMO_SCORE_EVERY_S
            try:
                with psycopg.connect(database_url, autocommit=True) as conn:
                    save_score(conn, score_pilot(conn, pilot_id, rubric))
            except (psycopg.Error, PilotlabError) as exc:
                _say(f"scoring the demo pilot failed, trying again in {DEMO_SCORE_EVERY_S:.0f} s: {exc}", err=True)

    _thread_service(stack, "demo scorer", stop, run)


def _thread_service(stack: _Stack, name: str, stop: threading.Event, run: Callable[[], object]) -> None:
    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()

    def stop_thread(timeout: float) -> None:
        stop.set()
        thread.join(timeout)

    stack.add(_Service(name, stop_thread, lambda: None if thread.is_alive() else 1))
