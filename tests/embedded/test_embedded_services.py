"""The embedded PostgreSQL and MQTT broker that `pilotlab demo` and the test suite start.

Real processes throughout: pgserver's PostgreSQL 16, the mosquitto binary with the tuned
deploy/mosquitto/mosquitto.conf, iotcore's rumqttd; paho-mqtt 2.x MQTT v5 clients.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from pilotlab.embedded.broker import MAX_PACKET_BYTES, EmbeddedBroker, mosquitto_config, rumqttd_config
from pilotlab.embedded.postgres import EmbeddedPostgres
from tests.conftest import requires_mosquitto
from tests.deploy.size_probe import publish_once
from tests.embedded.proc_scan import alive, descendants, processes_mentioning

BROKER_KINDS = [pytest.param("mosquitto", marks=[requires_mosquitto, pytest.mark.mosquitto]), "iotcore"]


def _wait_for(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().splitlines()[0])


# --- PostgreSQL ----------------------------------------------------------------------------------


def test_embedded_postgres_serves_queries_and_stop_leaves_no_postgres_process(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "pg")
    url = server.start()
    assert server.start() == url, "a second start() returns the running server"
    postmaster = _postmaster_pid(tmp_path / "pg")
    backends = descendants({postmaster})
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute("SELECT current_user, current_database()").fetchone() == ("postgres", "postgres")
            conn.execute("CREATE DATABASE embedded_probe")
        with psycopg.connect(url.rsplit("/", 1)[0] + "/embedded_probe") as conn:
            assert conn.execute("SELECT 40 + 2").fetchone() == (42,)
    finally:
        server.stop()
    server.stop()  # idempotent
    assert not alive(postmaster)
    assert not [pid for pid in backends if alive(pid)]
    assert processes_mentioning(str(tmp_path)) == {}


def test_a_restarted_embedded_postgres_keeps_its_data(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "pg")
    with psycopg.connect(server.start(), autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (n int)")
        conn.execute("INSERT INTO kept VALUES (7)")
    server.stop()
    try:
        with psycopg.connect(server.start()) as conn:
            assert conn.execute("SELECT n FROM kept").fetchone() == (7,)
        assert server.start_seconds is not None and server.start_seconds < 5
    finally:
        server.stop()


def _run_and_sigkill(script: str, tmp_path: Path) -> int:
    """Run `script` in a child Python until it prints 'ready', then SIGKILL it; return its pid."""
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, cwd=tmp_path, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip() == "ready", f"child did not start its server: {line!r}"
    finally:
        child.kill()
        child.wait()
    return child.pid


def test_a_server_left_running_by_a_sigkilled_pgserver_owner_is_stopped_and_replaced(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    dead_owner = _run_and_sigkill(f"""
        import warnings, time
        warnings.simplefilter("ignore")
        import pgserver
        pgserver.get_server({str(data_dir)!r})
        print("ready", flush=True)
        time.sleep(600)
        """, tmp_path)
    orphan = _postmaster_pid(data_dir)
    assert alive(orphan), "pgserver leaves its server running when its owner is SIGKILLed"
    assert dead_owner in json.loads((data_dir / ".handle_pids.json").read_text())

    server = EmbeddedPostgres(data_dir)
    try:
        with psycopg.connect(server.start()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert not alive(orphan), "the orphaned postmaster was stopped"
        assert json.loads((data_dir / ".handle_pids.json").read_text()) == [os.getpid()]
    finally:
        server.stop()
    assert processes_mentioning(str(data_dir)) == {}
    assert not (data_dir / ".handle_pids.json").exists()


def test_embedded_postgres_dies_with_an_owner_that_is_sigkilled(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    _run_and_sigkill(f"""
        import time
        from pathlib import Path
        from pilotlab.embedded.postgres import EmbeddedPostgres
        EmbeddedPostgres(Path({str(data_dir)!r})).start()
        print("ready", flush=True)
        time.sleep(600)
        """, tmp_path)
    _wait_for(lambda: not processes_mentioning(str(data_dir)), 15, "the postmaster to exit")
    server = EmbeddedPostgres(data_dir)  # and the stale owner entry does not block a new owner
    try:
        with psycopg.connect(server.start()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()


# --- MQTT broker ---------------------------------------------------------------------------------


class _Client:
    """A paho-mqtt 2.x MQTT v5 client recording what it receives."""

    def __init__(self, url: str, client_id: str, *, clean_start: bool = True, session_expiry: int = 0,
                 on_message_delay: float = 0.0) -> None:
        self.host, port = url.removeprefix("mqtt://").rsplit(":", 1)
        self.port = int(port)
        self.received: list[tuple[str, bytes]] = []
        self.session_present: bool | None = None
        self._connected = threading.Event()
        self._delay = on_message_delay
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        if session_expiry:
            props.SessionExpiryInterval = session_expiry
        self.client.connect(self.host, self.port, keepalive=30, clean_start=clean_start, properties=props)
        self.client.loop_start()
        assert self._connected.wait(10), f"{client_id} could not connect to {url}"

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        self.session_present = flags.session_present
        self._connected.set()

    def _on_message(self, client, userdata, message) -> None:  # type: ignore[no-untyped-def]
        self.received.append((message.topic, message.payload))
        if self._delay:
            time.sleep(self._delay)

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *args: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(10), f"no SUBACK for {topic}"

    def publish_all(self, topic: str, payloads: list[bytes]) -> None:
        infos = [self.client.publish(topic, payload, qos=1) for payload in payloads]
        for info in infos:
            info.wait_for_publish(30)
            assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(params=BROKER_KINDS)
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EmbeddedBroker]:
    server = EmbeddedBroker(tmp_path / "broker", prefer=request.param)
    server.start()
    yield server
    server.stop()
    assert processes_mentioning(str(tmp_path)) == {}, "the broker process is gone after stop()"


def _topic() -> str:
    return f"pilotlab-test/{uuid.uuid4().hex[:8]}"


def test_broker_round_trips_a_qos1_message_over_mqtt_v5(broker: EmbeddedBroker) -> None:
    assert broker.url.startswith("mqtt://127.0.0.1:")
    topic = _topic()
    sub = _Client(broker.url, f"sub-{broker.kind}")
    pub = _Client(broker.url, f"pub-{broker.kind}")
    try:
        sub.subscribe(f"{topic}/#")
        pub.publish_all(f"{topic}/a", [b'{"t": 21.5}'])
        _wait_for(lambda: len(sub.received) == 1, 10, "the message")
        assert sub.received == [(f"{topic}/a", b'{"t": 21.5}')]
    finally:
        sub.close()
        pub.close()


def test_broker_delivers_to_a_shared_subscription(broker: EmbeddedBroker) -> None:
    topic = _topic()
    members = [_Client(broker.url, f"member-{i}-{broker.kind}") for i in range(2)]
    pub = _Client(broker.url, f"pub-{broker.kind}")
    try:
        for member in members:
            member.subscribe(f"$share/g/{topic}/#")
        pub.publish_all(f"{topic}/x", [str(i).encode() for i in range(100)])
        _wait_for(lambda: sum(len(m.received) for m in members) == 100, 15, "100 messages across the group")
        payloads = sorted(int(p) for m in members for _, p in m.received)
        assert payloads == list(range(100)), "each message goes to exactly one member"
    finally:
        for client in (*members, pub):
            client.close()


def test_broker_restarts_on_the_same_port(broker: EmbeddedBroker) -> None:
    url = broker.url
    broker.stop()
    assert broker.start() == url
    client = _Client(url, f"after-restart-{broker.kind}")
    client.close()


@requires_mosquitto
@pytest.mark.mosquitto
def test_mosquitto_keeps_a_persistent_sessions_queued_messages_across_a_clean_restart(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path / "broker", prefer="mosquitto")
    broker.start()
    try:
        topic = _topic()
        worker = _Client(broker.url, "worker-1", clean_start=False, session_expiry=3600)
        worker.subscribe(f"$share/g/{topic}/#")
        worker.close()  # offline: the broker queues for the session

        pub = _Client(broker.url, "pub")
        pub.publish_all(f"{topic}/m", [str(i).encode() for i in range(200)])
        pub.close()

        broker.stop()  # SIGTERM: mosquitto writes mosquitto.db
        assert (tmp_path / "broker" / "mosquitto.db").exists()
        broker.start()

        worker = _Client(broker.url, "worker-1", clean_start=False, session_expiry=3600)
        try:
            assert worker.session_present is True
            _wait_for(lambda: len(worker.received) >= 200, 15, "the 200 queued messages")
            assert sorted(int(p) for _, p in worker.received) == list(range(200))
        finally:
            worker.close()
    finally:
        broker.stop()


@requires_mosquitto
@pytest.mark.mosquitto
@pytest.mark.slow
def test_tuned_mosquitto_delivers_a_5000_message_qos1_burst_to_a_slow_subscriber_without_loss(
    tmp_path: Path,
) -> None:
    """Mosquitto's defaults would drop past 1,000 queued messages, silently (broker-facts.md)."""
    broker = EmbeddedBroker(tmp_path / "broker", prefer="mosquitto")
    broker.start()
    try:
        topic = _topic()
        slow = _Client(broker.url, "slow", on_message_delay=0.0005)
        slow.subscribe(f"{topic}/#")
        pub = _Client(broker.url, "fast")
        pub.publish_all(f"{topic}/burst", [str(i).encode() for i in range(5000)])
        pub.close()
        _wait_for(lambda: len(slow.received) >= 5000, 60, "all 5,000 messages")
        time.sleep(0.2)
        assert sorted(int(p) for _, p in slow.received) == list(range(5000))
        slow.close()
    finally:
        broker.stop()


def test_the_embedded_broker_refuses_a_packet_over_the_shipped_limit_and_passes_the_largest_payload(
        broker: EmbeddedBroker) -> None:
    assert broker.port is not None
    largest = publish_once(broker.port, b"x" * 16_384)  # ingest's max_payload_bytes, longest contract topic
    oversized = publish_once(broker.port, b"x" * (MAX_PACKET_BYTES + 1))
    assert largest.accepted
    assert oversized.acked is None and oversized.disconnected is not None
    if broker.kind == "mosquitto":  # rumqttd closes the socket without a DISCONNECT
        assert oversized.disconnected == "Packet too large"


def test_the_generated_mosquitto_config_keeps_the_tuning_and_adds_only_a_loopback_listener(tmp_path: Path) -> None:
    text = mosquitto_config(18830, tmp_path)
    active = [line.split() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    settings = {words[0]: words[1:] for words in active}
    assert settings["max_packet_size"] == [str(MAX_PACKET_BYTES)]
    assert f"max_payload_size = {MAX_PACKET_BYTES}\n" in rumqttd_config(18830)
    assert settings["max_inflight_messages"] == ["1000"]
    assert settings["max_queued_messages"] == ["200000"]
    assert settings["set_tcp_nodelay"] == ["true"]
    assert settings["persistence"] == ["true"]
    assert settings["persistence_location"] == [f"{tmp_path}/"]
    assert [words for words in active if words[0] == "listener"] == [["listener", "18830", "127.0.0.1"]]


def test_a_sigkilled_broker_owner_takes_its_broker_along(tmp_path: Path) -> None:
    data_dir = tmp_path / "broker"
    _run_and_sigkill(f"""
        import time
        from pathlib import Path
        from pilotlab.embedded.broker import EmbeddedBroker
        EmbeddedBroker(Path({str(data_dir)!r}), prefer="iotcore").start()
        print("ready", flush=True)
        time.sleep(600)
        """, tmp_path)
    _wait_for(lambda: not processes_mentioning(str(data_dir)), 10, "the broker to exit with its owner")


def test_broker_kill_is_a_sigkill(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path / "broker", prefer="iotcore")
    broker.start()
    process = broker._process
    broker.kill()
    assert process is not None and process.returncode == -signal.SIGKILL
