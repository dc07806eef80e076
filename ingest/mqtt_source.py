"""The ingest's MQTT side: one paho-mqtt 2.x client in a persistent shared-subscription session.

- MQTT v5, client id = the worker's stable id (`Settings.ingest_client_id`): on Mosquitto a
  shared-subscription member's unacknowledged and queued messages belong to its client id and
  wait for it while it is down, so a restarted worker with the same id gets them back.
- clean_start=False and a SessionExpiryInterval, so a restart resumes the session.
- manual_ack=True: `ack()` is called by the writer only after the commit.
- ReceiveMaximum bounds what the broker sends before acks come back (the batch in flight).
- Subscribes again on every connect: Mosquitto 2.0.11 forgets shared subscriptions across its
  own restart even when it keeps the session.
- paho's network thread is never held for long (ingest.handoff): a message the full hand-off
  refuses, and every later one on that connection, is left unacknowledged; once the writer has
  stored and acked the rest of that connection, `recover()` reconnects and the broker resends them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

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


class MqttSource:
    def __init__(
        self,
        endpoint: MqttEndpoint,
        client_id: str,
        subscription: str,
        handoff: HandOff,
        *,
        session_expiry_s: int,
        receive_maximum: int,
        username: str | None = None,
        password: str | None = None,
        clock: Callable[[], float],
    ) -> None:
        self.endpoint = endpoint
        self.subscription = subscription
        self.session_expiry_s = session_expiry_s
        self._handoff = handoff
        self._clock = clock
        self._connected = threading.Event()
        self.subscribed = threading.Event()
        self._connect_error: str | None = None
        self.connections = 0
        self.session_resumed = False
        self._refused_on = 0  # the connection whose messages the hand-off refused (0: none)
        self._leaving = False  # draining: never subscribe again

        client = SubscriberClient(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
            protocol=mqtt.MQTTv5, manual_ack=True,
        )
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        user = username or endpoint.username
        if user:
            client.username_pw_set(user, password or endpoint.password)
        if endpoint.tls:
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client
        self._connect_properties = Properties(PacketTypes.CONNECT)
        self._connect_properties.SessionExpiryInterval = session_expiry_s
        self._connect_properties.ReceiveMaximum = receive_maximum

    # --- paho's network thread --------------------------------------------------------------

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        connection = self.connections
        if self._refused_on == connection:
            return  # left unacknowledged: resent after `recover()` reconnects
        try:
            topic = message.topic
        except UnicodeDecodeError:  # the spec forbids it; keep the message anyway, as a dead letter
            topic = message._topic.decode("utf-8", "replace")
        if not self._handoff.put(Inbound(topic, bytes(message.payload), message.mid, message.qos, self._clock(),
                                         connection)) and not self._handoff.closed:
            self._refused_on = connection
            log.warning("hand-off full for %.0f s (the writer is stalled): messages on this connection stay "
                        "unacknowledged until the writer catches up, then come back on a new one",
                        self._handoff.full_hold_s)

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags,
                    reason: ReasonCode, properties: Properties | None) -> None:
        if reason.is_failure:
            self._connect_error = f"broker refused the connection: {reason}"
            self._connected.set()
            return
        self.connections += 1
        self.session_resumed = flags.session_present
        log.info("connected to %s (session %s)", self.endpoint,
                 "resumed" if flags.session_present else "new")
        # Subscribing again is harmless when the session kept the subscription, and needed when
        # the broker lost the session or, restarted, its shared subscriptions.
        if self._leaving:
            self.subscribed.set()
        else:
            client.subscribe(self.subscription, options=SubscribeOptions(qos=1))
        self._connected.set()

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int,
                      reason_codes: list[ReasonCode], properties: Properties | None) -> None:
        failed = [rc for rc in reason_codes if rc.is_failure]
        if failed:
            log.error("subscription to %s refused: %s", self.subscription, failed[0])
        else:
            self.subscribed.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: mqtt.DisconnectFlags,
                       reason: ReasonCode, properties: Properties | None) -> None:
        self.subscribed.clear()
        if reason.is_failure or reason.value != 0:
            log.warning("disconnected from %s: %s; paho reconnects", self.endpoint, reason)

    # --- the writer's thread ---------------------------------------------------------------

    def start(self) -> None:
        """Connect and resume or create the session; ServiceUnavailable if it can't.

        Returns on CONNACK, without waiting for SUBACK: a resumed session starts delivering at
        once, so the caller must start taking from the hand-off right away (see `subscribed`)."""
        try:
            self._client.connect(self.endpoint.host, self.endpoint.port, keepalive=KEEPALIVE_S,
                                 clean_start=False, properties=self._connect_properties)
        except OSError as exc:
            raise ServiceUnavailable(f"cannot reach the MQTT broker at {self.endpoint.host}:"
                                     f"{self.endpoint.port}: {exc.strerror or exc}") from None
        self._client.loop_start()
        if not self._connected.wait(CONNECT_TIMEOUT_S) or self._connect_error:
            self._client.loop_stop()
            raise ServiceUnavailable(self._connect_error or f"no CONNACK from {self.endpoint} "
                                     f"within {CONNECT_TIMEOUT_S} s")

    def ack(self, batch: list[Inbound]) -> None:
        """Acknowledge the stored messages of a batch that came on the current connection.

        After a reconnect the broker resends what was unacknowledged and may reuse the old packet
        ids for other messages, so a stale id is never acked: the resent copy is stored again
        (a duplicate, harmless) and acked on its own connection."""
        connection = self.connections
        self._client.ack_all([m.mid for m in batch if m.connection == connection and m.qos == 1])

    def recover(self) -> None:
        """After a hand-off refusal: once nothing of that connection waits in the hand-off (all of
        it stored and acked), reconnect, so the broker resends what was refused."""
        refused = self._refused_on
        if refused and refused == self.connections and not self._handoff.holds(refused):
            self._refused_on = -refused  # requested once per connection
            log.info("reconnecting to %s to get back the messages the hand-off refused", self.endpoint)
            self._client.request_reconnect()

    def unsubscribe(self) -> None:
        """Leave the share group, for good: the broker stops routing new messages to this worker."""
        self._leaving = True
        self._client.unsubscribe(self.subscription)

    def stop(self, *, end_session: bool = False) -> None:
        """Disconnect after the acks already queued are sent. With end_session the broker
        discards this worker's session (SessionExpiryInterval 0 in DISCONNECT)."""
        properties = None
        if end_session:
            properties = Properties(PacketTypes.DISCONNECT)
            properties.SessionExpiryInterval = 0
        self._client.disconnect(properties=properties)
        self._client.loop_stop()
