"""Read-side queries over stored messages: telemetry ranges, per-bucket aggregates, device health,
dead letters.

Times are device times (`device_time`) unless a name says otherwise: a range `[start, end)` and a
bucket select by when the device measured, not by when the message arrived. Bucketing goes
through `store.timeseries.bucket_sql`, so the same query runs on TimescaleDB (`time_bucket`) and
plain PostgreSQL (`date_bin`) with identical bucket edges. Buckets without messages are omitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from devices.kinds import Channel, DeviceKind
from store.timeseries import bucket_sql

# Columns a device of each kind fills on the telemetry channel: numeric (aggregated per bucket)
# and the others (raw readings only). battery_pct is numeric for every kind: trackers and sensors
# send it with telemetry, any device may send it with status.
KIND_NUMERIC: dict[DeviceKind, tuple[str, ...]] = {
    DeviceKind.SMART_SWITCH: ("power_w", "energy_wh", "battery_pct"),
    DeviceKind.LOCATION_TRACKER: ("lat", "lon", "altitude_m", "accuracy_m", "speed_mps", "battery_pct"),
    DeviceKind.ENV_SENSOR: ("temperature_c", "humidity_pct", "pm25_ugm3", "pm10_ugm3", "co2_ppm",
                            "noise_dba", "battery_pct"),
}
KIND_OTHER: dict[DeviceKind, tuple[str, ...]] = {
    DeviceKind.SMART_SWITCH: ("relay_on", "trigger"),
    DeviceKind.LOCATION_TRACKER: ("fix_type",),
    DeviceKind.ENV_SENSOR: (),
}
STATUS_COLUMNS = ("state", "rssi_dbm", "uptime_s", "firmware")
EVENT_COLUMNS = ("event", "detail")

ONLINE_FACTOR = 3
"""A device is online while a message from it arrived within ONLINE_FACTOR × its declared
reporting interval: one missed report is normal radio loss, three in a row is an outage."""


def reading_columns(kind: DeviceKind) -> tuple[str, ...]:
    """Every value column a message from a device of `kind` can fill, on any channel."""
    return KIND_NUMERIC[kind] + KIND_OTHER[kind] + STATUS_COLUMNS + EVENT_COLUMNS


@dataclass(frozen=True)
class Reading:
    device_time: datetime
    ingest_time: datetime
    seq: int
    channel: str
    values: dict[str, Any]  # only the columns the message filled
    profile_version: int | None  # the device profile version that decoded it (None: contract v1)
    extra: dict[str, Any] | None  # the codec output its profile's mapping did not take


@dataclass(frozen=True)
class MetricStats:
    avg: float
    min: float
    max: float
    count: int  # messages in the bucket that carried this metric


@dataclass(frozen=True)
class Bucket:
    start: datetime
    count: int  # messages in the bucket
    metrics: dict[str, MetricStats]  # only the metrics with at least one value


def read_raw(conn: psycopg.Connection, device_id: str, kind: DeviceKind, start: datetime, end: datetime,
             *, channel: Channel | None, limit: int) -> tuple[list[Reading], bool]:
    """Messages of one device with start <= device_time < end, oldest first, at most `limit`.

    Returns the readings and whether more matched than `limit`.
    """
    columns = reading_columns(kind)
    query = sql.SQL(
        "SELECT device_time, ingest_time, seq, channel, profile_version, extra, {columns} FROM telemetry "
        "WHERE device_id = %(device)s AND device_time >= %(start)s AND device_time < %(end)s "
        "AND (%(channel)s::text IS NULL OR channel = %(channel)s::text) "
        "ORDER BY device_time, seq LIMIT %(limit)s"
    ).format(columns=sql.SQL(", ").join(map(sql.Identifier, columns)))
    rows = conn.execute(query, {"device": device_id, "start": start, "end": end,
                                "channel": channel.value if channel else None, "limit": limit + 1}).fetchall()
    readings = [
        Reading(row[0], row[1], row[2], row[3],
                {name: value for name, value in zip(columns, row[6:], strict=True) if value is not None},
                row[4], row[5])
        for row in rows[:limit]
    ]
    return readings, len(rows) > limit


def read_buckets(conn: psycopg.Connection, device_id: str, kind: DeviceKind, start: datetime, end: datetime,
                 *, width: timedelta, timescaledb: bool, channel: Channel | None,
                 limit: int) -> tuple[list[Bucket], bool]:
    """Per-bucket message count and avg/min/max of the kind's numeric metrics, oldest bucket first.

    Buckets are aligned to `store.timeseries.BUCKET_ORIGIN`, so the first and last may be partial
    (only messages inside [start, end) count). Returns the buckets and whether more than `limit`.
    """
    metrics = KIND_NUMERIC[kind]
    aggregates = sql.SQL(", ").join(
        sql.SQL("avg({c}), min({c}), max({c}), count({c})").format(c=sql.Identifier(m)) for m in metrics
    )
    query = sql.SQL(
        "SELECT {bucket} AS bucket, count(*), {aggregates} FROM telemetry "
        "WHERE device_id = %(device)s AND device_time >= %(start)s AND device_time < %(end)s "
        "AND (%(channel)s::text IS NULL OR channel = %(channel)s::text) "
        "GROUP BY 1 ORDER BY 1 LIMIT %(limit)s"
    ).format(bucket=sql.SQL(bucket_sql(timescaledb, "%(width)s")), aggregates=aggregates)
    rows = conn.execute(query, {"device": device_id, "start": start, "end": end, "width": width,
                                "channel": channel.value if channel else None, "limit": limit + 1}).fetchall()
    buckets = []
    for row in rows[:limit]:
        stats = {}
        for i, name in enumerate(metrics):
            avg, low, high, n = row[2 + 4 * i: 6 + 4 * i]
            if n:
                stats[name] = MetricStats(float(avg), float(low), float(high), int(n))
        buckets.append(Bucket(row[0], int(row[1]), stats))
    return buckets, len(rows) > limit


@dataclass(frozen=True)
class DeviceHealth:
    device_id: str
    pilot_id: str
    kind: str
    reporting_interval_s: int
    last_seen: datetime | None  # when pilotlab last received a message from it (arrival, the server's clock)
    last_device_time: datetime | None  # of the newest message by device time
    last_ingest_time: datetime | None  # when that message was received
    online: bool
    battery_pct: float | None  # newest non-null value on any channel
    messages_24h: int  # messages with device_time in the 24 h before checked_at
    decommissioned: bool
    checked_at: datetime  # the database's now()


ARRIVAL_LOOKBACK = timedelta(hours=24)
"""Arrivals are looked up among the readings stamped within max(this, ONLINE_FACTOR × interval)
of now, through the (device, device_time) index: telemetry has no index by arrival, and on
TimescaleDB only a device-time bound prunes chunks. A reading delivered more than that after its
own time (a buffered backfill) does not make its device online."""

_HEALTH = """
SELECT d.id, d.pilot_id, d.kind, d.reporting_interval_s, d.decommissioned_at IS NOT NULL,
       greatest(recent.arrived, last.ingest_time), last.device_time, last.ingest_time,
       battery.battery_pct, recent.messages, now()
FROM device d
LEFT JOIN LATERAL (
    SELECT device_time, ingest_time FROM telemetry t
    WHERE t.device_id = d.id ORDER BY device_time DESC LIMIT 1) last ON true
LEFT JOIN LATERAL (
    SELECT battery_pct FROM telemetry t
    WHERE t.device_id = d.id AND t.battery_pct IS NOT NULL ORDER BY device_time DESC LIMIT 1) battery ON true
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE t.device_time >= now() - INTERVAL '24 hours') AS messages,
           max(t.ingest_time) AS arrived
    FROM telemetry t
    WHERE t.device_id = d.id
      AND t.device_time >= now() - greatest(%(lookback)s, %(factor)s * d.reporting_interval_s * INTERVAL '1 second')
    ) recent
WHERE {where}
ORDER BY d.id
"""


def device_health(conn: psycopg.Connection, *, device_id: str | None = None,
                  pilot_id: str | None = None) -> list[DeviceHealth]:
    """Health of one device or of every device of a pilot (exactly one of the two is given).

    Online means: not decommissioned, and a message arrived within ONLINE_FACTOR ×
    reporting_interval_s of now. Arrival (ingest time, the server's clock) decides, never the
    device's own stamp: a reading stamped up to a day ahead (ingest accepts that much clock error)
    is the newest by device time for a day, yet says nothing about when the device was last heard.
    """
    if (device_id is None) == (pilot_id is None):
        raise ValueError("give exactly one of device_id and pilot_id")
    where = "d.id = %(id)s" if device_id is not None else "d.pilot_id = %(id)s"
    rows = conn.execute(_HEALTH.format(where=where), {"id": device_id or pilot_id, "lookback": ARRIVAL_LOOKBACK,
                                                      "factor": ONLINE_FACTOR}).fetchall()
    health = []
    for (dev, pilot, kind, interval_s, retired, last_seen, last_device, last_ingest, battery, messages,
         now) in rows:
        online = (not retired and last_seen is not None
                  and now - last_seen <= timedelta(seconds=ONLINE_FACTOR * interval_s))
        health.append(DeviceHealth(dev, pilot, kind, interval_s, last_seen, last_device, last_ingest, online,
                                   battery, int(messages), retired, now))
    return health


@dataclass(frozen=True)
class DeadLetter:
    id: int
    received_at: datetime
    topic: str
    reason: str
    detail: str
    pilot_id: str | None
    device_id: str | None
    payload: bytes  # a prefix of at most dead_letter_prefix_bytes (ingest.writer)
    payload_size: int  # the true size of the payload

    @property
    def payload_truncated(self) -> bool:
        return self.payload_size > len(self.payload)


def list_dead_letters(conn: psycopg.Connection, *, reason: str | None = None, pilot_id: str | None = None,
                      device_id: str | None = None, since: datetime | None = None,
                      limit: int) -> tuple[list[DeadLetter], bool]:
    """Dead letters newest first, filtered by every given argument; and whether more than `limit`."""
    filters = {"reason": reason, "pilot_id": pilot_id, "device_id": device_id}
    conditions: list[sql.Composable] = [sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k))
                                        for k, v in filters.items() if v is not None]
    if since is not None:
        conditions.append(sql.SQL("received_at >= %(since)s"))
    where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("")
    query = (sql.SQL("SELECT id, received_at, topic, reason, detail, pilot_id, device_id, payload, payload_size "
                     "FROM dead_letter") + where
             + sql.SQL(" ORDER BY received_at DESC, id DESC LIMIT %(limit)s"))
    params = {**filters, "since": since, "limit": limit + 1}
    rows = conn.execute(query, params).fetchall()
    letters = [DeadLetter(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bytes(r[7]), r[8]) for r in rows[:limit]]
    return letters, len(rows) > limit
