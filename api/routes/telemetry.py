"""A device's stored messages over a time range: raw, or aggregated per time bucket."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import AwareDatetime

from api.database import Caps, Db
from api.schemas import BucketedTelemetry, Problem, RawTelemetry
from devices.kinds import Channel, DeviceKind
from store import readings, registry

router = APIRouter(tags=["telemetry"], responses={404: {"model": Problem}, 422: {"model": Problem}})

DEFAULT_SPAN = timedelta(hours=24)
MAX_SPAN = timedelta(days=366)  # one request reads at most a year of one device: its cost is bounded
MAX_LIMIT = 10_000
_BUCKET = re.compile(r"^([1-9][0-9]{0,5})([smhdw])$")
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_bucket(text: str) -> timedelta:
    """`30s`, `5m`, `1h`, `1d`, `1w` … as a timedelta; HTTP 422 for anything else."""
    found = _BUCKET.fullmatch(text)
    if found is None:
        raise HTTPException(422, f"bucket {text!r} is not a width like 30s, 5m, 1h, 1d or 1w")
    return timedelta(**{_UNIT[found[2]]: int(found[1])})


def time_range(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """The asked range, defaulting to the 24 h before `to` (default now); at most MAX_SPAN long."""
    end = end or datetime.now(UTC)
    try:
        start = start or end - DEFAULT_SPAN
    except OverflowError:
        raise HTTPException(422, f"to ({end.isoformat()}) leaves no room for a default from; give from") from None
    if start >= end:
        raise HTTPException(422, f"from ({start.isoformat()}) must be before to ({end.isoformat()})")
    if end - start > MAX_SPAN:
        raise HTTPException(422, f"from ({start.isoformat()}) to ({end.isoformat()}) spans more than "
                                 f"{MAX_SPAN.days} days; ask for it in pieces")
    return start, end


@router.get("/devices/{device_id}/telemetry", response_model=RawTelemetry | BucketedTelemetry,
            response_model_by_alias=True, summary="A device's messages over a time range")
def device_telemetry(
    device_id: str, conn: Db, caps: Caps,
    start: Annotated[AwareDatetime | None, Query(alias="from", description="inclusive device time, with offset; "
                                                 f"default `to` - 24 h; at most {MAX_SPAN.days} days before `to`")] = None,
    end: Annotated[AwareDatetime | None, Query(alias="to", description="exclusive device time, with offset; default now")] = None,
    channel: Annotated[Channel | None, Query(description="only this channel; default all")] = None,
    bucket: Annotated[str | None, Query(description="aggregate per bucket of this width: 30s, 5m, 1h, 1d, 1w", examples=["1h"])] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"at most this many readings or buckets (1-{MAX_LIMIT})")] = 1000,
) -> RawTelemetry | BucketedTelemetry:
    """Without `bucket`: every message with `from <= device_time < to`, oldest first, with the
    columns its kind and channel filled (a tracker's `altitude_m` among them), the device profile
    version that decoded it and the codec output its profile's mapping left (`extra`). With `bucket`: per bucket (aligned to UTC, empty buckets
    omitted) the message count and avg/min/max/count of each numeric metric of the device's kind.
    `truncated` says more matched than `limit`: ask again from the last time returned."""
    start, end = time_range(start, end)
    width = parse_bucket(bucket) if bucket is not None else None
    kind = DeviceKind(registry.get(conn, registry.DEVICES, device_id).kind)
    page = {"device_id": device_id, "kind": kind, "from_": start, "to": end,
            "channel": channel.value if channel else None, "limit": limit}
    if width is None:
        rows, truncated = readings.read_raw(conn, device_id, kind, start, end, channel=channel, limit=limit)
        return RawTelemetry.model_validate({**page, "truncated": truncated, "readings": rows},
                                           from_attributes=True)
    buckets, truncated = readings.read_buckets(conn, device_id, kind, start, end, width=width,
                                               timescaledb=caps.timescaledb, channel=channel, limit=limit)
    return BucketedTelemetry.model_validate({**page, "truncated": truncated, "bucket": bucket,
                                             "buckets": buckets}, from_attributes=True)
