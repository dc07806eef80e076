"""The paho-mqtt 2.x v5 client the simulators publish with, and its acknowledgement counts.

One client serves a whole fleet, like a gateway. paho's network thread (`loop_start`) reads
PUBACKs and reconnects with backoff; callers publish from their own thread. paho keeps every
unacknowledged QoS 1 message and resends it after a reconnect, so a broker restart loses nothing
that was accepted by `publish()`. paho's own in-flight limit is switched off (its bookkeeping is
O(n) per PUBACK): callers bound what is in flight themselves.

The simulators behave as the MQTT contract asks of firmware: a PUBACK is read, not just awaited.
Reason 0x10 "no matching subscribers" means the broker had no one to give the message to (ingest
not yet subscribed, or resubscribing after a broker restart) and dropped it: the message is
published again a second later, until it is taken. A reason of 0x80 or more is a refusal
(not authorized, packet too large, …): counted and logged, never counted as delivered.
With an account, the client id is the account's username: the broker binds each to it.
"""

from __future__ import annotations

import logging
import ssl
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from pilotlab.errors import ServiceUnavailable
from pilotlab.settings import MqttEndpoint

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
KEEPALIVE_S = 30
RECONNECT_DELAY_S = (1, 30)
NO_MATCHING_SUBSCRIBERS = 0x10
RESEND_AFTER_S = 1.0

Message = tuple[str, bytes, int]  # topic, payload, QoS


def account_client_id(endpoint: MqttEndpoint, username: str | None, default: str) -> str:
    """The client id to connect with: an account's username (the broker refuses any other), else `default`."""
    return endpoint.username or username or default


class AckCounter:
    """What the broker answered for each QoS 1 message published through `publish()`.

    A message is settled once the broker took it (`acknowledged`) or refused it (reason ≥ 0x80,
    `refused`, logged). PUBACK 0x10 "no matching subscribers" settles nothing: the message is
    published again after `resend_after_s` (`resent` counts those), until it is taken or refused.
    PUBACKs arrive in paho's thread, resends go out from a timer thread.

    `released` is called once per settled message, so a caller can free a slot of its in-flight
    window (a message waiting to be resent keeps its slot).
    """

    def __init__(self, released: threading.Semaphore | None = None,
                 resend_after_s: float = RESEND_AFTER_S) -> None:
        self.acknowledged = 0
        self.refused = 0
        self.resent = 0
        self._released = released
        self._resend_after_s = resend_after_s
        self._target: int | None = None
        self._reached = threading.Event()
        self._lock = threading.Lock()
        self._sent: dict[int, Message] = {}  # by mid, until the broker answers
        self._early: dict[int, ReasonCode] = {}  # answers that beat publish() to noting the mid
        self._unrouted: list[Message] = []  # answered 0x10: to publish again
        self._timer: threading.Timer | None = None
        self._client: mqtt.Client | None = None
        self._closed = False

    def publish(self, client: mqtt.Client, topic: str, payload: bytes, qos: int = 1) -> mqtt.MQTTMessageInfo:
        """`client.publish`, keeping the message at hand until the broker has answered for it (paho
        reports a QoS 0 message as taken once written)."""
        info = client.publish(topic, payload, qos=qos)
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE or (qos == 0 and info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS):
            return info  # nothing will answer: paho's queue is full (the caller sheds it), or QoS 0 unsent
        message = (topic, payload, qos)
        # Not under the lock while publishing: paho calls on_publish holding its own lock, which
        # publish() takes too.
        with self._lock:
            self._client = client
            early = self._early.pop(info.mid, None)
            if early is None:
                self._sent[info.mid] = message
        if early is not None:
            self._settle(message, early)
        return info

    def on_publish(self, client: mqtt.Client, userdata: object, mid: int, reason: ReasonCode,
                   properties: Properties) -> None:
        with self._lock:
            message = self._sent.pop(mid, None)
            if message is None:
                self._early[mid] = reason
                return
        self._settle(message, reason)

    def close(self) -> None:
        """Stop resending (the client is going away)."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()

    def _settle(self, message: Message, reason: ReasonCode) -> None:
        with self._lock:
            if reason.value == NO_MATCHING_SUBSCRIBERS:
                self._unrouted.append(message)
                self._arm()
                return
            if reason.is_failure:
                self.refused += 1
            else:
                self.acknowledged += 1
            settled = self.acknowledged + self.refused
        if reason.is_failure:
            log.warning("broker refused a message on %s: %s", message[0], reason)
        if self._released is not None:
            self._released.release()
        if self._target is not None and settled >= self._target:
            self._reached.set()  # an Event: cheaper than notifying a Condition per PUBACK

    def _arm(self) -> None:
        """Resend the unrouted messages in `resend_after_s` (with the lock held)."""
        if self._timer is None and not self._closed:
            self._timer = threading.Timer(self._resend_after_s, self._resend)
            self._timer.daemon = True
            self._timer.start()

    def _resend(self) -> None:
        with self._lock:
            messages, self._unrouted, self._timer = self._unrouted, [], None
            client = self._client
            if self._closed or client is None:
                return
        log.info("%d messages had no subscriber yet (PUBACK 0x10): publishing them again", len(messages))
        for n, (topic, payload, qos) in enumerate(messages):
            if self.publish(client, topic, payload, qos).rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
                with self._lock:  # paho's queue is full: try these again later
                    self._unrouted.extend(messages[n:])
                    self._arm()
                return
            self.resent += 1

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


def close_client(client: mqtt.Client, acks: AckCounter | None = None) -> None:
    """Disconnect cleanly (the session, if any, stays for its expiry) and stop the network thread
    (and the resending of `acks`)."""
    if acks is not None:
        acks.close()
    client.disconnect()
    client.loop_stop()
