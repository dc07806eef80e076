"""Acceptance of issue 8: one stream survives its database and then its broker restarting
underneath it, and ends with every published message stored exactly once.

Everything here is the test's own: PostgreSQL (pgserver binaries, its own data dir, the same
port after the restart) and Mosquitto (pilotlab's tuned config, persistence on; stopped cleanly
with SIGTERM, so it saves the worker's session and its queued messages)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from pilotlab.embedded.postgres import EmbeddedPostgres
from pilotlab.settings import Settings
from tests.conftest import requires_mosquitto
from tests.faults.streams import BackgroundPublisher, assert_each_stored_once, stored, stream
from tests.ingest.conftest import ThreadWorker
from tests.support import register_pilot, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.mosquitto]


@requires_mosquitto
def test_a_stream_survives_a_database_restart_then_a_broker_restart_with_every_message_stored_once(
    own_postgres: EmbeddedPostgres, own_broker: Callable, unique_id: Callable[[str], str],
) -> None:
    broker = own_broker("mosquitto")
    url = own_postgres.url
    pilot = register_pilot(url, unique_id("e2e"))
    per_device = 2000
    messages = stream(pilot, per_device)
    first, second = messages[: len(messages) // 2], messages[len(messages) // 2:]
    worker = ThreadWorker(Settings(
        database_url=url, mqtt_url=broker.url, share_group=unique_id("grp"), worker_id="w1",
        session_expiry_s=300, receive_maximum=500, batch_size=200, batch_linger_ms=5,
    )).start()

    # 1. The database goes away while the first half is being published and stored.
    publisher = BackgroundPublisher(broker.url, first)
    publisher.start()
    wait_until(lambda: stored(url, pilot) >= len(first) // 4, 60, what="a quarter of the first half stored")
    own_postgres.stop()
    wait_until(lambda: worker.stats.database_stalled, 30, what="the worker to report the stall")
    assert publisher.finish(120) == len(first), "the broker accepts the stream while the database is down"
    time.sleep(1.0)
    own_postgres.start()
    wait_until(lambda: stored(url, pilot) == len(first), 120, what="the first half stored after the outage")

    # 2. The broker restarts (clean stop: its persistence keeps the worker's session and the
    # messages queued in it) in the middle of the second half. The publisher pauses across the
    # restart, connected: Mosquitto 2.0.11 does not restore *shared* subscriptions from
    # persistence, so a message arriving before the worker has resubscribed matches no one and is
    # dropped (see test_mosquitto_restores_a_workers_queued_messages_but_not_its_shared_subscription).
    publisher = BackgroundPublisher(broker.url, second, per_second=2000, pause_at=len(second) // 2)
    publisher.start()
    wait_until(lambda: stored(url, pilot) > len(first), 60, what="the second half arriving")
    wait_until(lambda: not publisher.gate.is_set(), 60, what="the publisher to pause half-way")
    time.sleep(2.0)  # the publisher's last in-flight messages are acknowledged
    assert publisher.is_alive() and stored(url, pilot) < len(messages), "the broker goes down mid-stream"
    connections = worker.worker.source.connections
    broker.stop()
    time.sleep(2.0)
    broker.start()
    wait_until(lambda: worker.worker.source.connections > connections and worker.worker.source.subscribed.is_set(),
               60, what="ingest to reconnect and resubscribe")
    assert worker.worker.source.session_resumed, "a clean broker stop keeps the worker's session"
    publisher.gate.set()
    assert publisher.finish(120) == len(second), "the publisher reconnected by itself and finished"
    wait_until(lambda: stored(url, pilot) == len(messages), 120, what="every message stored")

    assert_each_stored_once(url, pilot, per_device)
    stats = worker.stop()
    assert stats.database_retries >= 1
    # Redelivered messages (held across a reconnect, or resent by the publisher) are counted, not stored twice.
    assert stats.stored == len(messages)
    assert stats.received == stats.stored + stats.duplicates



@requires_mosquitto
def test_mosquitto_restores_a_workers_queued_messages_but_not_its_shared_subscription(own_broker: Callable) -> None:
    """A broker fact pilotlab must design around (Mosquitto 2.0.11): after a clean restart, a
    persistent session gets back the messages queued for it, and a plain subscription, but not
    a shared one. Until the worker resubscribes, new messages for the share group are dropped.
    If this starts failing, the broker improved: revisit the pause in the test above."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from pilotlab.settings import MqttEndpoint
    from simulators.burst import publish_burst

    broker = own_broker("mosquitto")

    def session(client_id: str, got: list[bytes]) -> mqtt.Client:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        client.on_message = lambda c, u, m: got.append(bytes(m.payload))
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 300
        client.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
        client.loop_start()
        return client

    received: dict[str, list[bytes]] = {"plain": [], "shared": []}
    for kind, topic_filter in (("plain", "fact/plain/#"), ("shared", "$share/fact/fact/shared/#")):
        client = session(kind, [])
        subscribed = threading.Event()
        client.on_subscribe = lambda *args, subscribed=subscribed: subscribed.set()
        client.subscribe(topic_filter, qos=1)
        assert subscribed.wait(10)
        client.disconnect()
        client.loop_stop()
    endpoint = MqttEndpoint(broker.url)
    publish_burst(endpoint, [("fact/plain/x", b"queued"), ("fact/shared/x", b"queued")])
    broker.stop()
    broker.start()
    publish_burst(endpoint, [("fact/plain/x", b"after restart"), ("fact/shared/x", b"after restart")])
    clients = [session(kind, got) for kind, got in received.items()]  # no SUBSCRIBE this time
    try:
        wait_until(lambda: len(received["plain"]) == 2 and received["shared"], 10, what="the resumed sessions")
        time.sleep(0.5)
    finally:
        for client in clients:
            client.disconnect()
            client.loop_stop()
    assert sorted(received["plain"]) == [b"after restart", b"queued"]
    assert received["shared"] == [b"queued"], "the shared subscription was not restored"
