"""What a conformance run saw of a device: read from what the ordinary ingest path stored.

A run adds nothing to the path a message takes: the device publishes to the broker, ingest
decodes, validates and stores it (or dead-letters it) exactly as during the pilot. A run reads back,
for its window [start, end) of pilotlab's receive time:

    readings    telemetry rows (every channel), in the order pilotlab received them, with which of
                the profile's declared measurements each carries
    rejections  dead letters naming the device (kept once per distinct topic and payload)
    qos0        contract messages that reached ingest at QoS 0 (qos0_day, less the run's baseline)
    frames      LoRaWAN uplink frames heard (uplink_frame), and the device's joins
    account     the broker account the device (or its Wi-Fi gateway) connects with

What reaches pilotlab is all a run can see: the broker refuses a device's publish to a topic its
ACL does not allow (access.acl) and tells only the device (PUBACK 0x87 on MQTT 5; MQTT 3.1.1 drops
it), and MQTT does not name a message's publisher, so a publish outside the device's own topics
shows as missing readings, not as a rejection. README, *Conformance*, says so to firms.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from access.credentials import BrokerAccount, find_account
from devices.kinds import DeviceKind
from devices.profiles import all_measurements
from pilotlab.errors import NotFound
from scoring.declared import POSITION


@dataclass(frozen=True)
class DeviceUnderTest:
    id: str
    pilot_id: str
    firm_id: str
    kind: str
    connectivity: str
    reporting_interval_s: int
    dev_eui: str | None
    gateway_id: str | None
    decommissioned_at: datetime | None
    profile_id: str | None
    profile_version: int | None
    declared: tuple[str, ...] | None       # the profile's measurements; None without a profile
    profile_interval_s: int | None         # the interval the profile declares

    @property
    def transport(self) -> str:
        """How its messages reach pilotlab: 'lorawan' (a network server), 'gateway' (a Wi-Fi
        gateway's batches) or 'mqtt' (the device's own MQTT connection)."""
        if self.dev_eui is not None:
            return "lorawan"
        return "gateway" if self.gateway_id is not None else "mqtt"


@dataclass(frozen=True)
class Reading:
    seq: int
    device_time: datetime
    ingest_time: datetime
    channel: str
    carried: frozenset[str]   # declared measurements (all of the kind's without a profile) it carries; a
                              # tracker's no-fix report carries its position by saying so (as scoring reads it)
    has_extra: bool           # the profile's mapping left part of the codec's output unmapped


@dataclass(frozen=True)
class Rejection:
    received_at: datetime
    topic: str
    reason: str
    detail: str


@dataclass(frozen=True)
class Frame:
    fcnt: int
    uplink_time: datetime
    received_at: datetime


@dataclass(frozen=True)
class Observations:
    device: DeviceUnderTest
    start: datetime
    end: datetime
    readings: list[Reading]
    rejections: list[Rejection]
    qos0: int
    frames: list[Frame]
    joins: list[datetime]               # joins during the run
    last_join: datetime | None          # the latest join ever heard, up to the run's end
    account: BrokerAccount | None
    account_owner: str                  # whose account it is: the device's, or its gateway's


_DEVICE = """
SELECT d.id, d.pilot_id, p.firm_id, d.kind, d.connectivity, d.reporting_interval_s, d.dev_eui, d.gateway_id,
       d.decommissioned_at, d.profile_id, pr.current_version, v.definition
FROM device d JOIN pilot p ON p.id = d.pilot_id
LEFT JOIN device_profile pr ON pr.id = d.profile_id
LEFT JOIN device_profile_version v ON v.profile_id = pr.id AND v.version = pr.current_version
WHERE d.id = %s"""


def load_device(conn: psycopg.Connection, device_id: str) -> DeviceUnderTest:
    row = conn.execute(_DEVICE, (device_id,)).fetchone()
    if row is None:
        raise NotFound(f"no device with id {device_id!r}")
    (id_, pilot, firm, kind, connectivity, interval, dev_eui, gateway, decommissioned, profile, version,
     definition) = row
    return DeviceUnderTest(id_, pilot, firm, kind, connectivity, interval, dev_eui, gateway, decommissioned, profile,
                           version, tuple(definition["measurements"]) if definition else None,
                           int(definition["reporting_interval_s"]) if definition else None)


def counters(conn: psycopg.Connection, device_id: str) -> dict[str, int]:
    """Ingest's running counts a run is measured against (its baseline, taken at the start)."""
    row = conn.execute("SELECT coalesce(sum(messages), 0) FROM qos0_day WHERE device_id = %s", (device_id,)).fetchone()
    return {"qos0": int(row[0]) if row else 0}


def _readings(conn: psycopg.Connection, device: DeviceUnderTest, start: datetime, end: datetime) -> list[Reading]:
    names = sorted(set(device.declared) if device.declared is not None else all_measurements(DeviceKind(device.kind)))
    query = sql.SQL("SELECT seq, device_time, ingest_time, channel, extra IS NOT NULL, fix_type IS NOT DISTINCT FROM 'none', "
                    "{} FROM telemetry "
                    "WHERE device_id = %s AND ingest_time >= %s AND ingest_time < %s "
                    "ORDER BY ingest_time, seq").format(
        sql.SQL(", ").join(sql.SQL("{} IS NOT NULL").format(sql.Identifier(n)) for n in names))
    found = []
    for seq, device_time, ingest_time, channel, has_extra, no_fix, *present in conn.execute(query, (device.id, start, end)):
        carried = frozenset(n for n, here in zip(names, present, strict=True) if here or (no_fix and n in POSITION))
        found.append(Reading(int(seq), device_time, ingest_time, channel, carried, bool(has_extra)))
    return found


def observe(conn: psycopg.Connection, device: DeviceUnderTest, start: datetime, end: datetime,
            baseline: dict[str, Any]) -> Observations:
    """Everything ingest stored of `device` between `start` and `end` (pilotlab's receive time)."""
    window = (device.id, start, end)
    rejections = [Rejection(*row) for row in conn.execute(
        "SELECT received_at, topic, reason, detail FROM dead_letter "
        "WHERE device_id = %s AND received_at >= %s AND received_at < %s ORDER BY received_at, id", window)]
    frames = [Frame(int(fcnt), at, received) for fcnt, at, received in conn.execute(
        "SELECT fcnt, uplink_time, received_at FROM uplink_frame "
        "WHERE device_id = %s AND received_at >= %s AND received_at < %s ORDER BY uplink_time, fcnt", window)]
    joins = [at for (at,) in conn.execute(
        "SELECT joined_at FROM lorawan_join WHERE device_id = %s AND joined_at < %s ORDER BY joined_at DESC LIMIT 100",
        (device.id, end))]
    owner = device.gateway_id or device.id
    qos0 = counters(conn, device.id)["qos0"] - int(baseline.get("qos0", 0))
    return Observations(device, start, end, _readings(conn, device, start, end), rejections, max(0, qos0), frames,
                        sorted(at for at in joins if at >= start), joins[0] if joins else None,
                        find_account(conn, owner), "gateway" if device.gateway_id else "device")
