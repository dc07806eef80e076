"""A pilot whose devices published through the real broker and a real ingest worker: the data
every dashboard panel's SQL is run against."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest

from devices.kinds import Channel, DeviceKind
from pilotlab.settings import MqttEndpoint, Settings
from simulators.burst import contract_messages, publish_burst
from simulators.device import SimulatedDevice
from tests.ingest.conftest import ThreadWorker
from tests.support import count_rows, wait_until

MESSAGES_PER_DEVICE = 30
INTERVAL_S = 60


@dataclass(frozen=True)
class FilledPilot:
    database_url: str
    pilot_id: str
    gateway_id: str
    devices: tuple[SimulatedDevice, ...]
    time_from: datetime
    time_to: datetime

    def device_of(self, kind: DeviceKind) -> str:
        return next(d.id for d in self.devices if d.kind == kind)


def _register(database_url: str, name: str, started: datetime) -> tuple[str, str, list[SimulatedDevice]]:
    pilot_id, gateway_id = f"{name}-pilot", f"{name}-gw"
    plan = [(DeviceKind.SMART_SWITCH, "wifi", None), (DeviceKind.LOCATION_TRACKER, "cellular", None),
            (DeviceKind.ENV_SENSOR, "lpwa", gateway_id)]
    devices = []
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO firm (id, name) VALUES (%s, %s)", (f"{name}-firm", name))
        conn.execute("INSERT INTO pilot (id, firm_id, name, site, starts_at, status) VALUES (%s, %s, %s, 'lab', %s, 'running')",
                     (pilot_id, f"{name}-firm", name, started))
        conn.execute("INSERT INTO gateway (id, pilot_id, protocol) VALUES (%s, %s, 'lorawan')", (gateway_id, pilot_id))
        for kind, connectivity, gateway in plan:
            for n in (1, 2):
                device_id = f"{name}-{kind.value}-{n}"
                conn.execute("INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, gateway_id, "
                             "commissioned_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                             (device_id, pilot_id, kind.value, connectivity, INTERVAL_S, gateway, started))
                devices.append(SimulatedDevice(device_id, pilot_id, kind, float(INTERVAL_S)))
    return pilot_id, gateway_id, devices


@pytest.fixture(scope="session")
def filled_pilot(make_database: Callable[[], str], mqtt_url: str) -> FilledPilot:
    """Six devices (two of each kind, the env sensors behind an LPWA gateway) that sent the last
    30 minutes of telemetry, status and events, plus two bad messages, through the shared broker
    and one real ingest worker."""
    database_url = make_database()
    name = f"dash-{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(seconds=INTERVAL_S * MESSAGES_PER_DEVICE)
    pilot_id, gateway_id, devices = _register(database_url, name, start - timedelta(days=3))
    _store_closed_days(database_url, devices, now)
    messages = list(contract_messages(devices, MESSAGES_PER_DEVICE, start, channels=tuple(Channel)))
    # One event per device for certain: the simulators' own events depend on the hour of day.
    events = [(f"pilotlab/v1/{pilot_id}/{d.id}/event",
               orjson.dumps({"ts": (now - timedelta(minutes=1)).isoformat(), "seq": 10_000, "event": "door_opened",
                             "detail": {"by": "test"}})) for d in devices]
    bad = [(f"pilotlab/v1/{pilot_id}/{devices[0].id}/telemetry", b"{not json"),
           (f"pilotlab/v1/{pilot_id}/{name}-stranger/telemetry", b'{"ts": 1764063000000, "seq": 1, "relay_on": true}')]
    settings = Settings(database_url=database_url, mqtt_url=mqtt_url, share_group=f"dash-{uuid.uuid4().hex[:8]}",
                        worker_id="w1", session_expiry_s=0, batch_linger_ms=5)
    worker = ThreadWorker(settings).start()
    try:
        publish_burst(MqttEndpoint(mqtt_url), messages + events + bad)
        wait_until(lambda: count_rows(database_url, "SELECT count(*) FROM telemetry") >= len(messages) + len(events)
                   and count_rows(database_url, "SELECT count(*) FROM dead_letter WHERE topic LIKE %s",
                                  (f"pilotlab/v1/{pilot_id}/%",)) >= 2,
                   timeout_s=30, what="the pilot's messages stored and dead-lettered")
    finally:
        worker.stop()
    _store_lpwa_links(database_url, pilot_id, gateway_id, [d for d in devices if d.kind == DeviceKind.ENV_SENSOR], now)
    _score(database_url, pilot_id, now)
    return FilledPilot(database_url, pilot_id, gateway_id, tuple(devices), now - timedelta(days=3),
                       now + timedelta(minutes=5))


def _store_closed_days(database_url: str, devices: list[SimulatedDevice], now: datetime) -> None:
    """A reading per device every hour of the two days before today, so scoring has closed days to
    summarise (the QC-per-day panel reads those summaries)."""
    midnight = now.replace(hour=0, minute=0, second=0)
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO telemetry (device_id, seq, device_time, ingest_time, channel, size_bytes, battery_pct) "
            "VALUES (%s, %s, %s, %s + interval '1 second', 'telemetry', 40, 90)",
            [(d.id, 100_000 + h, midnight - timedelta(hours=48 - h), midnight - timedelta(hours=48 - h))
             for d in devices for h in range(48)])


def _store_lpwa_links(database_url: str, pilot_id: str, gateway_id: str, lpwa: list[SimulatedDevice],
                      now: datetime) -> None:
    """Uplinks of the LPWA sensors heard by one or two gateways, with a lost frame, written by the
    ingest's own link-record writer (what the network-server adapters produce)."""
    from ingest.adapters.records import LinkRecords, write_link_records

    second = f"{gateway_id}-2"
    records = LinkRecords()
    for device in lpwa:
        for fcnt in (1, 2, 3, 5, 6):  # 4 never arrived
            at = now - timedelta(minutes=30 - 5 * fcnt)
            records.frames.append((device.id, fcnt, at, at + timedelta(seconds=1), "chirpstack", 2, None, 5, False))
            records.receptions.append((device.id, fcnt, at, gateway_id, -90.0 - fcnt, 7.5, 7, 125_000, 868_100_000, "SF7BW125",
                                       None, 5))
            if fcnt % 2:
                records.receptions.append((device.id, fcnt, at, second, -110.0, -2.5, 7, 125_000, 868_100_000, "SF7BW125",
                                           None, 5))
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO gateway (id, pilot_id, protocol) VALUES (%s, %s, 'lorawan')", (second, pilot_id))
        assert write_link_records(conn, records) == 0


def _score(database_url: str, pilot_id: str, now: datetime) -> None:
    """The real scorer's daily history entry for the pilot (pilot detail's score, components, gates)."""
    from scoring.rubric import load_rubric
    from scoring.scorer import save_history, score_pilot

    with psycopg.connect(database_url) as conn:
        save_history(conn, score_pilot(conn, pilot_id, load_rubric(), as_of=now))
