"""A seeded program whose year figures are known by construction, for the rolling plan's tests
(API, CLI and page). Every device reports each minute of its one day (slots of 3 minutes: 480 a
day), so availability is counted in slots by hand:

    acme      pilot of 2024-01-01 (UTC): 2 env sensors, every reading              480 + 480 / 960
              record issued 2024-01-02 00:00 UTC, eligible                        -> stage 4 in 2024
    borealis  pilot of 2024-01-01 (UTC): an env sensor silent 12:00-14:00 (40 slots) 440 / 480,
              and a smart switch, every reading                                   480 / 480
              record issued 2024-01-02, conditional                               -> not stage 4
    cobalt    pilot of 2023-12-31 (UTC): 1 env sensor, every reading; its window ends at midnight
              on 1 January 2024, so it counts for 2023                            480 / 480
              record issued 2023-12-31 23:00 UTC, eligible                        -> stage 4 in 2023
    delta     no score; record issued 2023-12-31 15:30 UTC, eligible: 00:30 on 1 January 2024 in
              its pilot's zone (Asia/Seoul)                                       -> stage 4 in 2024
    echo      no score; record of 2024-06-01, eligible but signed by another key  -> not stage 4

So 2024: 2 pilots, 4 devices, env sensors (480 + 480 + 440) / 1440, switches 480 / 480, 2 firms
at stage 4 (acme, delta); 2023: 1 pilot, 1 device, env sensors 480 / 480, 1 firm (cobalt).
The pilots are scored and their scores stored as the daily rescoring stores them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg

ENV = "20 + (i % 7) * 0.1 AS temperature_c, 50 + (i % 5) AS humidity_pct"
SWITCH = "true AS relay_on, 5 + (i % 3) AS power_w, i * 0.1 AS energy_wh"
GAP = "i >= 720 AND i < 840"
ENV_2024 = 480 + 480 + 440, 1440  # slots hit, slots
SWITCH_2024 = 480, 480
# a plan for 2024 against it: pilots not met, devices and firms met, env sensors short, switches met,
# trackers planned with none run
PLAN_2024 = {"pilots": 3, "devices": 4, "stage4_firms": 2,
             "availability": {"env_sensor": 0.98, "smart_switch": 0.95, "location_tracker": 0.9}, "note": "2024 call"}


@dataclass(frozen=True)
class Program:
    firms: dict[str, str]   # name -> firm id
    pilots: dict[str, str]  # firm name -> its pilot's id


def _day_of_readings(conn: psycopg.Connection, device_id: str, day: str, values: str, skip: str = "false") -> None:
    columns = ", ".join(part.rsplit(" AS ", 1)[1] for part in values.split(", "))
    conn.execute(
        (f"INSERT INTO telemetry (device_id, seq, device_time, ingest_time, channel, size_bytes, {columns}) "
         "SELECT %s, i, %s::timestamptz + i * interval '60 s', %s::timestamptz + i * interval '60 s' + interval '2 s', "
         f"'telemetry', 64, {values.replace('%', '%%')} FROM generate_series(0, 1439) AS i WHERE NOT ({skip})").encode(),
        (device_id, day, day))


def _pilot(conn: psycopg.Connection, firm_id: str, pilot_id: str, day: str, timezone: str = "UTC") -> None:
    conn.execute("INSERT INTO firm (id, name) VALUES (%s, %s)", (firm_id, f"{firm_id.split('-')[0].title()} Co."))
    conn.execute("INSERT INTO pilot (id, firm_id, name, site, stage, starts_at, ends_at, status, timezone) VALUES "
                 "(%s, %s, 'Program', 'Old Town', 3, %s, %s::timestamptz + interval '1 day', 'completed', %s)",
                 (pilot_id, firm_id, day, day, timezone))


def _device(conn: psycopg.Connection, pilot_id: str, device_id: str, kind: str) -> None:
    conn.execute("INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, commissioned_at) "
                 "VALUES (%s, %s, %s, 'wifi', 60, '2023-11-01Z')", (device_id, pilot_id, kind))


def _record(conn: psycopg.Connection, key_path: Path, pilot_id: str, firm_id: str, verdict: str, issued_at: str,
            rubric_version: str) -> None:
    """A signed reference record of the pilot (the parts the plan reads: pilot, firm, verdict)."""
    from scoring.records import RECORD_FORMAT, record_id, sign
    from scoring.signing import key_id, load_private_key

    key = load_private_key(key_path)
    issued = datetime.fromisoformat(issued_at)
    document = sign({"format": RECORD_FORMAT, "pilot": {"id": pilot_id}, "firm": {"id": firm_id}, "verdict": verdict,
                     "score": 88.0, "issued_at": issued}, key)
    conn.execute("INSERT INTO reference_record (id, pilot_id, issued_at, rubric_version, verdict, score, key_id, document) "
                 "VALUES (%s, %s, %s, %s, %s, 88, %s, %s)",
                 (record_id(document), pilot_id, issued, rubric_version, verdict, key_id(key.public_key()), document))


def seed_program(database_url: str, signing_key: Path, foreign_key: Path, tag: str) -> Program:
    """The program above; firm and pilot ids carry `tag`. `foreign_key`: a key that is not the site's."""
    from scoring.rubric import load_rubric
    from scoring.scorer import save_history, score_pilot

    firms = {name: f"{name}-{tag}" for name in ("acme", "borealis", "cobalt", "delta", "echo")}
    pilots = {name: f"{name}-{tag}-p" for name in firms}
    rubric = load_rubric()
    version = rubric.rubric.version
    with psycopg.connect(database_url, autocommit=True) as conn:
        for name, day, zone in (("acme", "2024-01-01Z", "UTC"), ("borealis", "2024-01-01Z", "UTC"),
                                ("cobalt", "2023-12-31Z", "UTC"), ("delta", "2023-12-01Z", "Asia/Seoul"),
                                ("echo", "2024-05-01Z", "UTC")):
            _pilot(conn, firms[name], pilots[name], day, zone)
        for name, n, kind, day, values, skip in (
                ("acme", 0, "env_sensor", "2024-01-01Z", ENV, "false"), ("acme", 1, "env_sensor", "2024-01-01Z", ENV, "false"),
                ("borealis", 0, "env_sensor", "2024-01-01Z", ENV, GAP),
                ("borealis", 1, "smart_switch", "2024-01-01Z", SWITCH, "false"),
                ("cobalt", 0, "env_sensor", "2023-12-31Z", ENV, "false")):
            device_id = f"{pilots[name]}-{n}"
            _device(conn, pilots[name], device_id, kind)
            _day_of_readings(conn, device_id, day, values, skip)
        for name in ("acme", "borealis", "cobalt"):
            save_history(conn, score_pilot(conn, pilots[name], rubric))
        for name, verdict, issued_at, key in (
                ("acme", "eligible", "2024-01-02T00:00:00+00:00", signing_key),
                ("borealis", "conditional", "2024-01-02T00:00:00+00:00", signing_key),
                ("cobalt", "eligible", "2023-12-31T23:00:00+00:00", signing_key),
                ("delta", "eligible", "2023-12-31T15:30:00+00:00", signing_key),
                ("echo", "eligible", "2024-06-01T00:00:00+00:00", foreign_key)):
            _record(conn, key, pilots[name], firms[name], verdict, issued_at, version)
    return Program(firms, pilots)
