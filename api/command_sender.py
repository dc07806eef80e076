"""Where a switch command goes and how it is published (the API's side of devices.commands).

Route: a switch speaking the contract gets the command on its own `…/cmd` topic on pilotlab's
broker (MQTT v5, QoS 1, Message Expiry Interval, Correlation Data, Response Topic = its ack
topic). A LoRaWAN switch (a DevEUI, or uplinks heard from a network server) gets a downlink
through the network server its newest uplink came from (else its pilot's only one), to its
pilot's registered application there (`POST /network-server-applications`): ChirpStack by DevEUI,
The Things Stack by device id, which is the device's pilotlab id (the id uplinks are matched by
when there is no DevEUI). The network server is reached as ingest reads it: the LPWA source of
that network server (`PILOTLAB_LPWA_SOURCES`: its url, account, protocol and QoS; url unset:
pilotlab's broker), else pilotlab's broker for ChirpStack.

Publishing: one short connection per command, under the API's broker account
(`PILOTLAB_MQTT_USERNAME`, a `pilotlab credentials issue … --service api` account; the broker
binds its client id to the username, so one account per API process), serialised per client id.
The command counts as sent once the broker takes it (PUBACK below 0x80; QoS 0: once written).
"""

from __future__ import annotations

import re
import secrets
import ssl
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from devices import commands
from devices.contract import ack_topic, command_topic
from devices.kinds import DeviceKind
from devices.profiles import SwitchDownlink
from pilotlab.errors import Conflict
from pilotlab.settings import MqttEndpoint, NetworkServerSource, Settings
from store.commands import SwitchAddress

TIMEOUT_S = 5.0
NO_MATCHING_SUBSCRIBERS = 0x10
# The Things Stack's end device ids (its ID constraints): 3-36 of a-z 0-9 and single dashes inside
TTS_DEVICE_ID = re.compile(r"^[a-z0-9](?:-?[a-z0-9]){2,35}$")


@dataclass(frozen=True)
class Broker:
    endpoint: MqttEndpoint
    username: str | None
    password: str | None
    protocol: Literal["5", "3.1.1"] = "5"
    qos: Literal[0, 1] = 1
    own: bool = True  # pilotlab's broker: the account's username is its client id


class Route(NamedTuple):
    transport: str  # mqtt | chirpstack | tts
    topic: str
    broker: Broker


class NotSent(Exception):
    """The broker did not take the command (unreachable, or it refused it): `detail` says why."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def own_broker(settings: Settings) -> Broker:
    endpoint = settings.mqtt
    secret = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    return Broker(endpoint, settings.mqtt_username or endpoint.username, secret or endpoint.password)


def _source_broker(settings: Settings, network_server: str, application_id: str) -> Broker:
    sources = [s for s in settings.network_server_sources() if s.network_server == network_server]
    source: NetworkServerSource | None = next((s for s in sources if s.username == application_id),
                                              sources[0] if sources else None)
    if source is None and network_server == "tts":
        raise Conflict("no The Things Stack source is configured (PILOTLAB_LPWA_SOURCES) to send the downlink through")
    if source is None or source.url is None:
        return own_broker(settings)
    secret = source.password.get_secret_value() if source.password else None
    return Broker(MqttEndpoint(source.url), source.username, secret, source.protocol, source.qos, own=False)


def plan(settings: Settings, address: SwitchAddress, command_id: str, relay_on: bool, sent_at: datetime,
         expires_at: datetime) -> tuple[Route, bytes]:
    """The route and payload of a command to `address`; Conflict if it cannot be sent."""
    if address.kind != DeviceKind.SMART_SWITCH.value:
        raise Conflict(f"device {address.device_id!r} is a {address.kind}: only smart switches take commands")
    if address.decommissioned:
        raise Conflict(f"device {address.device_id!r} is decommissioned")
    if address.dev_eui is None and address.network_server is None:
        topic = command_topic(address.pilot_id, address.device_id)
        return Route("mqtt", topic, own_broker(settings)), commands.command_payload(command_id, relay_on, sent_at, expires_at)
    network_server = address.network_server or _only_network_server(address)
    applications = [app for ns, app in address.applications if ns == network_server]
    if len(applications) != 1:
        raise Conflict(f"pilot {address.pilot_id!r} has {len(applications)} {network_server} applications registered "
                       f"({', '.join(applications) or 'none'}): a downlink needs exactly one (POST /network-server-applications)")
    definition = (address.profile_definition or {}).get("downlink")
    frame = commands.downlink_frame(SwitchDownlink.model_validate(definition) if definition else None, relay_on)
    if network_server == "chirpstack":
        if address.dev_eui is None:
            raise Conflict(f"device {address.device_id!r} has no DevEUI: ChirpStack takes downlinks by DevEUI")
        topic, body = commands.chirpstack_downlink(applications[0], address.dev_eui, command_id, frame)
    else:
        if not TTS_DEVICE_ID.fullmatch(address.device_id):
            raise Conflict(f"device id {address.device_id!r} is no The Things Stack device id (3-36 of a-z 0-9 -): "
                           "register the device under its The Things Stack id")
        topic, body = commands.tts_downlink(applications[0], address.device_id, command_id, frame)
    return Route(network_server, topic, _source_broker(settings, network_server, applications[0])), body


def _only_network_server(address: SwitchAddress) -> str:
    servers = sorted({ns for ns, _ in address.applications})
    if len(servers) != 1:
        raise Conflict(f"device {address.device_id!r}: no uplink heard yet, and its pilot has "
                       f"{'no' if not servers else 'more than one'} network server to send the downlink through")
    return servers[0]


_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def publish(route: Route, payload: bytes, *, command_id: str, expiry_s: int, response_topic: str | None) -> str | None:
    """Publish once; returns a note of what the broker said when it took the command without a
    subscriber (PUBACK 0x10), else None. NotSent if it did not take it."""
    broker = route.broker
    if not (broker.own and broker.username):  # a client id of its own: nothing to wait for
        client_id = f"pilotlab-api-{secrets.token_hex(6)}"
        return _publish_once(broker, client_id, route.topic, payload, command_id, expiry_s, response_topic)
    with _locks_guard:  # the account's one client id: a second connection would take the first one's over
        lock = _locks.setdefault(broker.username, threading.Lock())
    with lock:
        return _publish_once(broker, broker.username, route.topic, payload, command_id, expiry_s, response_topic)


def _publish_once(broker: Broker, client_id: str, topic: str, payload: bytes, command_id: str, expiry_s: int,
                  response_topic: str | None) -> str | None:
    v5 = broker.protocol == "5"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)
    if broker.username:
        client.username_pw_set(broker.username, broker.password)
    if broker.endpoint.tls:
        client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
    connected, answered = threading.Event(), threading.Event()
    outcome: dict[str, ReasonCode] = {}

    def on_connect(c: mqtt.Client, u: object, f: mqtt.ConnectFlags, reason: ReasonCode, p: Properties | None) -> None:
        outcome["connack"] = reason
        connected.set()

    def on_publish(c: mqtt.Client, u: object, mid: int, reason: ReasonCode, p: Properties | None) -> None:
        outcome["puback"] = reason
        answered.set()

    client.on_connect, client.on_publish = on_connect, on_publish
    where = f"{broker.endpoint.host}:{broker.endpoint.port}"
    try:
        client.connect(broker.endpoint.host, broker.endpoint.port, keepalive=30)
    except (OSError, ValueError) as exc:
        raise NotSent(f"the broker at {where} cannot be reached: {getattr(exc, 'strerror', None) or exc}") from None
    client.loop_start()
    try:
        if not connected.wait(TIMEOUT_S) or outcome["connack"].is_failure:
            why = outcome["connack"] if "connack" in outcome else f"no answer within {TIMEOUT_S:g} s"
            raise NotSent(f"the broker at {where} refused the connection: {why}")
        properties = None
        if v5:
            properties = Properties(PacketTypes.PUBLISH)
            properties.MessageExpiryInterval = expiry_s
            properties.CorrelationData = command_id.encode()
            properties.ContentType = "application/json"
            if response_topic is not None:
                properties.ResponseTopic = response_topic
        info = client.publish(topic, payload, qos=broker.qos, retain=False, properties=properties)
        if broker.qos == 0:
            info.wait_for_publish(TIMEOUT_S)
            if not info.is_published():
                raise NotSent(f"the command was not written to {where} within {TIMEOUT_S:g} s")
            return None
        if not answered.wait(TIMEOUT_S):
            raise NotSent(f"the broker at {where} did not acknowledge the command within {TIMEOUT_S:g} s")
        reason = outcome["puback"]
        if reason.is_failure:
            raise NotSent(f"the broker at {where} refused the command: {reason}")
        if reason.value == NO_MATCHING_SUBSCRIBERS:
            return "no subscriber: the device is not subscribed to its command topic"
        return None
    finally:
        client.disconnect()
        client.loop_stop()


def response_topic(route: Route, address: SwitchAddress) -> str | None:
    return ack_topic(address.pilot_id, address.device_id) if route.transport == "mqtt" else None
