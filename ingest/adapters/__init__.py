"""Adapters: topics other than contract v1's, each turned into readings, link records (frames,
receptions, joins, gateway messages) or dead letters with a specific reason.

    contract v1     pilotlab/v1/{pilot}/{device}/{telemetry|status|event}   ingest.decode (hot path)
    Wi-Fi gateway   pilotlab/v1/{pilot}/{gateway}/{batch|gateway_status}     wifi_gateway
    ChirpStack v4   application/{app}/device/{DevEUI}/event/{up|join}        chirpstack
    TTS v3          v3/{app}@{tenant}/devices/{device}/{up|join}             things_stack

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

from devices import json_payload
from devices.contract import TOPIC_ROOT
from ingest.adapters import chirpstack, things_stack
from ingest.adapters.link_directory import LinkDirectory
from ingest.adapters.lorawan import Join, LorawanIntake
from ingest.adapters.wifi_gateway import CHANNELS as GATEWAY_CHANNELS
from ingest.adapters.wifi_gateway import WifiGatewayAdapter
from ingest.handoff import Inbound
from ingest.rows import DeviceLookup, LinkRecords, Outputs, dead_letter
from pilotlab.errors import MessageRejected, RejectReason
from pilotlab.settings import NetworkServerSource

__all__ = ["AdapterSet", "LinkRecords", "Outputs"]

_PARSERS = {chirpstack.TOPIC_PREFIX: chirpstack.parse, things_stack.TOPIC_PREFIX: things_stack.parse}
_CONTRACT_PREFIX = TOPIC_ROOT + "/"

log = logging.getLogger(__name__)


class AdapterSet:
    """Every adapter of one worker, with the registry view they share."""

    def __init__(self, refresh_s: float, max_payload_bytes: int,
                 sources: Sequence[NetworkServerSource] = ()) -> None:
        self.directory = LinkDirectory(refresh_s)
        fcnt_bits: dict[str, int] = {}
        for source in sources:
            fcnt_bits.setdefault(source.network_server, source.fcnt_bits)
        self.lorawan = LorawanIntake(self.directory, fcnt_bits)
        self.wifi = WifiGatewayAdapter(self.directory)
        self.max_payload_bytes = max_payload_bytes

    def prepare(self, conn: psycopg.Connection) -> None:
        self.directory.prepare(conn)

    def claims(self, topic: str) -> bool:
        if topic.startswith(_CONTRACT_PREFIX):
            return topic.count("/") == 4 and topic.rsplit("/", 1)[1] in GATEWAY_CHANNELS
        return topic.startswith(chirpstack.TOPIC_PREFIX) or topic.startswith(things_stack.TOPIC_PREFIX)

    def decode(self, message: Inbound, lookup: DeviceLookup, out: Outputs, latest_allowed: datetime) -> None:
        """Adds to `out` whatever `message` yields; a message never raises out of here."""
        try:
            size = len(message.payload)
            if size > self.max_payload_bytes:
                raise MessageRejected(RejectReason.PAYLOAD_TOO_LARGE, f"{size} bytes, the limit is {self.max_payload_bytes}")
            topic = message.topic
            if topic.startswith(_CONTRACT_PREFIX):
                _, _, pilot_id, gateway_id, channel = topic.split("/")
                self.wifi.decode(message, pilot_id, gateway_id, channel, lookup, out, latest_allowed)
                return
            body = json_payload.read(message.payload)
            if not isinstance(body, dict):
                raise MessageRejected(RejectReason.MALFORMED_JSON, "expected a JSON object")
            parse = _PARSERS[chirpstack.TOPIC_PREFIX if topic.startswith(chirpstack.TOPIC_PREFIX) else things_stack.TOPIC_PREFIX]
            event = parse(topic, body)
            if isinstance(event, Join):
                self.lorawan.join(message, event, lookup, out)
            else:
                self.lorawan.uplink(message, event, lookup, out, latest_allowed)
        except MessageRejected as rejected:
            out.dead.append(dead_letter(message, rejected.reason, rejected.detail))
        except Exception as exc:  # a bug, not bad input: keep the message and the worker alive, and say so loudly
            log.exception("adapter failed on a message from %s", message.topic)
            out.dead.append(dead_letter(message, RejectReason.INVALID_PAYLOAD,
                                        f"could not be decoded ({type(exc).__name__}: {exc})"))
