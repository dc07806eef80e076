"""An MQTT broker of our own on 127.0.0.1: Mosquitto if installed, else iotcore's rumqttd.

- mosquitto: the binary from PATH (or the one given), with a config generated from
  deploy/mosquitto/mosquitto.conf (the single source of pilotlab's tuning), the persistence file
  for its version, a loopback listener, the persistence directory and a log file in `data_dir`.
  Mosquitto 2.1 with its persist-sqlite plugin (what pilotlab ships; `scripts/build-mosquitto.sh`
  builds it) gets deploy/mosquitto/persistence-sqlite.conf: sessions, their shared subscriptions
  and queued QoS 1 messages survive `stop()` + `start()` and `kill()` + `start()`. Older ones get
  persistence-file.conf, which keeps sessions and queues across a clean stop but forgets shared
  subscriptions, so a restart can lose messages: a one-line warning says so.
- iotcore: rumqttd compiled into a wheel, run in a child Python process
  (`python -m pilotlab.embedded.iotcore_broker`). A newcomer without Mosquitto gets it from pip.
  Only an MQTT v5 listener (the pilotlab contract is v5); no persistence: sessions live as long
  as the process.

The port is chosen once and kept across restarts. Measured here (2 cores): mosquitto accepts
connections 0.03 s after start, iotcore 0.2 s (a Python interpreter plus the wheel's import).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
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


# What scripts/build-mosquitto.sh builds (and deploy/mosquitto/Dockerfile ships).
SHIPPED_MOSQUITTO_VERSION = "2.1.2"
PERSIST_PLUGIN = "mosquitto_persist_sqlite.so"


def tuned_mosquitto_conf() -> Path:
    """deploy/mosquitto/mosquitto.conf of this source tree."""
    return Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "mosquitto.conf"


def persistence_conf(restart_safe: bool) -> Path:
    """The persistence file for a broker with (2.1) or without (2.0) the persist-sqlite plugin."""
    name = "persistence-sqlite.conf" if restart_safe else "persistence-file.conf"
    return tuned_mosquitto_conf().with_name(name)


def mosquitto_available() -> bool:
    return shutil.which("mosquitto") is not None and tuned_mosquitto_conf().is_file()


@dataclass(frozen=True)
class MosquittoInstall:
    """A Mosquitto broker binary, its version and, from 2.1, the persist-sqlite plugin beside it."""

    binary: Path
    version: tuple[int, int, int]
    persist_plugin: Path | None

    @property
    def restart_safe(self) -> bool:
        """Keeps sessions, shared subscriptions and queued messages across a restart or crash."""
        return self.persist_plugin is not None

    def __str__(self) -> str:
        return f"mosquitto {'.'.join(map(str, self.version))} ({self.binary})"


def mosquitto_install(binary: str | Path | None = None) -> MosquittoInstall | None:
    """The Mosquitto at `binary` (default: `mosquitto` on PATH); None if there is none."""
    found = shutil.which(str(binary) if binary is not None else "mosquitto")
    return _inspect(Path(found).absolute()) if found else None


def built_mosquitto() -> Path | None:
    """The broker scripts/build-mosquitto.sh built into its default cache directory, if it did."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    prefix = cache / "pilotlab" / f"mosquitto-{SHIPPED_MOSQUITTO_VERSION}"
    return prefix / "sbin" / "mosquitto" if (prefix / ".built-by-pilotlab").is_file() else None


@functools.lru_cache(maxsize=8)
def _inspect(binary: Path) -> MosquittoInstall:
    try:
        out = subprocess.run([str(binary), "-h"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"cannot run {binary}: {exc}") from None
    match = re.search(r"mosquitto version (\d+)\.(\d+)\.(\d+)", out)
    if match is None:
        raise ConfigError(f"{binary} is not a Mosquitto broker (`{binary.name} -h` names no version)")
    version = (int(match[1]), int(match[2]), int(match[3]))
    plugin = None
    if version >= (2, 1, 0):  # lib/ of a source build and the upstream images, lib/<triplet>/ of Debian's
        prefix = binary.resolve().parent.parent
        for directory in (prefix / "lib", *sorted(prefix.glob("lib/*-linux-*")), prefix / "lib64"):
            if (directory / PERSIST_PLUGIN).is_file():
                plugin = directory / PERSIST_PLUGIN
                break
    return MosquittoInstall(binary, version, plugin)


class EmbeddedBroker:
    """A broker process of our own, restartable on the same port and persistence directory."""

    def __init__(self, data_dir: Path, prefer: Literal["auto", "mosquitto", "iotcore"] = "auto",
                 port: int | None = None, mosquitto: str | Path | None = None) -> None:
        """`mosquitto`: the broker binary to run (default: `mosquitto` on PATH)."""
        self.data_dir = Path(data_dir).expanduser().absolute()
        self.mosquitto = None if prefer == "iotcore" else mosquitto_install(mosquitto)
        self.kind: BrokerKind = _choose_kind(prefer, self.mosquitto, mosquitto)
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

    @property
    def restart_safe(self) -> bool:
        """Sessions, shared subscriptions and queued messages survive a restart or a crash."""
        return self.kind == "mosquitto" and self.mosquitto is not None and self.mosquitto.restart_safe

    def start(self) -> str:
        """Start the broker and wait until it accepts connections; return its mqtt:// URL."""
        if self.is_running:
            return self.url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        first_start = self.port is None
        if first_start and self.kind == "mosquitto" and not self.restart_safe:
            log.warning("%s has no persist-sqlite plugin: a broker restart can lose messages published before "
                        "ingest resubscribes (Mosquitto 2.1 keeps them: scripts/build-mosquitto.sh, "
                        "deploy/mosquitto/README.md)", self.mosquitto)
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
        if self.mosquitto is None:
            raise ServiceUnavailable("mosquitto is not on PATH (install the 'mosquitto' package or use iotcore)")
        conf = self.data_dir / "mosquitto.conf"
        conf.write_text(mosquitto_config(self.port or 0, self.data_dir, self.mosquitto.persist_plugin),
                        encoding="utf-8")
        return [str(self.mosquitto.binary), "-c", str(conf)]

    def _iotcore_args(self) -> list[str]:
        conf = self.data_dir / "rumqttd.toml"
        conf.write_text(rumqttd_config(self.port or 0), encoding="utf-8")
        return [sys.executable, "-m", "pilotlab.embedded.iotcore_broker", "--config", str(conf)]


def _choose_kind(prefer: str, install: MosquittoInstall | None, asked: str | Path | None) -> BrokerKind:
    if asked is not None and install is None:
        raise ConfigError(f"no Mosquitto broker at {asked}")
    if prefer == "mosquitto":
        if install is None:
            raise ConfigError("--broker mosquitto: no mosquitto binary on PATH (Debian package 'mosquitto')")
        if not tuned_mosquitto_conf().is_file():
            raise ConfigError(f"--broker mosquitto: tuned config {tuned_mosquitto_conf()} not found")
        return "mosquitto"
    if prefer == "iotcore":
        return "iotcore"
    if prefer == "auto":
        return "mosquitto" if install is not None and tuned_mosquitto_conf().is_file() else "iotcore"
    raise ConfigError(f"unknown broker {prefer!r}: choose auto, mosquitto or iotcore")


def mosquitto_config(port: int, data_dir: Path, persist_plugin: Path | None = None) -> str:
    """The tuned deploy config and the persistence file for the broker (persistence-sqlite.conf
    with `persist_plugin`, else persistence-file.conf), minus listener/persistence/log lines, plus ours."""
    kept = []
    shipped = [tuned_mosquitto_conf(), persistence_conf(persist_plugin is not None)]
    for line in "\n".join(path.read_text(encoding="utf-8") for path in shipped).splitlines():
        words = line.split()
        if words and not words[0].startswith("#") and words[0] in _OWN_DIRECTIVES:
            continue
        if persist_plugin is not None and words[:1] == ["plugin"] and words[-1].endswith(PERSIST_PLUGIN):
            line = f"plugin {persist_plugin}"
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
