"""A network server's MQTT stream as a second source feeding the worker's hand-off.

One paho client per configured source (`Settings.network_server_sources()`), in its own network
thread, appending `Inbound`s to the same bounded hand-off as the contract's `MqttSource`; the
writer's thread decodes, stores and acks them like any other message.

- ChirpStack on pilotlab's own broker (url unset): MQTT 5, QoS 1, a shared subscription of the
  worker's share group and a persistent session under `<client id>-<source name>`, acked after
  the commit like contract messages.
- The Things Stack's MQTT server: MQTT 3.1.1 and QoS 0 only. QoS 0 messages are never acked
  (there is nothing to ack): what the server drops is seen as a frame-counter gap.

Acks are routed by connection number: each source numbers its connections from its own base
(`(index + 1) << 32`), so a packet id is only ever acked on the connection it came on. A persistent
source subscribes again on every connect and gets back what a full hand-off refused by
reconnecting, as the contract source does (ingest.mqtt_source); a QoS 0 source just loses it
(there is no redelivery at QoS 0), and the frame counters show the gap. Draining (`--drain`), a
persistent source leaves its share group, delivers what its session held and ends the session.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest.adapters import NETWORK_SERVERS
from ingest.handoff import HandOff, Inbound
from ingest.paho_client import SubscriberClient
from pilotlab.errors import ServiceUnavailable
from pilotlab.settings import MqttEndpoint, NetworkServerSource

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10
KEEPALIVE_S = 30


class ExternalSource:
    def __init__(self, config: NetworkServerSource, index: int, default_endpoint: MqttEndpoint | None,
                 client_id: str, share_group: str, handoff: HandOff, *, session_expiry_s: int,
                 receive_maximum: int, password: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if config.url is None and default_endpoint is None:
            raise ServiceUnavailable(f"LPWA source {config.name!r} names no broker and none is configured")
        self.config = config
        self.endpoint = MqttEndpoint(config.url) if config.url else default_endpoint
        self._handoff = handoff
        self._clock = clock
        self._base = (index + 1) << 32
        self._connection = self._base
        self.subscribed = threading.Event()
        self._connected = threading.Event()
        self._connect_error: str | None = None
        self._refused_on = 0  # the connection whose messages the hand-off refused (0: none)
        self._leaving = False  # draining: never subscribe again
        v5 = config.protocol == "5"
        topics = config.topics or NETWORK_SERVERS[config.network_server].default_topics
        # A share name of its own per source: rumqttd (the iotcore fallback) keys shared groups by
        # name alone and round-robins a message to members whose filter does not match, which then
        # never see it (measured: 1 of 10 delivered when two filters shared one name).
        group = f"{share_group}-{config.name}"
        self.filters = [f"$share/{group}/{t}" if v5 and config.shared else t for t in topics]
        persistent = config.qos > 0
        self.client_id = f"{client_id}-{config.name}"
        self._client = SubscriberClient(
            mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311, manual_ack=True,
            clean_session=None if v5 else not persistent,
        )
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        assert self.endpoint is not None
        user, secret = config.username, config.password.get_secret_value() if config.password else None
        if user is None and config.url is None and password is not None:
            # pilotlab's own broker binds each account to one client id (access.credentials):
            # this source logs in as its own client id, with the worker's secret.
            user, secret = self.client_id, password
        elif user is None:
            user, secret = self.endpoint.username, self.endpoint.password
        if user:
            self._client.username_pw_set(user, secret)
        if self.endpoint.tls:
            self._client.tls_set()
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.on_disconnect = self._on_disconnect
        self._v5, self._persistent = v5, persistent
        self._properties: Properties | None = None
        if v5:
            self._properties = Properties(PacketTypes.CONNECT)
            self._properties.SessionExpiryInterval = session_expiry_s if persistent else 0
            self._properties.ReceiveMaximum = receive_maximum

    # --- paho's network thread --------------------------------------------------------------

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        connection = self._connection
        if self._refused_on == connection:
            return  # left unacknowledged: resent after `recover()` reconnects
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = message._topic.decode("utf-8", "replace")
        if not self._handoff.put(Inbound(topic, bytes(message.payload), message.mid, message.qos, self._clock(),
                                         connection)) and not self._handoff.closed:
            if message.qos == 0 or not self._persistent:
                return  # nothing to get back: counted as lost from the frame counters
            self._refused_on = connection
            log.warning("LPWA source %s: hand-off full for %.0f s (the writer is stalled): messages on this "
                        "connection stay unacknowledged, then come back on a new one",
                        self.config.name, self._handoff.full_hold_s)

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags, reason: object,
                    properties: Properties | None) -> None:
        if getattr(reason, "is_failure", False):
            self._connect_error = f"{self.config.name}: broker refused the connection: {reason}"
            self._connected.set()
            return
        self._connection += 1
        log.info("LPWA source %s connected to %s", self.config.name, self.endpoint)
        if self._leaving:
            self.subscribed.set()
        elif self._v5:
            client.subscribe([(f, SubscribeOptions(qos=self.config.qos)) for f in self.filters])
        else:
            client.subscribe([(f, int(self.config.qos)) for f in self.filters])
        self._connected.set()

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int, reason_codes: list[ReasonCode],
                      properties: Properties) -> None:
        if any(rc.is_failure for rc in reason_codes):
            log.error("LPWA source %s: subscription refused: %s", self.config.name, reason_codes)
        else:
            self.subscribed.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object, reason: object,
                       properties: Properties | None) -> None:
        self.subscribed.clear()
        if getattr(reason, "is_failure", True):
            log.warning("LPWA source %s disconnected (%s); paho reconnects", self.config.name, reason)

    # --- the writer's thread ---------------------------------------------------------------

    def start(self) -> None:
        assert self.endpoint is not None
        try:
            if self._v5:
                self._client.connect(self.endpoint.host, self.endpoint.port, keepalive=KEEPALIVE_S,
                                     clean_start=not self._persistent, properties=self._properties)
            else:
                self._client.connect(self.endpoint.host, self.endpoint.port, keepalive=KEEPALIVE_S)
        except OSError as exc:
            raise ServiceUnavailable(f"LPWA source {self.config.name}: cannot reach {self.endpoint.host}:"
                                     f"{self.endpoint.port}: {exc.strerror or exc}") from None
        self._client.loop_start()
        if not self._connected.wait(CONNECT_TIMEOUT_S) or self._connect_error:
            self._client.loop_stop()
            raise ServiceUnavailable(self._connect_error or f"LPWA source {self.config.name}: no CONNACK "
                                     f"from {self.endpoint} within {CONNECT_TIMEOUT_S} s")

    def ack(self, batch: list[Inbound]) -> None:
        """Ack the stored QoS 1 messages of a batch that came on this source's current connection."""
        connection = self._connection
        self._client.ack_all([m.mid for m in batch if m.connection == connection and m.qos == 1])

    def owns(self, message: Inbound) -> bool:
        return self._base <= message.connection < self._base + (1 << 32)

    def recover(self) -> None:
        """After a hand-off refusal, once nothing of that connection waits: reconnect (see module)."""
        refused = self._refused_on
        if refused and refused == self._connection and not self._handoff.holds(refused):
            self._refused_on = -refused
            log.info("LPWA source %s: reconnecting to get back the messages the hand-off refused", self.config.name)
            self._client.request_reconnect()

    @property
    def has_session(self) -> bool:
        """Whether the broker keeps a session for this source while it is away (a share to drain)."""
        return self._persistent

    def unsubscribe(self) -> None:
        """Leave the share group for good (draining): only what the session holds still comes."""
        self._leaving = True
        self._client.unsubscribe(self.filters)

    def stop(self, *, end_session: bool = False) -> None:
        """Disconnect after the queued acks; with end_session an MQTT 5 session ends at once."""
        properties = None
        if end_session and self._v5:
            properties = Properties(PacketTypes.DISCONNECT)
            properties.SessionExpiryInterval = 0
        self._client.disconnect(properties=properties)
        self._client.loop_stop()
