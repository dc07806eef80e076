"""One publish of a given size against a real broker, and what the publisher was told.

Used by the tests of the broker's packet size limit (tests/deploy, tests/embedded): a publish is
either acknowledged (PUBACK reason code) or ends the connection (DISCONNECT reason code for an MQTT
v5 client; a closed socket for 3.1.1). The probe never reconnects, so a refused message is not
resent in a loop as a long-lived paho client would.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

# The longest topic the contract allows: pilotlab/v1/{64-character pilot}/{64-character device}/telemetry
CONTRACT_TOPIC = f"pilotlab/v1/{'p' * 64}/{'d' * 64}/telemetry"


@dataclass
class Outcome:
    acked: ReasonCode | None = None  # the PUBACK's reason code, if one came
    disconnected: str | None = None  # the DISCONNECT's reason, if the broker ended the connection
    max_packet_size: int | None = None  # what the CONNACK announced (MQTT v5 only)

    @property
    def accepted(self) -> bool:
        return self.acked is not None and not self.acked.is_failure and self.disconnected is None


def publish_once(port: int, payload: bytes, *, protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTv5, topic: str = CONTRACT_TOPIC,
                 timeout_s: float = 5.0) -> Outcome:
    outcome = Outcome()
    done = threading.Event()
    connected = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"size-probe-{uuid.uuid4().hex[:8]}",
                         protocol=protocol)
    client.reconnect_delay_set(600, 600)  # one attempt only

    def on_connect(c: mqtt.Client, u: object, f: object, reason: ReasonCode, props: Properties | None) -> None:
        outcome.max_packet_size = getattr(props, "MaximumPacketSize", None)
        connected.set()

    def on_publish(c: mqtt.Client, u: object, mid: int, reason: ReasonCode, props: Properties) -> None:
        outcome.acked = reason
        done.set()

    def on_disconnect(c: mqtt.Client, u: object, f: object, reason: ReasonCode, props: Properties | None) -> None:
        if not done.is_set():
            outcome.disconnected = str(reason)
            done.set()

    client.on_connect, client.on_publish, client.on_disconnect = on_connect, on_publish, on_disconnect
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        assert connected.wait(timeout_s), "the broker did not answer the CONNECT"
        client.publish(topic, payload, qos=1)
        assert done.wait(timeout_s), "neither a PUBACK nor a disconnect"
    finally:
        client.disconnect()
        client.loop_stop()
    return outcome


class Listener:
    """A subscriber to `topic`, counting the payload sizes it receives."""

    def __init__(self, port: int, topic: str = CONTRACT_TOPIC) -> None:
        self.sizes: list[int] = []
        subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"size-listener-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        self.client.on_message = lambda c, u, m: self.sizes.append(len(m.payload))
        self.client.on_subscribe = lambda c, u, mid, codes, p: subscribed.set()
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe(topic, qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert subscribed.wait(5), "the listener's subscription was not granted"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
