"""A client of Mosquitto's dynamic-security plugin: JSON commands over MQTT.

Commands are published to `$CONTROL/dynamic-security/v1` as `{"commands": [{"command": …}, …]}`
by an account with the plugin's admin role; the plugin answers on `…/v1/response` with
`{"responses": [{"command", "error"?, "data"?, "correlationData"?}, …]}`, one per command, in
order. Each command here carries a correlationData, so answers are matched exactly.

Commands go in as few messages as fit under the broker's Maximum Packet Size (announced in its
CONNACK; deploy/mosquitto/mosquitto.conf sets max_packet_size): the broker disconnects a client
that sends a larger packet, and the plugin would never see the commands.

The plugin takes plaintext passwords only (createClient, setClientPassword) and hashes them
itself (PBKDF2-HMAC-SHA512, see access.credentials): a password is sent only at the moment it is
issued, on an admin connection that should be TLS or loopback. Commands are never logged with
their passwords.
"""

from __future__ import annotations

import logging
import ssl
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from pilotlab.errors import PilotlabError, ServiceUnavailable
from pilotlab.settings import MqttEndpoint

log = logging.getLogger(__name__)

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
TIMEOUT_S = 10.0
BATCH = 100  # commands per message at most: keeps each answer small
MAX_MESSAGE_BYTES = 65_536  # per message when the broker announces no Maximum Packet Size
_ENVELOPE = (b'{"commands":[', b"]}")
# Of the packet, what is not the JSON: fixed header (5), topic (2 + 27), packet id (2), properties
_PUBLISH_OVERHEAD = 64


class DynsecError(PilotlabError):
    """The plugin refused a command; the message names the command and the plugin's reason."""


@dataclass(frozen=True)
class Answer:
    command: str
    error: str | None
    data: dict[str, Any] | None


class DynsecClient:
    """One admin connection to the plugin. Use as a context manager."""

    def __init__(self, endpoint: MqttEndpoint, username: str, password: str, *, timeout_s: float = TIMEOUT_S) -> None:
        self.endpoint = endpoint
        self.username = username
        self.timeout_s = timeout_s
        self.max_packet_size: int | None = None  # the broker's, from its CONNACK
        self._answers: dict[str, dict[str, Any]] = {}
        self._arrived = threading.Condition()
        self._ready = threading.Event()
        self._refused: ReasonCode | None = None
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pilotlab-dynsec-{uuid.uuid4().hex[:8]}",
                             protocol=mqtt.MQTTv5)
        client.username_pw_set(username, password)
        if endpoint.tls:
            client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client

    def __enter__(self) -> DynsecClient:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        try:
            self._client.connect(self.endpoint.host, self.endpoint.port, keepalive=30)
        except (OSError, ValueError) as exc:
            raise ServiceUnavailable(f"cannot reach the MQTT broker at {self.endpoint.host}:{self.endpoint.port}: "
                                     f"{getattr(exc, 'strerror', None) or exc}") from None
        self._client.loop_start()
        if not self._ready.wait(self.timeout_s) or self._refused is not None:
            self.close()
            why = f"refused the admin account: {self._refused}" if self._refused else "did not answer"
            raise ServiceUnavailable(f"the broker's dynamic-security plugin at {self.endpoint.host}:{self.endpoint.port} {why}")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def run(self, commands: Sequence[dict[str, Any]], *, check: bool = True) -> list[Answer]:
        """Send the commands (in batches, in order) and return their answers in the same order.

        With `check`, the first refused command raises DynsecError."""
        answers: list[Answer] = []
        for batch in self._messages(commands):
            answers += self._run_batch(batch)
        if check:
            for sent, answer in zip(commands, answers, strict=True):
                if answer.error:
                    raise DynsecError(f"{answer.command} {_subject(sent)}: {answer.error}")
        return answers

    def one(self, command: dict[str, Any]) -> Answer:
        return self.run([command])[0]

    # -- queries used by the sync -------------------------------------------------------------

    def list_clients(self) -> list[dict[str, Any]]:
        data = self.one({"command": "listClients", "verbose": True, "count": -1, "offset": 0}).data or {}
        return list(data.get("clients", []))

    def list_roles(self) -> list[dict[str, Any]]:
        data = self.one({"command": "listRoles", "verbose": True, "count": -1, "offset": 0}).data or {}
        return list(data.get("roles", []))

    # -- internals ---------------------------------------------------------------------------

    @property
    def max_message_bytes(self) -> int:
        """The largest command message the broker takes from this connection."""
        if self.max_packet_size is None:
            return MAX_MESSAGE_BYTES
        return min(MAX_MESSAGE_BYTES, self.max_packet_size - _PUBLISH_OVERHEAD)

    def _messages(self, commands: Sequence[dict[str, Any]]) -> Iterator[list[tuple[str, bytes]]]:
        """The commands, each encoded with its correlationData, in messages under the broker's limit."""
        limit = self.max_message_bytes - len(_ENVELOPE[0]) - len(_ENVELOPE[1])
        tag = uuid.uuid4().hex
        batch: list[tuple[str, bytes]] = []
        size = 0
        for index, command in enumerate(commands):
            cid = f"{tag}-{index}"
            encoded = orjson.dumps({**command, "correlationData": cid})
            if len(encoded) > limit:
                raise DynsecError(f"{command.get('command')} {_subject(command)} is {len(encoded)} bytes of JSON; "
                                  f"the broker takes messages up to {self.max_message_bytes}")
            if batch and (len(batch) == BATCH or size + 1 + len(encoded) > limit):
                yield batch
                batch, size = [], 0
            size += len(encoded) + (1 if batch else 0)
            batch.append((cid, encoded))
        if batch:
            yield batch

    def _run_batch(self, batch: list[tuple[str, bytes]]) -> list[Answer]:
        ids = [cid for cid, _ in batch]
        body = _ENVELOPE[0] + b",".join(encoded for _, encoded in batch) + _ENVELOPE[1]
        info = self._client.publish(CONTROL_TOPIC, body, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise ServiceUnavailable(f"lost the broker while sending dynamic-security commands (rc {info.rc})")
        with self._arrived:
            if not self._arrived.wait_for(lambda: all(i in self._answers for i in ids), self.timeout_s):
                raise ServiceUnavailable(f"the dynamic-security plugin did not answer within {self.timeout_s:g} s")
            raw = [self._answers.pop(i) for i in ids]
        return [Answer(str(r.get("command", "")), r.get("error"), r.get("data")) for r in raw]

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags, reason: ReasonCode,
                    properties: Properties | None) -> None:
        if reason.is_failure:
            self._refused = reason
            self._ready.set()
            return
        self.max_packet_size = getattr(properties, "MaximumPacketSize", None)
        client.subscribe(RESPONSE_TOPIC, qos=1)

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int, reason_codes: list[ReasonCode],
                      properties: Properties | None) -> None:
        if any(code.is_failure for code in reason_codes):
            self._refused = reason_codes[0]
        self._ready.set()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        try:
            responses = orjson.loads(message.payload).get("responses", [])
        except (orjson.JSONDecodeError, AttributeError):
            log.warning("unreadable dynamic-security response on %s", message.topic)
            return
        with self._arrived:
            for response in responses:
                cid = response.get("correlationData")
                if isinstance(cid, str):
                    self._answers[cid] = response
            self._arrived.notify_all()


def _subject(command: dict[str, Any]) -> str:
    """What a command is about, for error messages (never its password)."""
    for key in ("username", "rolename", "groupname"):
        if key in command:
            return f"{key}={command[key]}"
    return ""
