"""Ground-truth pilots for scoring: registry rows and telemetry written straight into the tables
with generate_series, so every expected metric is known by construction."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

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
