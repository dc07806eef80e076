"""A Wi-Fi smart switch that takes commands (devices.commands), as firmware would.

It connects as its device (client id = its id, or its account's username), subscribes to its own
command topic at QoS 1 and, by its mode:

- `obey`: sets its relay, acknowledges on its ack topic (`relay_on` after the command) and reports
  the new state on its telemetry topic (trigger `remote`);
- `report`: sets its relay and reports it, with no acknowledgement message (the report is the
  acknowledgement, by the report rule);
- `ignore`: takes the command off the broker and does nothing.

A command past its `expires_at` by the switch's clock is dropped unanswered, as the contract asks
of a device on MQTT 3.1.1 (a v5 broker drops it itself). `received` lists every command taken.
`ack_delay_s` holds each answer back that long, for round trips of a known length.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from devices.contract import ack_topic, command_topic, topic_for
from devices.kinds import Channel
from pilotlab.errors import ServiceUnavailable
from pilotlab.settings import MqttEndpoint

CONNECT_TIMEOUT_S = 5.0


class CommandMode(StrEnum):
    OBEY = "obey"
    REPORT = "report"
    IGNORE = "ignore"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class CommandedSwitch:
    def __init__(self, endpoint: MqttEndpoint, pilot_id: str, device_id: str, mode: CommandMode = CommandMode.OBEY, *,
                 username: str | None = None, password: str | None = None, relay_on: bool = False,
                 ack_delay_s: float = 0.0, clock: Callable[[], datetime] = _utc_now) -> None:
        self.pilot_id, self.device_id, self.mode = pilot_id, device_id, mode
        self.relay_on = relay_on
        self.ack_delay_s = ack_delay_s
        self.received: list[dict[str, Any]] = []
        self._clock = clock
        self._seq = 0
        self._endpoint = endpoint
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=username or device_id, protocol=mqtt.MQTTv5)
        if username is not None:
            self._client.username_pw_set(username, password)
        self._client.on_message = self._on_message
        self._subscribed = threading.Event()
        self._client.on_subscribe = lambda c, u, mid, reasons, p: self._subscribed.set()
        self._client.on_connect = self._on_connect

    def start(self) -> CommandedSwitch:
        """Connect and subscribe; ServiceUnavailable if the broker does not grant the subscription."""
        self._client.connect(self._endpoint.host, self._endpoint.port, keepalive=30)
        self._client.loop_start()
        if not self._subscribed.wait(CONNECT_TIMEOUT_S):
            self.stop()
            raise ServiceUnavailable(f"switch {self.device_id}: no subscription to its command topic")
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> CommandedSwitch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _on_connect(self, c: mqtt.Client, u: object, f: mqtt.ConnectFlags, reason: ReasonCode,
                    p: Properties | None) -> None:
        if not reason.is_failure:
            c.subscribe(command_topic(self.pilot_id, self.device_id), qos=1)

    def _on_message(self, c: mqtt.Client, u: object, message: mqtt.MQTTMessage) -> None:
        command = orjson.loads(message.payload)
        self.received.append(command)
        now = self._clock()
        if self.mode is CommandMode.IGNORE or datetime.fromisoformat(command["expires_at"]) < now:
            return
        if self.ack_delay_s:
            time.sleep(self.ack_delay_s)  # paho's thread: the next command waits, as a busy MCU's would
        self.relay_on = bool(command["relay_on"])
        stamp = self._clock().isoformat(timespec="milliseconds")
        if self.mode is CommandMode.OBEY:
            ack = {"correlation_id": command["correlation_id"], "relay_on": self.relay_on, "ts": stamp}
            c.publish(ack_topic(self.pilot_id, self.device_id), orjson.dumps(ack), qos=1)
        self._seq += 1
        report = {"ts": stamp, "seq": self._seq, "relay_on": self.relay_on, "trigger": "remote"}
        c.publish(topic_for(self.pilot_id, self.device_id, Channel.TELEMETRY), orjson.dumps(report), qos=1)
