"""The fleet and the burst publisher put contract messages on the real broker."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import orjson
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from devices.contract import decode_payload, parse_topic
from devices.kinds import Channel, DeviceKind
from pilotlab.errors import ServiceUnavailable
from pilotlab.settings import MqttEndpoint, Settings
from simulators.fleet import Fleet, contract_messages, load_devices, publish_burst, run_simulation, synthetic_devices


class Subscriber:
    """A paho v5 subscriber recording (topic, payload) until closed."""

    def __init__(self, url: str, topic_filter: str) -> None:
        endpoint = MqttEndpoint(url)
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, *_: c.subscribe(topic_filter, qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(endpoint.host, endpoint.port)
        self.client.loop_start()
        assert subscribed.wait(5), "no SUBACK"

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload))

    def wait_for(self, count: int, timeout_s: float = 10) -> list[tuple[str, bytes]]:
        deadline = time.monotonic() + timeout_s
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subscribe(mqtt_url: str) -> Iterator[Callable[[str], Subscriber]]:
    opened: list[Subscriber] = []

    def open_(topic_filter: str) -> Subscriber:
        opened.append(Subscriber(mqtt_url, topic_filter))
        return opened[-1]

    yield open_
    for sub in opened:
        sub.close()


def register_pilot(database_url: str, pilot_id: str, kinds: dict[DeviceKind, int], interval_s: int = 10) -> list[str]:
    ids = []
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO firm (id, name) VALUES ('sim-test-firm', 'Sim') ON CONFLICT DO NOTHING")
        conn.execute("INSERT INTO pilot (id, firm_id, name, site, starts_at) VALUES (%s, 'sim-test-firm', 'P', 'S', now())",
                     (pilot_id,))
        for kind, count in kinds.items():
            for n in range(count):
                ids.append(f"{pilot_id}-{kind.value}-{n}")
                conn.execute("INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s) "
                             "VALUES (%s, %s, %s, 'wifi', %s)", (ids[-1], pilot_id, kind.value, interval_s))
    return ids


def assert_valid(messages: list[tuple[str, bytes]], kinds: dict[str, DeviceKind]) -> None:
    for topic, payload in messages:
        address = parse_topic(topic)
        decode_payload(kinds[address.device_id], address.channel, payload)


def test_the_fleet_publishes_every_registered_device_on_its_contract_topics_and_a_subscriber_receives_them(
        database_url: str, mqtt_url: str, unique_id: Callable[[str], str],
        subscribe: Callable[[str], Subscriber]) -> None:
    pilot = unique_id("fleet")
    ids = register_pilot(database_url, pilot, {DeviceKind.SMART_SWITCH: 2, DeviceKind.LOCATION_TRACKER: 2,
                                               DeviceKind.ENV_SENSOR: 2})
    devices = load_devices(database_url, pilot)
    sub = subscribe(f"pilotlab/v1/{pilot}/+/+")
    started = time.monotonic()
    fleet = Fleet(MqttEndpoint(mqtt_url), devices, speed=10, duration_s=3.0)
    report = fleet.run()
    assert time.monotonic() - started < 10
    assert report.published == report.acknowledged > 0 and report.refused == report.dropped == 0
    received = sub.wait_for(report.published)
    assert len(received) == report.published
    assert_valid(received, {d.id: d.kind for d in devices})
    assert {parse_topic(t).device_id for t, _ in received} == set(ids)
    assert {parse_topic(t).channel for t, _ in received} >= {Channel.TELEMETRY, Channel.STATUS}
    # 10 s interval at speed 10: about 3 reports per device in 3 s, the first within a second.
    per_device = [sum(1 for t, _ in received if parse_topic(t).device_id == i and t.endswith("telemetry"))
                  for i in ids]
    assert all(n >= 3 for n in per_device)


def test_each_device_reports_first_within_a_second_of_the_start(mqtt_url: str, unique_id: Callable[[str], str],
                                                                subscribe: Callable[[str], Subscriber]) -> None:
    pilot = unique_id("stagger")
    devices = synthetic_devices(pilot, 12, reporting_interval_s=600)
    # every channel has a taker: a message nobody takes (PUBACK 0x10) is resent, not acknowledged
    sub = subscribe(f"pilotlab/v1/{pilot}/+/+")
    report = Fleet(MqttEndpoint(mqtt_url), devices, duration_s=1.2).run()
    received = sub.wait_for(report.published)
    assert {parse_topic(t).device_id for t, _ in received if t.endswith("/telemetry")} == {d.id for d in devices}
    assert report.acknowledged == report.published


def test_the_fleet_stops_at_max_messages_or_when_its_stop_event_is_set(
        mqtt_url: str, unique_id: Callable[[str], str], subscribe: Callable[[str], Subscriber]) -> None:
    pilot = unique_id("bounded")
    devices = synthetic_devices(pilot, 5, reporting_interval_s=1)
    subscribe(f"pilotlab/v1/{pilot}/+/+")  # someone takes them: the fleet resends what no one would
    report = Fleet(MqttEndpoint(mqtt_url), devices, speed=50, max_messages=40).run()
    assert report.published == report.acknowledged == 40

    stop = threading.Event()
    fleet = Fleet(MqttEndpoint(mqtt_url), devices, speed=5, stop_event=stop)
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    report = fleet.run()
    assert time.monotonic() - started < 3 and report.published > 0


def test_run_simulation_loads_the_pilot_publishes_and_returns_zero(
        database_url: str, mqtt_url: str, unique_id: Callable[[str], str],
        subscribe: Callable[[str], Subscriber]) -> None:
    pilot = unique_id("run")
    register_pilot(database_url, pilot, {DeviceKind.ENV_SENSOR: 2})
    sub = subscribe(f"pilotlab/v1/{pilot}/+/+")
    settings = Settings(database_url=database_url, mqtt_url=mqtt_url)
    assert run_simulation(settings, pilot_id=pilot, speed=20, duration_s=1.5, seed=3) == 0
    assert len(sub.wait_for(4)) >= 4


def test_an_unreachable_broker_is_service_unavailable_in_one_line(database_url: str,
                                                                  unique_id: Callable[[str], str]) -> None:
    pilot = unique_id("nobroker")
    register_pilot(database_url, pilot, {DeviceKind.SMART_SWITCH: 1})
    settings = Settings(database_url=database_url, mqtt_url="mqtt://127.0.0.1:1")
    with pytest.raises(ServiceUnavailable, match="127.0.0.1:1") as caught:
        run_simulation(settings, pilot_id=pilot, speed=1, duration_s=1, seed=1)
    assert "\n" not in str(caught.value)


def test_contract_messages_are_valid_telemetry_with_consecutive_seq_per_device() -> None:
    devices = synthetic_devices("cm", 6, reporting_interval_s=30)
    messages = list(contract_messages(devices, 200, datetime(2024, 5, 6, 7, tzinfo=UTC), seed=2))
    assert len(messages) == 6 * 200
    assert_valid(messages, {d.id: d.kind for d in devices})
    for device in devices:
        own = [orjson.loads(p) for t, p in messages if parse_topic(t).device_id == device.id]
        assert all(t.endswith("/telemetry") for t, _ in messages)
        assert [p["seq"] for p in own] == list(range(200))


def test_publish_burst_delivers_n_acknowledged_messages_that_a_subscriber_receives(
        mqtt_url: str, unique_id: Callable[[str], str], subscribe: Callable[[str], Subscriber]) -> None:
    pilot = unique_id("burst")
    devices = synthetic_devices(pilot, 10, reporting_interval_s=60)
    sub = subscribe(f"pilotlab/v1/{pilot}/+/+")
    n = 10 * 50  # below Mosquitto's default per-subscriber queue of 1,000 (see broker-facts.md)
    acknowledged = publish_burst(MqttEndpoint(mqtt_url), contract_messages(devices, 50, datetime.now(UTC), seed=1))
    assert acknowledged == n
    received = sub.wait_for(n)
    assert len(received) == n
    assert_valid(received, {d.id: d.kind for d in devices})


def test_publish_burst_to_an_unreachable_broker_is_service_unavailable() -> None:
    with pytest.raises(ServiceUnavailable):
        publish_burst(MqttEndpoint("mqtt://127.0.0.1:1"), [("pilotlab/v1/p/d/telemetry", b"{}")])
