"""An MQTT broker of our own on 127.0.0.1: Mosquitto if installed, else iotcore's rumqttd.

- mosquitto: the binary from PATH, with a config generated from deploy/mosquitto/mosquitto.conf
  (the single source of pilotlab's tuning) plus a loopback listener, the persistence directory
  and a log file in `data_dir`. `stop()` is a SIGTERM, on which Mosquitto writes its persistence
  file, so persistent sessions and their queued QoS 1 messages survive `stop()` + `start()`.
- iotcore: rumqttd compiled into a wheel, run in a child Python process
  (`python -m pilotlab.embedded.iotcore_broker`). A newcomer without Mosquitto gets it from pip.
  Only an MQTT v5 listener (the pilotlab contract is v5); no persistence: sessions live as long
  as the process.

The port is chosen once and kept across restarts. Measured here (2 cores): mosquitto accepts
connections 0.03 s after start, iotcore 0.2 s (a Python interpreter plus the wheel's import).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Literal

from pilotlab.embedded.lifetime import die_with_parent, stop_process
from pilotlab.embedded.ports import LOOPBACK, accepts_connections, free_port, wait_until_listening
from pilotlab.errors import ConfigError, ServiceUnavailable

log = logging.getLogger(__name__)

BrokerKind = Literal["mosquitto", "iotcore"]
# The largest MQTT packet the broker takes: max_packet_size of deploy/mosquitto/mosquitto.conf (the
# reason for the number is there), repeated for rumqttd; tests hold the two equal.
MAX_PACKET_BYTES = 32_768
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0

# Directives the generated config sets itself; any active copy in the tuned file is dropped.
_OWN_DIRECTIVES = frozenset({"listener", "port", "bind_address", "persistence_location", "log_dest",
                             "pid_file", "user"})


def tuned_mosquitto_conf() -> Path:
    """deploy/mosquitto/mosquitto.conf of this source tree."""
    return Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "mosquitto.conf"


def mosquitto_available() -> bool:
    return shutil.which("mosquitto") is not None and tuned_mosquitto_conf().is_file()


class EmbeddedBroker:
    """A broker process of our own, restartable on the same port and persistence directory."""

    def __init__(self, data_dir: Path, prefer: Literal["auto", "mosquitto", "iotcore"] = "auto",
                 port: int | None = None) -> None:
        self.data_dir = Path(data_dir).expanduser().absolute()
        self.kind: BrokerKind = _choose_kind(prefer)
        self.port = port
        self.start_seconds: float | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise ServiceUnavailable(f"embedded {self.kind} broker in {self.data_dir} was never started")
        return f"mqtt://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self.kind}.log"

    def start(self) -> str:
        """Start the broker and wait until it accepts connections; return its mqtt:// URL."""
        if self.is_running:
            return self.url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        first_start = self.port is None
        for attempt in range(3):
            if first_start:
                self.port = free_port()
            assert self.port is not None
            if accepts_connections(self.port):
                if first_start:
                    continue  # someone took the free port between our check and now
                raise ServiceUnavailable(f"cannot restart the {self.kind} broker: port {self.port} is in use")
            try:
                self._launch()
                break
            except ServiceUnavailable:
                if not first_start or attempt == 2:
                    raise
        log.info("embedded %s broker at %s in %.2f s", self.kind, self.url, self.start_seconds or 0)
        return self.url

    def exit_code(self) -> int | None:
        """The broker's exit code if it died while we thought it running, else None."""
        return self._process.poll() if self._process is not None else None

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Clean stop: SIGTERM (Mosquitto saves its persistence file), SIGKILL after `timeout` s.

        Safe to call twice."""
        process, self._process = self._process, None
        if process is not None:
            stop_process(process, sig=signal.SIGTERM, timeout=timeout)

    def kill(self) -> None:
        """SIGKILL, for fault-injection tests: nothing is saved."""
        process, self._process = self._process, None
        if process is not None:
            stop_process(process, sig=signal.SIGKILL, timeout=STOP_TIMEOUT_S)

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals ---------------------------------------------------------------------------

    def _launch(self) -> None:
        assert self.port is not None
        args = self._mosquitto_args() if self.kind == "mosquitto" else self._iotcore_args()
        started = time.monotonic()
        with open(self.log_path, "ab") as log_file:
            self._process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                cwd=self.data_dir, start_new_session=True, preexec_fn=die_with_parent(),
            )
        try:
            wait_until_listening(self.port, what=f"the {self.kind} broker", process=self._process,
                                 timeout=START_TIMEOUT_S, log_hint=str(self.log_path))
        except BaseException:
            self.kill()
            raise
        self.start_seconds = time.monotonic() - started

    def _mosquitto_args(self) -> list[str]:
        binary = shutil.which("mosquitto")
        if binary is None:
            raise ServiceUnavailable("mosquitto is not on PATH (install the 'mosquitto' package or use iotcore)")
        conf = self.data_dir / "mosquitto.conf"
        conf.write_text(mosquitto_config(self.port or 0, self.data_dir), encoding="utf-8")
        return [binary, "-c", str(conf)]

    def _iotcore_args(self) -> list[str]:
        conf = self.data_dir / "rumqttd.toml"
        conf.write_text(rumqttd_config(self.port or 0), encoding="utf-8")
        return [sys.executable, "-m", "pilotlab.embedded.iotcore_broker", "--config", str(conf)]


def _choose_kind(prefer: str) -> BrokerKind:
    if prefer == "mosquitto":
        if shutil.which("mosquitto") is None:
            raise ConfigError("--broker mosquitto: no mosquitto binary on PATH (Debian package 'mosquitto')")
        if not tuned_mosquitto_conf().is_file():
            raise ConfigError(f"--broker mosquitto: tuned config {tuned_mosquitto_conf()} not found")
        return "mosquitto"
    if prefer == "iotcore":
        return "iotcore"
    if prefer == "auto":
        return "mosquitto" if mosquitto_available() else "iotcore"
    raise ConfigError(f"unknown broker {prefer!r}: choose auto, mosquitto or iotcore")


def mosquitto_config(port: int, data_dir: Path) -> str:
    """The tuned deploy config, minus listener/persistence/log lines, plus ours."""
    kept = []
    for line in tuned_mosquitto_conf().read_text(encoding="utf-8").splitlines():
        words = line.split()
        if words and not words[0].startswith("#") and words[0] in _OWN_DIRECTIVES:
            continue
        kept.append(line)
    import pwd

    user = pwd.getpwuid(os.getuid()).pw_name  # run as ourselves: no privilege drop, writable dirs
    kept += [
        "",
        f"# --- generated by pilotlab.embedded.broker for {data_dir} ---",
        f"user {user}",
        f"persistence_location {data_dir}/",
        "log_dest stderr",
        f"listener {port} {LOOPBACK}",
    ]
    return "\n".join(kept) + "\n"


def rumqttd_config(port: int) -> str:
    """rumqttd (iotcore) TOML: one MQTT v5 listener on loopback, generous limits."""
    return f"""\
# generated by pilotlab.embedded.broker
id = 0

[router]
id = 0
max_connections = 10010
# messages kept per client before the router pauses it (default 200)
max_outgoing_packet_count = 1000
max_segment_size = 104857600
max_segment_count = 10

[v5.1]
name = "v5-1"
listen = "{LOOPBACK}:{port}"
next_connection_delay_ms = 1
    [v5.1.connections]
    connection_timeout_ms = 60000
    # mosquitto.conf's max_packet_size: larger packets end the connection
    max_payload_size = {MAX_PACKET_BYTES}
    max_inflight_count = 1000
"""
