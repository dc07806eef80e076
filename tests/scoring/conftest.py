"""Ground-truth pilots for scoring: registry rows and telemetry written straight into the tables
with generate_series, so every expected metric is known by construction."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest

from devices.profiles import ProfileDefinition
from scoring.rubric import LoadedRubric, load_rubric
from store import profiles

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="session")
def rubric() -> LoadedRubric:
    return load_rubric()


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@dataclass
class PilotBuilder:
    conn: psycopg.Connection
    pilot_id: str

    def device(self, name: str, kind: str = "env_sensor", interval_s: int = 60, *, connectivity: str = "wifi",
               commissioned_at: str = "2023-12-01Z", decommissioned_at: str | None = None,
               reason: str | None = None, claimed_battery_days: float | None = None,
               profile: str | None = None) -> str:
        device_id = f"{self.pilot_id}-{name}"
        self.conn.execute(
            "INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, commissioned_at, "
            "decommissioned_at, decommission_reason, claimed_battery_days) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (device_id, self.pilot_id, kind, connectivity, interval_s, commissioned_at, decommissioned_at, reason,
             claimed_battery_days))
        if profile is not None:
            profiles.assign(self.conn, device_id, profile)
        return device_id

    def profile(self, name: str, kind: str, measurements: list[str]) -> str:
        """A device profile of the pilot's firm whose version 1 declares `measurements`."""
        profile_id = f"{self.pilot_id}-{name}"
        row = self.conn.execute("SELECT firm_id FROM pilot WHERE id = %s", (self.pilot_id,)).fetchone()
        assert row is not None
        profiles.create(self.conn, profile_id, row[0], _definition(kind, measurements))
        return profile_id

    def declare(self, profile_id: str, kind: str, measurements: list[str]) -> int:
        """A new version of the profile declaring `measurements`, made current; its number."""
        return profiles.new_version(self.conn, profile_id, _definition(kind, measurements)).version

    def series(self, device_id: str, start: str, count: int, step_s: int, values: str, *,
               first_seq: int = 0, latency: str = "2 seconds", latency_ms: str | None = None,
               skip: str = "false") -> None:
        """Insert `count` telemetry readings i = 0..count-1 at start + i*step_s, seq = first_seq + i.
        `values` is a SQL select-list over i naming columns, e.g. "20 + (i % 7) * 0.1 AS temperature_c";
        rows where the SQL condition `skip` holds are left out (an outage). Each arrives `latency`
        after its device time, or `latency_ms` milliseconds, a SQL expression over i."""
        columns = [part.rsplit(" AS ", 1)[1].strip() for part in _split(values)]
        delay = ("%(lat)s::interval" if latency_ms is None
                 else f"({latency_ms.replace('%', '%%')}) * interval '1 millisecond'")
        query = (f"INSERT INTO telemetry (device_id, seq, device_time, ingest_time, channel, size_bytes, {', '.join(columns)}) "
                 f"SELECT %(d)s, %(s)s + i, %(t)s::timestamptz + i * %(step)s * interval '1 second', "
                 f"%(t)s::timestamptz + i * %(step)s * interval '1 second' + {delay}, 'telemetry', 64, "
                 f"{values.replace('%', '%%')} FROM generate_series(0, %(n)s - 1) AS i WHERE NOT ({skip.replace('%', '%%')})")
        self.conn.execute(query.encode(),  # test-built SQL
                          {"d": device_id, "s": first_seq, "t": start, "step": step_s, "lat": latency, "n": count})


def _definition(kind: str, measurements: list[str]) -> ProfileDefinition:
    return ProfileDefinition.model_validate({"vendor": "Acme", "model": f"{kind} model", "firmware_version": "1",
                                             "kind": kind, "reporting_interval_s": 60, "measurements": measurements})


def _split(select_list: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in select_list:
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        current += ch
    return [*parts, current]


@pytest.fixture
def make_pilot(db: psycopg.Connection, unique_id: Callable[[str], str]) -> Callable[..., PilotBuilder]:
    def make(starts_at: str = "2024-01-01Z", ends_at: str | None = "2024-01-02Z", timezone: str = "UTC",
             status: str = "completed") -> PilotBuilder:
        firm, pilot = unique_id("firm"), unique_id("pilot")
        db.execute("INSERT INTO firm (id, name) VALUES (%s, 'Acme')", (firm,))
        db.execute("INSERT INTO pilot (id, firm_id, name, site, starts_at, ends_at, status, timezone) "
                   "VALUES (%s, %s, 'Air', 'Old Town', %s, %s, %s, %s)", (pilot, firm, starts_at, ends_at, status, timezone))
        return PilotBuilder(db, pilot)

    return make


# A clean environment reading: temperature steps 0.1 (never flat, no spike, slow), humidity steps 1.
ENV_OK = "20 + (i % 7) * 0.1 AS temperature_c, 50 + (i % 5) AS humidity_pct"


# --- a pilot whose messages go through the real ingest decoder and writer ---------------------------

INGEST_DAY = datetime(2024, 1, 1, tzinfo=UTC)


def ingest_latency_s(i: int) -> float:
    """Reading i's latency, spread over 0..60 s so its percentiles are distinct values."""
    return (i * 7919) % 60_000 / 1000


@dataclass
class IngestedPilot:
    pilot_id: str
    device_id: str
    latencies: list[float]  # of the delivered readings (the exact latency percentiles are theirs)


@pytest.fixture
def ingested_pilot(db: psycopg.Connection, database_url: str, make_pilot: Callable[..., PilotBuilder]) -> IngestedPilot:
    """One env sensor at 60 s over 2024-01-01, every message through ingest.decode and ingest.writer
    as the broker would hand them over, arriving `ingest_latency_s(i)` after its device time:

    - readings i = 0..1439 but 900..929 (silent): 1,410 delivered; temperature 150 °C (beyond the
      sensor's span, stored since contract v1 leaves plausibility to QC) at 100..104;
    - readings 10..12 delivered a second time (the same bytes: dropped at ingest, counted);
    - reading 700 sent again under seq 5000 (stored: a repeated device time);
    - rejected: malformed JSON twice, an unknown field, a timestamp before 2000.
    """
    from devices.contract import topic_for
    from ingest.decode import Decoder
    from ingest.directory import DeviceDirectory
    from ingest.handoff import Inbound
    from ingest.writer import BatchWriter

    pilot = make_pilot()
    device = pilot.device("env")
    topic = topic_for(pilot.pilot_id, device, "telemetry")

    def reading(i: int, seq: int, **fields: object) -> dict[str, object]:
        ts = int((INGEST_DAY + timedelta(minutes=i)).timestamp() * 1000)
        return {"ts": ts, "seq": seq, "temperature_c": 150.0 if 100 <= i <= 104 else 20 + (i % 7) * 0.1,
                "humidity_pct": 50.0 + i % 5, "noise_dba": 55.0 + i % 3, **fields}

    def inbound(i: int, payload: dict[str, object] | bytes, n: int) -> Inbound:
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        arrived = INGEST_DAY + timedelta(minutes=i, seconds=ingest_latency_s(i))
        return Inbound(topic, body, n, 1, arrived.timestamp(), 1)

    sent = [i for i in range(1440) if not 900 <= i <= 929]
    messages = [inbound(i, reading(i, i), n) for n, i in enumerate(sent)]
    messages += [inbound(i, reading(i, i), 10_000 + i) for i in (10, 11, 12)]
    messages += [inbound(700, reading(700, 5000), 20_000)]
    messages += [inbound(300, b"{not json", 30_000), inbound(301, b"{not json", 30_001),
                 inbound(302, reading(302, 9000, colour="red"), 30_002), inbound(303, reading(303, 9001, ts=1000), 30_003)]
    directory = DeviceDirectory(60)
    directory.load(db)
    decoder = Decoder(16_384, 86_400)
    with psycopg.connect(database_url) as conn:
        writer = BatchWriter(conn)
        for k in range(0, len(messages), 500):
            writer.write(decoder.decode(messages[k:k + 500], lambda device_id: directory.lookup(device_id, conn)))
    return IngestedPilot(pilot.pilot_id, device, [ingest_latency_s(i) for i in sent])
