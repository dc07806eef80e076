"""What a parser yields, and the interface every format other than contract v1 is read through.

A parser knows one format and nothing of the registry or the database: `claims(topic)` says
whether a topic is its own, `parse(message)` turns the message into one event (an uplink, a
join, a gateway's report) or raises MessageRejected with the reason. The intakes (ingest.adapters
.lorawan for LoRaWAN events, .wifi_gateway for gateway reports) turn events into rows, link
records and dead letters, so ChirpStack and The Things Stack share everything past the parse.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from devices import json_payload
from ingest.handoff import Inbound
from pilotlab.errors import MessageRejected, RejectReason


class Reception(NamedTuple):
    gateway_id: str  # ChirpStack: the gateway's EUI; The Things Stack: its gateway id
    rssi_dbm: float | None
    snr_db: float | None
    gateway_eui: str | None = None  # lower-case hex, from both network servers


class Radio(NamedTuple):
    spreading_factor: int | None = None
    bandwidth_hz: int | None = None
    frequency_hz: int | None = None
    data_rate_index: int | None = None  # ChirpStack `dr`; The Things Stack `settings.data_rate_index` (older)

    @property
    def data_rate(self) -> str | None:
        if self.spreading_factor is None or self.bandwidth_hz is None:
            return None
        return f"SF{self.spreading_factor}BW{self.bandwidth_hz // 1000}"


class Uplink(NamedTuple):
    network_server: str
    application_id: str
    dev_eui: str | None  # lower-case hex
    device_hint: str | None  # the network server's own device id (TTS), tried when no DevEUI
    fcnt: int
    f_port: int
    uplink_time: datetime
    data_b64: str
    decoded: dict[str, Any] | None
    receptions: list[Reception]
    radio: Radio
    dev_addr: str | None = None  # lower-case hex
    mac_only: bool = False  # fPort 0 or no application payload: a frame to count, no reading


class Join(NamedTuple):
    network_server: str
    application_id: str
    dev_eui: str | None
    device_hint: str | None
    joined_at: datetime
    dev_addr: str | None


class GatewayReport(NamedTuple):
    """A Wi-Fi gateway's message, addressed by its topic; its payload is read once the gateway is
    known (ingest.adapters.wifi_gateway), so an unregistered gateway is refused as such."""

    pilot_id: str
    gateway_id: str
    channel: str  # "batch" or "gateway_status"
    payload: bytes


Event = Uplink | Join | GatewayReport


class Parser(Protocol):
    def claims(self, topic: str) -> bool: ...

    def parse(self, message: Inbound) -> Event:
        """The event `message` carries; MessageRejected with the reason if it carries none."""
        ...


class NetworkServerParser:
    """A LoRaWAN network server's MQTT integration: a JSON object per event, under a topic prefix."""

    def __init__(self, network_server: str, topic_prefix: str, default_topics: tuple[str, ...],
                 event_of: Callable[[str, dict[str, Any]], Uplink | Join]) -> None:
        self.network_server = network_server
        self.topic_prefix = topic_prefix
        self.default_topics = default_topics
        self._event_of = event_of

    def claims(self, topic: str) -> bool:
        return topic.startswith(self.topic_prefix)

    def parse(self, message: Inbound) -> Uplink | Join:
        body = json_payload.read(message.payload)
        if not isinstance(body, dict):
            raise MessageRejected(RejectReason.MALFORMED_JSON, "expected a JSON object")
        return self._event_of(message.topic, body)
