"""The paho-mqtt 2.x v5 client the simulators publish with, and its acknowledgement counts.

One client serves a whole fleet, like a gateway. paho's network thread (`loop_start`) reads
PUBACKs and reconnects with backoff; callers publish from their own thread. paho keeps every
unacknowledged QoS 1 message and resends it after a reconnect, so a broker restart loses nothing
that was accepted by `publish()`. paho's own in-flight limit is switched off (its bookkeeping is
O(n) per PUBACK): callers bound what is in flight themselves.
"""

from __future__ import annotations

import logging
import ssl
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from pilotlab.errors import ServiceUnavailable
from pilotlab.settings import MqttEndpoint

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
KEEPALIVE_S = 30
RECONNECT_DELAY_S = (1, 30)


class AckCounter:
    """PUBACKs as they arrive: success or refused (reason code ≥ 0x80). Runs in paho's thread.

    `released` is called once per acknowledgement, whatever its outcome, so a caller can free a
    slot of its in-flight window.
    """

    def __init__(self, released: threading.Semaphore | None = None) -> None:
        self.acknowledged = 0
        self.refused = 0
        self._released = released
        self._target: int | None = None
        self._reached = threading.Event()

    def on_publish(self, client: mqtt.Client, userdata: object, mid: int, reason: ReasonCode,
                   properties: Properties) -> None:
        if reason.is_failure:
            self.refused += 1
            log.warning("broker refused message %d: %s", mid, reason)
        else:
            self.acknowledged += 1
        if self._released is not None:
            self._released.release()
        if self._target is not None and self.acknowledged + self.refused >= self._target:
            self._reached.set()  # an Event: cheaper than notifying a Condition per PUBACK

    @property
    def settled_count(self) -> int:
        return self.acknowledged + self.refused

    def wait_for(self, count: int, timeout_s: float) -> bool:
        """Block until `count` messages are settled; False on timeout."""
        self._reached.clear()
        self._target = count
        if self.settled_count >= count:
            return True
        return self._reached.wait(timeout_s) or self.settled_count >= count


def open_client(endpoint: MqttEndpoint, client_id: str, acks: AckCounter, *, clean_start: bool,
                session_expiry_s: int, username: str | None = None, password: str | None = None,
                max_queued: int = 0) -> mqtt.Client:
    """A connected MQTT v5 client with its network thread running.

    Raises ServiceUnavailable (one line) if the broker cannot be reached or refuses the connection.
    `max_queued` bounds unacknowledged messages kept while disconnected (0: unbounded).
    """
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    user = endpoint.username or username
    if user:
        client.username_pw_set(user, endpoint.password or password)
    if endpoint.tls:
        client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(max_queued)
    client.reconnect_delay_set(*RECONNECT_DELAY_S)
    client.connect_timeout = CONNECT_TIMEOUT_S
    client.on_publish = acks.on_publish

    connack: list[ReasonCode] = []
    connected = threading.Event()

    def on_connect(c: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags, reason: ReasonCode,
                   properties: Properties | None) -> None:
        if not connected.is_set():
            connack.append(reason)
            connected.set()
        elif reason.is_failure:
            log.warning("reconnect to %s refused: %s", endpoint, reason)
        else:
            log.info("reconnected to %s as %s (session present: %s)", endpoint, client_id, flags.session_present)

    def on_disconnect(c: mqtt.Client, userdata: object, flags: mqtt.DisconnectFlags, reason: ReasonCode,
                      properties: Properties | None) -> None:
        if reason.value != 0:
            log.warning("lost %s (%s); paho reconnects and resends unacknowledged messages", endpoint, reason)

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = session_expiry_s
    try:
        client.connect(endpoint.host, endpoint.port, keepalive=KEEPALIVE_S, clean_start=clean_start,
                       properties=props)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise ServiceUnavailable(f"cannot reach the MQTT broker at {endpoint.host}:{endpoint.port}: {reason}") from None
    client.loop_start()
    if not connected.wait(CONNECT_TIMEOUT_S) or connack[0].is_failure:
        client.loop_stop()
        client.disconnect()
        why = f"refused: {connack[0]}" if connack else f"no CONNACK within {CONNECT_TIMEOUT_S:.0f} s"
        raise ServiceUnavailable(f"MQTT broker at {endpoint.host}:{endpoint.port} {why}")
    return client


def close_client(client: mqtt.Client) -> None:
    """Disconnect cleanly (the session, if any, stays for its expiry) and stop the network thread."""
    client.disconnect()
    client.loop_stop()
