"""Pilots, devices and stored daily scores written straight into the tables, so what the pages
must show is known by construction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

STARTS = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # 09:00 in Seoul


@dataclass(frozen=True)
class Gate:
    name: str
    threshold: float
    value: float
    passed: bool


def firm(database_url: str, firm_id: str, name: str) -> str:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO firm (id, name) VALUES (%s, %s)", (firm_id, name))
    return firm_id


def pilot(database_url: str, pilot_id: str, firm_id: str, *, name: str = "Air quality", status: str = "running",
          timezone: str = "UTC", kinds: tuple[str, ...] = ("env_sensor",)) -> str:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO pilot (id, firm_id, name, site, stage, starts_at, status, timezone) "
                     "VALUES (%s, %s, %s, 'Old Town', 3, %s, %s, %s)", (pilot_id, firm_id, name, STARTS, status, timezone))
        for n, kind in enumerate(kinds):
            conn.execute("INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, commissioned_at) "
                         "VALUES (%s, %s, %s, 'wifi', 60, %s)", (f"{pilot_id}-d{n}", pilot_id, kind, STARTS))
    return pilot_id


def score(database_url: str, pilot_id: str, day: date, value: float, verdict: str, gates: list[Gate],
          scored_at: datetime) -> None:
    summary = {"score": value, "verdict": verdict, "gates": [g.__dict__ for g in gates]}
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO score_history (pilot_id, scored_on, rubric_version, window_start, window_end, score, "
                     "verdict, summary, scored_at) VALUES (%s, %s, '1', %s, %s, %s, %s, %s, %s)",
                     (pilot_id, day, STARTS, scored_at, value, verdict, Jsonb(summary), scored_at))


DAY = 1440  # readings a day at 60 s
ENV_OK = "20 + (i % 7) * 0.1 AS temperature_c, 50 + (i % 5) AS humidity_pct"
HOT = "CASE WHEN i % 144 = 0 THEN 150 ELSE 20 + (i % 7) * 0.1 END AS temperature_c, 50 + (i % 5) AS humidity_pct"
DRAINING = ENV_OK + ", 100 - i * 0.002 AS battery_pct"  # 2.88 % a day: empty in ~35 days, against 365 claimed


def _series(conn: psycopg.Connection, device_id: str, values: str, skip: str = "false") -> None:
    columns = ", ".join(part.rsplit(" AS ", 1)[1] for part in values.split(", ") if " AS " in part)
    conn.execute(
        ("INSERT INTO telemetry (device_id, seq, device_time, ingest_time, channel, size_bytes, " + columns + ") "
         "SELECT %s, i, '2024-01-01Z'::timestamptz + i * interval '60 s', '2024-01-01Z'::timestamptz + i * interval '60 s' "
         f"+ interval '2 s', 'telemetry', 64, {values.replace('%', '%%')} FROM generate_series(0, {DAY - 1}) AS i "
         f"WHERE NOT ({skip})").encode(), (device_id,))


def scored_day(database_url: str, firm_id: str, pilot_id: str) -> dict[str, str]:
    """A completed one-day pilot (2024-01-01 UTC, shown in Seoul) of three env sensors claiming 365
    days of battery: `full` sends every minute with its battery draining, `gap` misses 12:00-14:00
    (120 of 1,440) and has one dead letter, `hot` reads 150 °C every 144th minute (10 readings).
    Scored and stored with its device breakdowns as the daily rescoring stores them, after an older
    stored score of 70 the day before. Their ids by name."""
    from scoring.rubric import load_rubric
    from scoring.scorer import score_pilot
    from scoring.stored_breakdowns import save_score

    firm(database_url, firm_id, "Acme")
    ids = {"firm": firm_id, "pilot": pilot_id}
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO pilot (id, firm_id, name, site, stage, starts_at, ends_at, status, timezone) VALUES "
                     "(%s, %s, 'Air', 'Old Town', 3, '2024-01-01Z', '2024-01-02Z', 'completed', 'Asia/Seoul')",
                     (pilot_id, firm_id))
        for name in ("full", "gap", "hot"):
            ids[name] = f"{pilot_id}-{name}"
            conn.execute("INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, commissioned_at, "
                         "claimed_battery_days) VALUES (%s, %s, 'env_sensor', 'wifi', 60, '2023-12-01Z', 365)",
                         (ids[name], pilot_id))
        _series(conn, ids["full"], DRAINING)
        _series(conn, ids["gap"], ENV_OK, skip="i >= 720 AND i < 840")
        _series(conn, ids["hot"], HOT)
        conn.execute("INSERT INTO dead_letter (received_at, topic, topic_sha256, payload, payload_sha256, payload_size, "
                     "reason, detail, pilot_id, device_id) VALUES ('2024-01-01T12:30Z', %s, sha256(%s::bytea), "
                     "'{', sha256('{'), 1, 'malformed_json', 'not JSON: expecting a value', %s, %s)",
                     (f"pilotlab/v1/{pilot_id}/{ids['gap']}/telemetry", f"pilotlab/v1/{pilot_id}/{ids['gap']}/telemetry",
                      pilot_id, ids["gap"]))
    score(database_url, pilot_id, date(2023, 12, 31), 70.0, "conditional", [], datetime(2024, 1, 1, tzinfo=UTC))
    with psycopg.connect(database_url, autocommit=True) as conn:
        save_score(conn, score_pilot(conn, pilot_id, load_rubric()))
    return ids


def recorded_pilot(database_url: str, signing_key: Path, firm_id: str, pilot_id: str, *,
                   claimed_battery_days: float = 30, missing: str = "false") -> str:
    """A firm with a completed one-day pilot of two env sensors draining their battery at 2.88 % a
    day (projected ~35 days), claiming `claimed_battery_days`, the readings where the SQL condition
    `missing` holds over i left out; its record issued and signed with the site's key. The record id."""
    from scoring.issuing import issue_record
    from scoring.rubric import load_rubric
    from scoring.signing import load_private_key

    firm(database_url, firm_id, f"{firm_id} Co.")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO pilot (id, firm_id, name, site, stage, starts_at, ends_at, status) VALUES "
                     "(%s, %s, 'Air', 'Old Town', 3, '2024-01-01Z', '2024-01-02Z', 'completed')", (pilot_id, firm_id))
        for n in range(2):
            conn.execute("INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, commissioned_at, "
                         "claimed_battery_days) VALUES (%s, %s, 'env_sensor', 'wifi', 60, '2023-12-01Z', %s)",
                         (f"{pilot_id}-{n}", pilot_id, claimed_battery_days))
            _series(conn, f"{pilot_id}-{n}", DRAINING, skip=missing)
        return issue_record(conn, pilot_id, load_rubric(), load_private_key(signing_key)).id


def conformance_report(database_url: str, signing_key: Path, device_id: str, checks: list[dict[str, str]], *,
                       passed: bool) -> str:
    """A finished conformance run of the device with a report of `checks`, signed with the site's key
    as conformance.report signs one (a body of the checks alone: the page reads no more). Its id."""
    import hashlib
    import uuid

    from conformance.report import sign_report
    from conformance.thresholds import load_thresholds
    from scoring.signing import key_id, load_private_key

    key = load_private_key(signing_key)
    document = sign_report({"device_id": device_id, "checks": checks, "passed": passed}, key)
    report_id, run_id, thresholds = hashlib.sha256(document).hexdigest(), f"cr_{uuid.uuid4().hex[:16]}", load_thresholds()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO conformance_run (id, device_id, started_at, ends_at, thresholds, thresholds_digest, "
                     "baseline, finished_at, passed, report_id) VALUES (%s, %s, now() - interval '2 hours', "
                     "now() - interval '1 hour', %s, %s, '{}', now(), %s, %s)",
                     (run_id, device_id, Jsonb(thresholds.stored()), thresholds.digest, passed, report_id))
        conn.execute("INSERT INTO conformance_report (id, run_id, device_id, issued_at, passed, key_id, document) "
                     "VALUES (%s, %s, %s, now(), %s, %s, %s)",
                     (report_id, run_id, device_id, passed, key_id(key.public_key()), document))
    return report_id
