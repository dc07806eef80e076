"""Adapters: topics other than contract v1's, each turned into readings, link records (frames,
receptions, joins, gateway messages) or dead letters with a specific reason.

    contract v1     pilotlab/v1/{pilot}/{device}/{telemetry|status|event}   ingest.decode (hot path)
    Wi-Fi gateway   pilotlab/v1/{pilot}/{gateway}/{batch|gateway_status}     wifi_gateway
    ChirpStack v4   application/{app}/device/{DevEUI}/event/{up|join}        chirpstack
    TTS v3          v3/{app}@{tenant}/devices/{device}/{up|join}             things_stack

Each format is a parser behind one interface (events.Parser: `claims(topic)`, `parse(message)`
→ an uplink, a join or a gateway report); the intakes turn events into rows and records: one
LoRaWAN intake for every network server (lorawan), one for gateway reports (wifi_gateway). What a
frame's bytes mean is ingest.readings' concern, shared with the contract path.

`ingest.decode.Decoder` tries the contract first and hands a message here only when its topic is
not a contract topic, so the contract path does no extra work per message. Everything here runs
on the worker's main thread (see ingest/__init__.py); the directory reads the registry with the
writer's connection between batches.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

import psycopg

from ingest.adapters import chirpstack, things_stack, wifi_gateway
from ingest.adapters.events import Join, Parser, Uplink
from ingest.adapters.link_directory import LinkDirectory
from ingest.adapters.lorawan import LorawanIntake
from ingest.adapters.wifi_gateway import WifiGatewayIntake
from ingest.handoff import Inbound
from ingest.rows import DeviceLookup, Outputs, dead_letter
from pilotlab.errors import MessageRejected, RejectReason
from pilotlab.settings import NetworkServerSource

__all__ = ["AdapterSet", "NETWORK_SERVERS", "PARSERS"]

# Every format ingest reads besides the contract, in the order they are asked to claim a topic.
PARSERS: tuple[Parser, ...] = (wifi_gateway.PARSER, chirpstack.PARSER, things_stack.PARSER)
NETWORK_SERVERS = {parser.network_server: parser for parser in (chirpstack.PARSER, things_stack.PARSER)}

log = logging.getLogger(__name__)


class AdapterSet:
    """Every parser and intake of one worker, with the registry view they share."""

    def __init__(self, refresh_s: float, max_payload_bytes: int,
                 sources: Sequence[NetworkServerSource] = ()) -> None:
        self.directory = LinkDirectory(refresh_s)
        fcnt_bits: dict[str, int] = {}
        for source in sources:
            fcnt_bits.setdefault(source.network_server, source.fcnt_bits)
        self.lorawan = LorawanIntake(self.directory, fcnt_bits)
        self.gateways = WifiGatewayIntake(self.directory)
        self.max_payload_bytes = max_payload_bytes

    def prepare(self, conn: psycopg.Connection) -> None:
        self.directory.prepare(conn)

    def claims(self, topic: str) -> bool:
        return _parser_for(topic) is not None

    def decode(self, message: Inbound, lookup: DeviceLookup, out: Outputs, latest_allowed: datetime) -> None:
        """Adds to `out` whatever `message` yields; a message never raises out of here."""
        try:
            size = len(message.payload)
            if size > self.max_payload_bytes:
                raise MessageRejected(RejectReason.PAYLOAD_TOO_LARGE, f"{size} bytes, the limit is {self.max_payload_bytes}")
            parser = _parser_for(message.topic)
            if parser is None:
                raise LookupError(f"no parser claims {message.topic!r}")  # a bug: decode() follows claims()
            event = parser.parse(message)
            if isinstance(event, Uplink):
                self.lorawan.uplink(message, event, lookup, out, latest_allowed)
            elif isinstance(event, Join):
                self.lorawan.join(message, event, lookup, out)
            else:
                self.gateways.report(message, event, lookup, out, latest_allowed)
        except MessageRejected as rejected:
            out.dead.append(dead_letter(message, rejected.reason, rejected.detail))
        except Exception as exc:  # a bug, not bad input: keep the message and the worker alive, and say so loudly
            log.exception("adapter failed on a message from %s", message.topic)
            out.dead.append(dead_letter(message, RejectReason.INVALID_PAYLOAD,
                                        f"could not be decoded ({type(exc).__name__}: {exc})"))


def _parser_for(topic: str) -> Parser | None:
    for parser in PARSERS:
        if parser.claims(topic):
            return parser
    return None
