"""The ingest's paho client reads in large chunks and acks a batch in one write, and says on the
wire exactly what stock paho says: the same bytes reach paho's parser, and a batch ack settles
exactly the messages it names."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest.paho_client import READ_CHUNK_BYTES, BufferedSocket, LeanProperties, SubscriberClient
from pilotlab.settings import MqttEndpoint
from tests.conftest import requires_mosquitto
from tests.support import publish, wait_until


def _read_like_paho(sock: BufferedSocket, total: int) -> bytes:
    """paho's reads of one stream: 1 byte, 1 byte, then the rest in whatever pieces come."""
    received = bytearray()
    for size in (1, 1):
        received += sock.recv(size)
    while len(received) < total:
        received += sock.recv(total - len(received))
    return bytes(received)


@pytest.mark.parametrize("chunks", [[1, 2], [7, 3, 100], [READ_CHUNK_BYTES + 10], [2, READ_CHUNK_BYTES, 5]])
def test_the_buffered_socket_hands_over_the_stream_unchanged_however_it_arrives(chunks: list[int]) -> None:
    left, right = socket.socketpair()
    try:
        stream = bytes(i % 251 for i in range(sum(chunks)))
        sender = threading.Thread(target=lambda: [left.sendall(stream[sum(chunks[:i]):sum(chunks[:i + 1])])
                                                  for i in range(len(chunks))])
        sender.start()
        buffered = BufferedSocket(right)
        assert _read_like_paho(buffered, len(stream)) == stream
        sender.join()
        assert buffered.pending() == 0
    finally:
        left.close()
        right.close()


def test_pending_counts_what_was_read_from_the_socket_but_not_yet_taken() -> None:
    left, right = socket.socketpair()
    try:
        left.sendall(b"0123456789")
        buffered = BufferedSocket(right)
        assert buffered.recv(1) == b"0"
        assert buffered.pending() == 9  # paho's loop skips the blocking select() while this is > 0
        assert buffered.recv(4) == b"1234"
        assert buffered.recv(100) == b"56789"  # never more than is there
        assert buffered.pending() == 0
        right.setblocking(False)
        with pytest.raises(BlockingIOError):  # paho's own signal for "nothing yet"
            buffered.recv(1)
        left.close()
        right.setblocking(True)
        assert buffered.recv(1) == b""  # the peer closed: paho sees the connection lost
    finally:
        right.close()


def test_lean_properties_read_the_same_as_pahos_own_with_and_without_properties() -> None:
    sent = Properties(PacketTypes.PUBLISH)
    sent.ContentType = "text/plain"
    sent.CorrelationData = b"\x01\x02"
    sent.UserProperty = [("a", "1"), ("b", "2")]
    for packed in (sent.pack(), Properties(PacketTypes.PUBLISH).pack()):
        stock, stock_length = Properties(PacketTypes.PUBLISH).unpack(packed + b"payload")
        lean, lean_length = LeanProperties(PacketTypes.PUBLISH).unpack(packed + b"payload")
        assert (lean.json(), lean_length) == (stock.json(), stock_length)


class _Subscriber:
    """A SubscriberClient with manual acks in a persistent session, recording what arrives."""

    def __init__(self, endpoint: MqttEndpoint, client_id: str, topic_filter: str) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.subscribed = threading.Event()
        client = SubscriberClient(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5, manual_ack=True)
        client.on_message = lambda c, u, message: self.messages.append(message)
        client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic_filter, options=SubscribeOptions(qos=1))
        client.on_subscribe = lambda *args: self.subscribed.set()
        self.disconnected = threading.Event()
        client.on_disconnect = lambda *args: self.disconnected.set()
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 300
        client.connect(endpoint.host, endpoint.port, clean_start=False, properties=properties)
        client.loop_start()
        self.client = client
        assert self.subscribed.wait(10), "no SUBACK"

    def stop(self) -> None:
        self.client.disconnect()
        assert self.disconnected.wait(10), "DISCONNECT not sent"  # what was queued before it went first
        self.client.loop_stop()


@requires_mosquitto
def test_a_batch_ack_settles_exactly_the_messages_it_names(
        own_broker: Callable[..., object], unique_id: Callable[[str], str]) -> None:
    broker = own_broker(prefer="mosquitto")
    endpoint = MqttEndpoint(broker.url)  # type: ignore[attr-defined]
    topic, client_id = unique_id("acks"), unique_id("batch-acker")
    first = _Subscriber(endpoint, client_id, f"{topic}/#")
    publish(broker.url, [(f"{topic}/{n}", str(n).encode()) for n in range(30)])  # type: ignore[attr-defined]
    wait_until(lambda: len(first.messages) == 30, 10, what="30 messages")
    acked = {m.payload for m in first.messages if int(m.payload) % 2 == 0}
    first.client.ack_all([m.mid for m in first.messages if m.payload in acked])
    first.stop()  # the acks are written before DISCONNECT; the session and its unacked messages stay

    second = _Subscriber(endpoint, client_id, f"{topic}/#")
    try:
        wait_until(lambda: len(second.messages) >= 15, 10, what="the unacknowledged messages again")
        time.sleep(0.5)  # room for anything wrongly redelivered to arrive too
        second.client.ack_all([m.mid for m in second.messages])
        redelivered = sorted(int(m.payload) for m in second.messages)
        assert redelivered == list(range(1, 30, 2))  # the odd ones, each once; no acked one came back
        assert all(m.dup for m in second.messages)
    finally:
        second.stop()


def test_v5_properties_of_a_publish_arrive_as_stock_paho_reads_them(
        mqtt_url: str, unique_id: Callable[[str], str]) -> None:
    endpoint = MqttEndpoint(mqtt_url)
    topic = unique_id("props")
    subscriber = _Subscriber(endpoint, unique_id("props-reader"), f"{topic}/#")
    try:
        publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        publisher.connect(endpoint.host, endpoint.port)
        publisher.loop_start()
        with_properties = Properties(PacketTypes.PUBLISH)
        with_properties.ContentType = "application/json"
        with_properties.UserProperty = [("firmware", "1.2.3"), ("site", "north")]
        with_properties.MessageExpiryInterval = 3600
        publisher.publish(f"{topic}/a", b"{}", qos=1, properties=with_properties).wait_for_publish(5)
        publisher.publish(f"{topic}/b", b"{}", qos=1).wait_for_publish(5)
        publisher.disconnect()
        publisher.loop_stop()

        wait_until(lambda: len(subscriber.messages) == 2, 10, what="both messages")
        subscriber.client.ack_all([m.mid for m in subscriber.messages])
        by_topic = {m.topic: m.properties for m in subscriber.messages}
        received = by_topic[f"{topic}/a"]
        assert received.ContentType == "application/json"
        assert received.UserProperty == [("firmware", "1.2.3"), ("site", "north")]
        assert 3590 <= received.MessageExpiryInterval <= 3600  # the broker counts down the time it held it
        assert by_topic[f"{topic}/b"].json() == {}  # none sent, none read
        assert isinstance(received, Properties)
    finally:
        subscriber.stop()
