"""paho-mqtt's Client, made cheaper per message for a subscriber that takes thousands a second.

Stock paho 2.x reads every packet with a select() and three recv() calls (command byte, length
byte(s), body) and writes every PUBACK with its own send(), plus one byte on its wake-up socket
pair when the ack comes from another thread. Each of those system calls also gives up the GIL, so
the writer thread and paho's network thread hand it back and forth several times per message.
py-spy on a worker at full rate: ~60 % of its samples in paho's network thread, a third of those
in recv() and select().

This subclass changes only how bytes are moved and parsed, not what goes over the wire:
- `BufferedSocket` (the same kind of socket-like wrapper paho itself uses for websockets) reads
  up to 256 KiB at a time and serves paho's small reads from that buffer; its `pending()` makes
  paho's loop skip the blocking select() while buffered bytes remain, as paho does for TLS;
- `loop_read` goes on handling packets while whole packets are buffered (a bounded number per
  loop turn, so writes and keepalive are not starved);
- `ack_all` queues the PUBACKs of a whole batch as one write (one send(), one wake-up), the same
  bytes stock paho would write one by one (`_send_command_with_mid`);
- `request_reconnect` drops the connection from paho's own thread (as paho does on a keepalive
  timeout), so paho reconnects and the broker resends what was left unacknowledged: how a source
  gets back the messages a full hand-off refused (ingest.handoff);
- `LeanProperties`: paho builds a v5 `Properties` for every PUBLISH, and its constructor rebuilds
  two tables of ~30 entries and clears ~30 attributes each time (measured: 19 µs of the 21 µs
  paho spends per PUBLISH, 7-9 µs with the lean class). The subclass shares the tables, which
  paho only reads, and skips the parse when the properties are empty (their length byte is 0).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt import _packet
from paho.mqtt.enums import _ConnectionState
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

READ_CHUNK_BYTES = 256 * 1024
PACKETS_PER_LOOP = 256  # then paho's loop writes queued acks and checks keepalive
_PUBACK = struct.Struct("!BBH")  # PUBACK, remaining length 2, packet id (reason code 0 implied, MQTT v5 §3.4.2.1)
_PUBACK_COMMAND = 0x40


class BufferedSocket:
    """A socket for paho that reads in large chunks; everything but recv/pending passes through."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buffer = b""
        self._pos = 0

    def recv(self, size: int) -> bytes:
        pos = self._pos
        available = len(self._buffer) - pos
        if available == 0:
            data = self._sock.recv(max(size, READ_CHUNK_BYTES))  # BlockingIOError / b"" pass through
            if len(data) <= size:
                self._buffer, self._pos = b"", 0
                return data
            self._buffer, self._pos = data, size
            return data[:size]
        end = pos + min(size, available)
        self._pos = end
        return self._buffer[pos:end]

    def pending(self) -> int:
        inner = self._sock.pending() if hasattr(self._sock, "pending") else 0  # an SSLSocket's own buffer
        return len(self._buffer) - self._pos + inner

    def buffered(self) -> int:
        return len(self._buffer) - self._pos

    def __getattr__(self, name: str) -> Any:  # send, fileno, setblocking, close, setsockopt, …
        return getattr(self._sock, name)


class LeanProperties(Properties):
    """paho's MQTT v5 properties, without rebuilding paho's name and type tables per packet."""

    _TABLES = Properties(PacketTypes.PUBLISH)

    def __init__(self, packetType: int) -> None:
        state = self.__dict__  # as paho's __setattr__ does for these four: no validation needed
        state["packetType"] = packetType
        state["types"], state["names"], state["properties"] = (
            self._TABLES.types, self._TABLES.names, self._TABLES.properties)

    def unpack(self, buffer: bytes) -> tuple[Properties, int]:
        if buffer[:1] == b"\x00":  # property length 0, a one-byte variable byte integer
            return self, 1
        return super().unpack(buffer)  # type: ignore[no-any-return]


def _use_lean_properties() -> None:
    """Make paho's packet decoder build LeanProperties (process-wide; the same results)."""
    if getattr(_packet, "Properties", None) is Properties:  # the paho 2.x layout this was measured on
        setattr(_packet, "Properties", LeanProperties)  # noqa: B010 - mypy: not a plain assignment


class SubscriberClient(mqtt.Client):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _use_lean_properties()
        super().__init__(*args, **kwargs)
        self._reconnect_requested = False

    def request_reconnect(self) -> None:
        """Drop the current connection at paho's next loop turn (within a second); any thread."""
        self._reconnect_requested = True

    def loop_misc(self) -> mqtt.MQTTErrorCode:
        if self._reconnect_requested:
            self._reconnect_requested = False
            if self._sock is not None and self.is_connected():
                self._sock_close()
                self._state = _ConnectionState.MQTT_CS_CONNECTION_LOST
                self._do_on_disconnect(packet_from_broker=False, v1_rc=mqtt.MQTTErrorCode.MQTT_ERR_CONN_LOST)
                return mqtt.MQTTErrorCode.MQTT_ERR_CONN_LOST
        return super().loop_misc()

    def _create_socket(self) -> Any:
        sock = super()._create_socket()
        if isinstance(sock, socket.socket):  # plain TCP or TLS; paho's websocket wrapper buffers itself
            return BufferedSocket(sock)
        return sock

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        rc = super().loop_read(max_packets)
        for _ in range(PACKETS_PER_LOOP):
            sock = self._sock
            if rc != mqtt.MQTT_ERR_SUCCESS or not isinstance(sock, BufferedSocket) or not sock.buffered():
                break
            rc = super().loop_read(max_packets)
        return rc

    def ack_all(self, mids: Iterable[int]) -> None:
        """PUBACK each packet id (QoS 1) in one write."""
        packet = b"".join([_PUBACK.pack(_PUBACK_COMMAND, 2, mid) for mid in mids])
        if packet:
            self._packet_queue(_PUBACK_COMMAND, packet, 0, 1)
