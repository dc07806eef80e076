"""The ingest's MQTT side: one paho-mqtt 2.x client per source, each in its own network thread,
appending `Inbound`s to the worker's one bounded hand-off. The same class serves the contract's
subscription and every network-server source (ingest.sources builds them from the settings):

- a persistent source (QoS 1; the contract's, ChirpStack's on pilotlab's broker) is MQTT v5 with
  a stable client id, clean_start=False and a SessionExpiryInterval, so a restart resumes the
  session: on Mosquitto a shared-subscription member's unacknowledged and queued messages belong
  to its client id and wait for it while it is down, so a restarted worker with the same id gets
  them back. manual_ack=True: `ack()` is called by the writer only after the commit, and
  ReceiveMaximum bounds what the broker sends before acks come back (the batch in flight);
- a QoS 0 source (The Things Stack's MQTT server: MQTT 3.1.1, QoS 0 only) has no session and
  nothing to ack: what it drops is seen as a frame-counter gap.

Every source subscribes again on every connect: Mosquitto 2.0.11 forgets shared subscriptions
across its own restart even when it keeps the session. Acks are routed by connection number:
each source numbers its connections from its own base, so a packet id is only ever acked on the
connection it came on. paho's network thread is never held for long (ingest.handoff): a QoS 1
message the full hand-off refuses, and every later one on that connection, is left
unacknowledged; once the writer has stored and acked the rest of that connection, `recover()`
reconnects and the broker resends them (a refused QoS 0 message is lost, as QoS 0 allows).
Draining, a source leaves its share group (`unsubscribe`), delivers what its session held, and
`stop(end_session=True)` ends the session.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest.handoff import HandOff, Inbound
from ingest.paho_client import SubscriberClient
from pilotlab.errors import ServiceUnavailable
from pilotlab.settings import MqttEndpoint

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10
KEEPALIVE_S = 30


def shared_filter(group: str, topic_filter: str) -> str:
    return f"$share/{group}/{topic_filter}"


@dataclass(frozen=True)
class SourceConfig:
    """What one MQTT source connects to and subscribes, and as whom."""

    endpoint: MqttEndpoint
    client_id: str
    topics: Sequence[str]
    session_expiry_s: int
    receive_maximum: int
    share_group: str | None = None  # MQTT 5 shared subscription of this group (None: every message)
    protocol: Literal["3.1.1", "5"] = "5"
    qos: Literal[0, 1] = 1
    username: str | None = None
    password: str | None = None
    name: str = ""  # said in logs and errors ("" for the contract's subscription)
    connection_base: int = 0  # this source's connections are numbered base + 1, base + 2, …


class MqttSource:
    def __init__(self, config: SourceConfig, handoff: HandOff, *, clock: Callable[[], float]) -> None:
        self.config = config
        self.endpoint = config.endpoint
        self.client_id = config.client_id
        self._v5 = config.protocol == "5"
        self._persistent = config.qos > 0
        self.filters = [shared_filter(config.share_group, t) if self._v5 and config.share_group else t
                        for t in config.topics]
        self._handoff = handoff
        self._clock = clock
        self._prefix = f"{config.name}: " if config.name else ""
        self._connected = threading.Event()
        self.subscribed = threading.Event()
        self._connect_error: str | None = None
        self.connections = 0
        self._connection = config.connection_base  # the current connection's number
        self.session_resumed = False
        self._refused_on = 0  # the connection whose messages the hand-off refused (0: none)
        self._leaving = False  # draining: never subscribe again

        client = SubscriberClient(
            mqtt.CallbackAPIVersion.VERSION2, client_id=config.client_id,
            protocol=mqtt.MQTTv5 if self._v5 else mqtt.MQTTv311, manual_ack=True,
            clean_session=None if self._v5 else not self._persistent,
        )
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        if config.username:
            client.username_pw_set(config.username, config.password)
        if config.endpoint.tls:
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client
        self._connect_properties: Properties | None = None
        if self._v5:
            self._connect_properties = Properties(PacketTypes.CONNECT)
            self._connect_properties.SessionExpiryInterval = config.session_expiry_s if self._persistent else 0
            self._connect_properties.ReceiveMaximum = config.receive_maximum

    @property
    def subscription(self) -> str:
        return ", ".join(self.filters)

    @property
    def has_session(self) -> bool:
        """Whether the broker keeps a session for this source while it is away (a share to drain)."""
        return self._persistent

    # --- paho's network thread --------------------------------------------------------------

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        connection = self._connection
        if self._refused_on == connection:
            return  # left unacknowledged: resent after `recover()` reconnects
        try:
            topic = message.topic
        except UnicodeDecodeError:  # the spec forbids it; keep the message anyway, as a dead letter
            topic = message._topic.decode("utf-8", "replace")
        if not self._handoff.put(Inbound(topic, bytes(message.payload), message.mid, message.qos, self._clock(),
                                         connection)) and not self._handoff.closed:
            if message.qos == 0:
                return  # nothing to get back: a network server's loss shows in its frame counters
            self._refused_on = connection
            log.warning("%shand-off full for %.0f s (the writer is stalled): messages on this connection stay "
                        "unacknowledged until the writer catches up, then come back on a new one",
                        self._prefix, self._handoff.full_hold_s)

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags,
                    reason: ReasonCode, properties: Properties | None) -> None:
        if reason.is_failure:
            self._connect_error = f"{self._prefix}broker refused the connection: {reason}"
            self._connected.set()
            return
        self.connections += 1
        self._connection = self.config.connection_base + self.connections
        self.session_resumed = flags.session_present
        log.info("%sconnected to %s (session %s)", self._prefix, self.endpoint,
                 "resumed" if flags.session_present else "new")
        # Subscribing again is harmless when the session kept the subscription, and needed when
        # the broker lost the session or, restarted, its shared subscriptions.
        if self._leaving:
            self.subscribed.set()
        elif self._v5:
            client.subscribe([(f, SubscribeOptions(qos=self.config.qos)) for f in self.filters])
        else:
            client.subscribe([(f, int(self.config.qos)) for f in self.filters])
        self._connected.set()

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int,
                      reason_codes: list[ReasonCode], properties: Properties | None) -> None:
        failed = [rc for rc in reason_codes if rc.is_failure]
        if failed:
            log.error("%ssubscription to %s refused: %s", self._prefix, self.subscription, failed[0])
        else:
            self.subscribed.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: mqtt.DisconnectFlags,
                       reason: ReasonCode, properties: Properties | None) -> None:
        self.subscribed.clear()
        if reason.is_failure or reason.value != 0:
            log.warning("%sdisconnected from %s: %s; paho reconnects", self._prefix, self.endpoint, reason)

    # --- the writer's thread ---------------------------------------------------------------

    def start(self) -> None:
        """Connect and resume or create the session; ServiceUnavailable if it can't.

        Returns on CONNACK, without waiting for SUBACK: a resumed session starts delivering at
        once, so the caller must start taking from the hand-off right away (see `subscribed`)."""
        endpoint = self.endpoint
        try:
            if self._v5:
                self._client.connect(endpoint.host, endpoint.port, keepalive=KEEPALIVE_S,
                                     clean_start=not self._persistent, properties=self._connect_properties)
            else:
                self._client.connect(endpoint.host, endpoint.port, keepalive=KEEPALIVE_S)
        except OSError as exc:
            raise ServiceUnavailable(f"{self._prefix}cannot reach the MQTT broker at {endpoint.host}:"
                                     f"{endpoint.port}: {exc.strerror or exc}") from None
        self._client.loop_start()
        if not self._connected.wait(CONNECT_TIMEOUT_S) or self._connect_error:
            self._client.loop_stop()
            raise ServiceUnavailable(self._connect_error or f"{self._prefix}no CONNACK from {endpoint} "
                                     f"within {CONNECT_TIMEOUT_S} s")

    def ack(self, batch: list[Inbound]) -> None:
        """Acknowledge the stored QoS 1 messages of a batch that came on this source's current connection.

        After a reconnect the broker resends what was unacknowledged and may reuse the old packet
        ids for other messages, so a stale id is never acked: the resent copy is stored again
        (a duplicate, harmless) and acked on its own connection."""
        connection = self._connection
        self._client.ack_all([m.mid for m in batch if m.connection == connection and m.qos == 1])

    def recover(self, taken: Sequence[Inbound] = ()) -> None:
        """After a hand-off refusal: once nothing of that connection waits in the hand-off or among
        `taken` (taken from it, not yet acked), reconnect, so the broker resends what was refused."""
        refused = self._refused_on
        if (refused and refused == self._connection and not self._handoff.holds(refused)
                and not any(message.connection == refused for message in taken)):
            self._refused_on = -refused  # requested once per connection
            log.info("%sreconnecting to %s to get back the messages the hand-off refused", self._prefix, self.endpoint)
            self._client.request_reconnect()

    def unsubscribe(self) -> None:
        """Leave the share group, for good (draining): the broker stops routing new messages here,
        and only what the session holds still comes."""
        self._leaving = True
        self._client.unsubscribe(self.filters)

    def stop(self, *, end_session: bool = False) -> None:
        """Disconnect after the acks already queued are sent. With end_session the broker
        discards this source's MQTT 5 session (SessionExpiryInterval 0 in DISCONNECT)."""
        properties = None
        if end_session and self._v5:
            properties = Properties(PacketTypes.DISCONNECT)
            properties.SessionExpiryInterval = 0
        self._client.disconnect(properties=properties)
        self._client.loop_stop()
