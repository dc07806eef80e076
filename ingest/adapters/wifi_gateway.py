"""Wi-Fi gateways: one message carries readings of many devices behind one gateway.

    pilotlab/v1/{pilot_id}/{gateway_id}/batch            gateway → platform, many devices
    pilotlab/v1/{pilot_id}/{gateway_id}/gateway_status   the gateway's own heartbeat

Both live under the contract's subscription (`pilotlab/v1/+/+/+`), in channels the contract does
not have, so they reach this adapter without any work on the contract's path. A gateway speaks
only for devices attached to it in the registry (`device.gateway_id`): an entry for any other
device becomes a dead letter (`gateway_not_attached`, `unknown_device`, …) and the rest of the
batch is stored. Each entry is a contract payload of its channel plus `device_id`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from devices.contract import ID_PATTERN, TOPIC_ROOT, TopicAddress, rejection_from
from devices.json_payload import key_count, refuse_repeated_keys
from devices.kinds import Channel
from devices.telemetry import SEQ_MAX, DeviceTime
from ingest.adapters.events import GatewayReport
from ingest.adapters.link_directory import LinkDirectory
from ingest.handoff import Inbound
from ingest.readings import reading_row
from ingest.rows import DeviceLookup, Outputs, dead_letter, registered
from pilotlab.errors import MessageRejected, RejectReason

CHANNELS = ("batch", "gateway_status")
MAX_READINGS = 1000
_PREFIX = TOPIC_ROOT + "/"


class GatewayBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    ts: DeviceTime
    seq: int = Field(ge=0, le=SEQ_MAX)
    readings: list[dict[str, Any]] = Field(max_length=MAX_READINGS)


class GatewayStatus(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    ts: DeviceTime
    seq: int = Field(ge=0, le=SEQ_MAX)
    state: Literal["online", "offline", "rebooting", "error"]
    uptime_s: int | None = Field(default=None, ge=0, le=SEQ_MAX)
    firmware: str | None = Field(default=None, max_length=64, pattern=r"^[^\x00]*$")


class WifiGatewayParser:
    """Gateway topics, under the contract's root in channels the contract does not have."""

    def claims(self, topic: str) -> bool:
        return topic.startswith(_PREFIX) and topic.count("/") == 4 and topic.rsplit("/", 1)[1] in CHANNELS

    def parse(self, message: Inbound) -> GatewayReport:
        _, _, pilot_id, gateway_id, channel = message.topic.split("/")
        return GatewayReport(pilot_id, gateway_id, channel, message.payload)


PARSER = WifiGatewayParser()


class WifiGatewayIntake:
    """Per worker: a gateway's report becomes readings of the devices attached to it, a
    gateway_message record and a dead letter per refused entry."""

    def __init__(self, directory: LinkDirectory) -> None:
        self.directory = directory

    def report(self, message: Inbound, report: GatewayReport, lookup: DeviceLookup, out: Outputs,
               latest_allowed: datetime) -> None:
        pilot_id, gateway_id, channel = report.pilot_id, report.gateway_id, report.channel
        address = TopicAddress(pilot_id, gateway_id, Channel.STATUS)
        gateway = self.directory.gateway(gateway_id)
        if gateway is None:
            raise MessageRejected(RejectReason.UNKNOWN_GATEWAY, f"gateway {gateway_id!r} is not registered")
        if gateway.pilot_id != pilot_id:
            raise MessageRejected(RejectReason.PILOT_MISMATCH, f"gateway {gateway_id!r} belongs to pilot {gateway.pilot_id!r}")
        received = datetime.fromtimestamp(message.received_at, UTC)
        if channel == "gateway_status":
            status = _validate(GatewayStatus, report.payload)
            out.link.gateway_messages.append((gateway_id, status.ts, received, "status", status.seq, None, None,
                                              status.state, status.uptime_s, status.firmware))
            return
        batch = _validate(GatewayBatch, report.payload)
        refused = 0
        for index, entry in enumerate(batch.readings):
            body = orjson.dumps(entry)
            device_id = entry.get("device_id")
            try:
                self._entry(message, gateway_id, pilot_id, index, entry, body, received, lookup, out, latest_allowed)
            except MessageRejected as rejected:
                refused += 1
                where = TopicAddress(pilot_id, device_id, Channel.TELEMETRY) if isinstance(device_id, str) else address
                out.dead.append(dead_letter(message._replace(payload=body), rejected.reason,
                                            f"readings[{index}]: {rejected.detail}", where))
        out.link.gateway_messages.append((gateway_id, batch.ts, received, "batch", batch.seq, len(batch.readings),
                                          refused, None, None, None))

    def _entry(self, message: Inbound, gateway_id: str, pilot_id: str, index: int, entry: dict[str, Any],
               body: bytes, received: datetime, lookup: DeviceLookup, out: Outputs, latest_allowed: datetime) -> None:
        fields = dict(entry)
        device_id = fields.pop("device_id", None)
        channel_name = fields.pop("channel", "telemetry")
        if not isinstance(device_id, str) or not _ID.fullmatch(device_id):
            raise MessageRejected(RejectReason.INVALID_PAYLOAD, "device_id: 1-64 of [A-Za-z0-9_.-] required")
        if channel_name not in ("telemetry", "status", "event"):
            raise MessageRejected(RejectReason.INVALID_PAYLOAD, f"channel {channel_name!r} is not telemetry, status or event")
        device = registered(lookup, pilot_id, device_id)
        attached = self.directory.attached_gateway(device_id, gateway_id)
        if attached != gateway_id:
            raise MessageRejected(RejectReason.GATEWAY_NOT_ATTACHED,
                                  f"device {device_id!r} is attached to {attached or 'no gateway'}, not {gateway_id!r}")
        out.rows.append(reading_row(device_id, device, Channel(channel_name), fields, received, len(body), latest_allowed))
        out.sources.append(message)


_ID = re.compile(ID_PATTERN)


def _validate(model: type[GatewayBatch] | type[GatewayStatus], payload: bytes) -> Any:
    try:
        value = model.model_validate_json(payload)
    except ValidationError as exc:
        raise rejection_from(exc) from None
    # Unknown fields are refused, so each top-level key is one field set; entries keep all theirs.
    refuse_repeated_keys(payload, len(value.model_fields_set) + key_count(getattr(value, "readings", None)))
    return value
