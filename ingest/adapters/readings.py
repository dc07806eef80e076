"""A reading that did not come as a contract JSON payload (binary frame, network-server object,
gateway batch entry) validated by the same payload models and turned into the same row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from devices.contract import rejection_from
from devices.kinds import Channel
from devices.telemetry import payload_model
from ingest.decode import _METRIC_NAMES, EARLIEST_DEVICE_TIME, _detail_json, _metric_positions
from ingest.directory import DeviceEntry
from pilotlab.errors import MessageRejected, RejectReason


def reading_row(device_id: str, device: DeviceEntry, channel: Channel, fields: dict[str, Any],
                ingest_time: datetime, size: int, latest_allowed: datetime) -> tuple[Any, ...]:
    """The telemetry row for `fields` (with `ts` and `seq`), or MessageRejected with the reason."""
    try:
        reading = payload_model(device.kind, channel).model_validate(fields)
    except ValidationError as exc:
        raise rejection_from(exc) from None
    ts = reading.ts
    if ts < EARLIEST_DEVICE_TIME or ts > latest_allowed:
        raise MessageRejected(RejectReason.TIMESTAMP_OUT_OF_RANGE,
                              f"ts {ts.isoformat()} is before 2000 or too far in the future")
    if device.decommissioned_at is not None and ts > device.decommissioned_at:
        raise MessageRejected(RejectReason.DEVICE_DECOMMISSIONED,
                              f"device {device_id!r} was decommissioned at {device.decommissioned_at.isoformat()}")
    values = reading.__dict__
    metrics: list[Any] = [None] * len(_METRIC_NAMES)
    for name, position in _metric_positions(type(reading)):
        metrics[position] = values[name]
    if channel is Channel.EVENT:
        metrics[-1] = _detail_json(values.get("detail"))
    if channel is Channel.STATUS and "\x00" in (values.get("firmware") or ""):
        raise MessageRejected(RejectReason.INVALID_PAYLOAD, "firmware: NUL characters are not allowed")
    return (device_id, reading.seq, ts, ingest_time, channel.value, size, *metrics)
