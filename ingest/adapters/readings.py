"""A reading that did not come as a contract JSON payload (binary frame, network-server object,
gateway batch entry) validated by the same payload models and turned into the same row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from devices.contract import rejection_from
from devices.kinds import Channel
from devices.telemetry import payload_model
from ingest.directory import DeviceEntry
from ingest.rows import row_of


def reading_row(device_id: str, device: DeviceEntry, channel: Channel, fields: dict[str, Any],
                ingest_time: datetime, size: int, latest_allowed: datetime) -> tuple[Any, ...]:
    """The telemetry row for `fields` (with `ts` and `seq`), or MessageRejected with the reason."""
    try:
        reading = payload_model(device.kind, channel).model_validate(fields)
    except ValidationError as exc:
        raise rejection_from(exc) from None
    return row_of(reading, device_id, device, channel, ingest_time, size, latest_allowed)
