"""Nothing is lost: killed, stopped, restarted and scaled-down workers end with
messages published = rows stored, each exactly once.

These run on a private broker with pilotlab's tuned config (the shared one keeps Mosquitto's
defaults, which drop QoS 1 messages past 1000 queued per client)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from devices.kinds import DeviceKind
from pilotlab.settings import MqttEndpoint
from simulators.burst import contract_messages, publish_burst
from simulators.device import SimulatedDevice
from tests.conftest import requires_mosquitto
from tests.support import RegisteredPilot, count_rows, wait_until

pytestmark = pytest.mark.slow


def _stream(pilot: RegisteredPilot, per_device: int) -> list[tuple[str, bytes]]:
    devices = [
        SimulatedDevice(pilot.switch_id, pilot.pilot_id, DeviceKind.SMART_SWITCH, 60),
        SimulatedDevice(pilot.tracker_id, pilot.pilot_id, DeviceKind.LOCATION_TRACKER, 60),
        SimulatedDevice(pilot.env_id, pilot.pilot_id, DeviceKind.ENV_SENSOR, 60),
    ]
    start = datetime.now(UTC) - timedelta(days=10)
    return list(contract_messages(devices, per_device, start, seed=7))


def _stored(database_url: str, pilot: RegisteredPilot) -> int:
    return count_rows(database_url, "SELECT count(*) FROM telemetry WHERE device_id = ANY(%s)", (pilot.device_ids,))


def _assert_each_stored_once(database_url: str, pilot: RegisteredPilot, per_device: int) -> None:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT device_id, count(*), count(DISTINCT seq), min(seq), max(seq) FROM telemetry "
            "WHERE device_id = ANY(%s) GROUP BY device_id ORDER BY device_id", (pilot.device_ids,)
        ).fetchall()
    assert sorted(rows) == sorted((d, per_device, per_device, 0, per_device - 1) for d in pilot.device_ids)


class _Publisher(threading.Thread):
    def __init__(self, url: str, messages: list[tuple[str, bytes]]) -> None:
        super().__init__(daemon=True)
        self.url, self.messages, self.acknowledged = url, messages, -1

    def run(self) -> None:
        self.acknowledged = publish_burst(MqttEndpoint(self.url), self.messages, timeout_s=120)


@requires_mosquitto
def test_a_worker_sigkilled_repeatedly_mid_stream_and_restarted_loses_nothing(
    own_broker: Callable, database_url: str, pilot: RegisteredPilot,
    worker_settings: Callable, process_worker: Callable,
) -> None:
    broker = own_broker("mosquitto")
    per_device = 3000
    messages = _stream(pilot, per_device)
    worker = process_worker(worker_settings(mqtt_url=broker.url, worker_id="killme")).start()
    publisher = _Publisher(broker.url, messages)
    # The worker's session must exist before the stream starts, or the first messages have no subscriber.
    wait_until(lambda: "consuming" in worker.log_path.read_text(), 15, what="the worker to subscribe")
    publisher.start()

    kills = 0
    for fraction in (0.1, 0.3, 0.5, 0.7, 0.85):
        target = int(len(messages) * fraction)
        wait_until(lambda target=target: _stored(database_url, pilot) >= target, 60, what=f"{target} rows stored")
        worker.kill()
        kills += 1
        worker.start()
        wait_until(lambda kills=kills: worker.log_path.read_text().count("consuming") > kills, 15, what="the restart")

    publisher.join(120)
    assert publisher.acknowledged == len(messages)
    wait_until(lambda: _stored(database_url, pilot) == len(messages), 60, what="every message stored")
    _assert_each_stored_once(database_url, pilot, per_device)


@requires_mosquitto
def test_sigterm_stops_a_worker_cleanly_and_its_successor_finishes_the_stream(
    own_broker: Callable, database_url: str, pilot: RegisteredPilot,
    worker_settings: Callable, process_worker: Callable,
) -> None:
    broker = own_broker("mosquitto")
    per_device = 2000
    messages = _stream(pilot, per_device)
    worker = process_worker(worker_settings(mqtt_url=broker.url, worker_id="polite")).start()
    wait_until(lambda: "consuming" in worker.log_path.read_text(), 15, what="the worker to subscribe")
    publisher = _Publisher(broker.url, messages)
    publisher.start()
    wait_until(lambda: _stored(database_url, pilot) >= len(messages) // 4, 60, what="a quarter stored")

    worker.signal(signal.SIGTERM)
    assert worker.wait(15) == 0
    assert "ingest worker stopped" in worker.log_path.read_text()

    worker.start()
    publisher.join(120)
    wait_until(lambda: _stored(database_url, pilot) == len(messages), 60, what="every message stored")
    _assert_each_stored_once(database_url, pilot, per_device)


@pytest.mark.parametrize("broker_kind", [pytest.param("mosquitto", marks=requires_mosquitto), "iotcore"])
def test_two_workers_on_one_shared_subscription_split_the_load_and_store_each_message_once(
    own_broker: Callable, database_url: str, pilot: RegisteredPilot, thread_worker: Callable, broker_kind: str,
) -> None:
    broker = own_broker(broker_kind)
    per_device = 1500
    messages = _stream(pilot, per_device)
    first = thread_worker(mqtt_url=broker.url, worker_id="a")
    second = thread_worker(mqtt_url=broker.url, worker_id="b")

    assert publish_burst(MqttEndpoint(broker.url), messages) == len(messages)
    wait_until(lambda: _stored(database_url, pilot) == len(messages), 60, what="every message stored")
    a, b = first.stop(), second.stop()

    assert a.stored + b.stored == len(messages)
    assert a.duplicates + b.duplicates == 0
    assert min(a.stored, b.stored) >= len(messages) * 0.3, (a.stored, b.stored)
    _assert_each_stored_once(database_url, pilot, per_device)


@requires_mosquitto
def test_draining_a_worker_for_scale_down_stores_its_share_and_strands_nothing(
    own_broker: Callable, database_url: str, pilot: RegisteredPilot,
    worker_settings: Callable, process_worker: Callable, thread_worker: Callable,
) -> None:
    broker = own_broker("mosquitto")
    per_device = 1000
    messages = _stream(pilot, per_device)
    half = len(messages) // 2
    leaving = process_worker(worker_settings(mqtt_url=broker.url, worker_id="leaving")).start()
    wait_until(lambda: "consuming" in leaving.log_path.read_text(), 15, what="the leaving worker")
    staying = thread_worker(mqtt_url=broker.url, worker_id="staying")

    leaving.kill()  # gone without a goodbye: Mosquitto keeps routing its share to its session
    assert publish_burst(MqttEndpoint(broker.url), messages[:half]) == half
    wait_until(lambda: staying.stats.stored > 0, 15, what="the staying worker's share")
    assert _stored(database_url, pilot) < half, "the dead worker's share waits for it"

    leaving.start("--drain")
    assert leaving.wait(60) == 0, "a draining worker exits by itself once its session is empty"
    wait_until(lambda: _stored(database_url, pilot) == half, 30, what="the drained share")

    # Its session is gone: everything published from now on goes to the remaining worker.
    assert publish_burst(MqttEndpoint(broker.url), messages[half:]) == len(messages) - half
    wait_until(lambda: _stored(database_url, pilot) == len(messages), 60, what="every message stored")
    _assert_each_stored_once(database_url, pilot, per_device)
