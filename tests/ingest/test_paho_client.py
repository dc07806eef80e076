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

from ingest.paho_client import READ_CHUNK_BYTES, BufferedSocket, SubscriberClient
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
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 300
        client.connect(endpoint.host, endpoint.port, clean_start=False, properties=properties)
        client.loop_start()
        self.client = client
        assert self.subscribed.wait(10), "no SUBACK"

    def stop(self) -> None:
        self.client.disconnect()
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
