"""Ingest workers run for real: in a thread of the test (to read their stats) or as
`python -m pilotlab ingest` child processes (to kill them)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ingest.worker import IngestStats, IngestWorker
from pilotlab.settings import Settings
from tests.support import RegisteredPilot, register_pilot


class ThreadWorker:
    def __init__(self, settings: Settings) -> None:
        self.worker = IngestWorker(settings)
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.worker.run(self._stop)
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def start(self) -> ThreadWorker:
        self._thread.start()
        while not self.worker.ready.wait(0.05):
            if self.error:
                raise self.error
            assert self._thread.is_alive(), "worker thread ended before it was ready"
        return self

    @property
    def stats(self) -> IngestStats:
        return self.worker.stats

    def stop(self) -> IngestStats:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), "worker did not stop within 30 s"
        if self.error:
            raise self.error
        return self.worker.stats


class ProcessWorker:
    """`pilotlab ingest` as a child process, killable."""

    def __init__(self, env: dict[str, str], worker_id: str, log_path: Path) -> None:
        self.env, self.worker_id, self.log_path = env, worker_id, log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str) -> ProcessWorker:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pilotlab", "ingest", "--worker-id", self.worker_id, *extra],
            env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        return self

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self, timeout_s: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout_s)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)


@pytest.fixture
def pilot(database_url: str, unique_id: Callable[[str], str]) -> RegisteredPilot:
    return register_pilot(database_url, unique_id("ing"))


@pytest.fixture
def worker_settings(database_url: str, mqtt_url: str, unique_id: Callable[[str], str]) -> Callable[..., Settings]:
    """Settings for a worker of this test's own share group. Short session expiry: sessions
    left on the shared broker vanish soon after the test."""
    group = unique_id("grp")

    def make(**overrides: object) -> Settings:
        values: dict[str, object] = dict(database_url=database_url, mqtt_url=mqtt_url, share_group=group,
                                         worker_id="w1", session_expiry_s=120, batch_linger_ms=5)
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    return make


@pytest.fixture
def thread_worker(worker_settings: Callable[..., Settings]) -> Iterator[Callable[..., ThreadWorker]]:
    started: list[ThreadWorker] = []

    def start(**overrides: object) -> ThreadWorker:
        worker = ThreadWorker(worker_settings(**overrides)).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker._thread.is_alive():
            worker.stop()


@pytest.fixture
def process_worker(tmp_path: Path) -> Iterator[Callable[..., ProcessWorker]]:
    started: list[ProcessWorker] = []

    def make(settings: Settings) -> ProcessWorker:
        env = dict(os.environ)
        env.update({
            "PILOTLAB_DATABASE_URL": settings.require_database_url(),
            "PILOTLAB_MQTT_URL": settings.mqtt_url or "",
            "PILOTLAB_SHARE_GROUP": settings.share_group,
            "PILOTLAB_SESSION_EXPIRY_S": str(settings.session_expiry_s),
            "PILOTLAB_BATCH_LINGER_MS": str(settings.batch_linger_ms),
        })
        worker = ProcessWorker(env, settings.worker_id, tmp_path / f"worker-{settings.worker_id}.log")
        started.append(worker)
        return worker

    yield make
    for worker in started:
        worker.kill()
