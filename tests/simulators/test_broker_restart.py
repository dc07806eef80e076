"""Messages the fleet published while its broker was restarting are resent and acknowledged."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from pilotlab.settings import MqttEndpoint
from simulators.fleet import Fleet, synthetic_devices

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("mosquitto") is None, reason="needs a mosquitto binary on PATH")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_mosquitto(config: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([shutil.which("mosquitto") or "mosquitto", "-c", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = int(config.read_text().split()[1])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("mosquitto did not start")


def test_messages_published_while_the_broker_restarts_are_all_acknowledged_after_reconnect(tmp_path: Path) -> None:
    port = _free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    broker = _start_mosquitto(config)
    try:
        fleet = Fleet(MqttEndpoint(f"mqtt://127.0.0.1:{port}"), synthetic_devices("restart", 5, reporting_interval_s=1),
                      speed=10, duration_s=5.0)
        result: list[object] = []
        runner = threading.Thread(target=lambda: result.append(fleet.run()))
        runner.start()
        time.sleep(1.0)
        broker.kill()
        broker.wait()
        time.sleep(1.5)
        published_while_down, acknowledged_while_down = fleet.published, fleet.acknowledged
        broker = _start_mosquitto(config)
        runner.join(30)
        report = result[0]
        assert published_while_down > acknowledged_while_down  # some were waiting for the broker
        assert report.published == report.acknowledged  # type: ignore[attr-defined]
        assert report.published > published_while_down  # type: ignore[attr-defined]
    finally:
        broker.kill()
        broker.wait()
