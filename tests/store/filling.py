"""Representative data for a database at any schema version, and the answers expected from it
computed in Python from the rows themselves (never with the SQL under test)."""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from store.migrate import current_version
from store.timeseries import read_capabilities

# (device_id, seq, device_time, channel, temperature_c)
Row = tuple[str, int, datetime, str, float | None]


@dataclass
class SchemaFill:
    device_id: str
    telemetry: list[Row] = field(default_factory=list)
    compressed_time: datetime | None = None  # a reading's time inside a compressed chunk (TimescaleDB)
    dead_letters: int = 0
    uplink_frames: int = 0
    uplink_lost: int = 0


def fill_at(url: str, version: int) -> SchemaFill:
    """Registry rows; from 0002 telemetry a month old and of the last hours, with a dead letter;
    from 0003 LPWA frames with one lost. On TimescaleDB the refresh policy runs once and the
    chunks older than 7 days are compressed, as in a deployment that has been running."""
    fill = SchemaFill("up-env")
    with psycopg.connect(url, autocommit=True) as conn:
        assert current_version(conn) == version
        conn.execute("INSERT INTO firm (id, name) VALUES ('up-firm', 'Upgrade Ltd')")
        conn.execute("INSERT INTO pilot (id, firm_id, name, site, starts_at, status) "
                     "VALUES ('up-pilot', 'up-firm', 'Upgrade', 'lab', '2024-01-01Z', 'running')")
        conn.execute("INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, commissioned_at) "
                     "VALUES ('up-env', 'up-pilot', 'env_sensor', 'lpwa', 600, '2024-01-01Z')")
        if version < 2:
            return fill
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        old, recent = hour - timedelta(days=30), hour - timedelta(hours=3)
        seq = 0
        for start in (old, recent):
            for k in range(12):  # every 10 minutes for two hours, a status every 6th message
                channel = "status" if k % 6 == 5 else "telemetry"
                temperature = None if channel == "status" else 20.0 + k * 0.5
                fill.telemetry.append(("up-env", seq, start + timedelta(minutes=10 * k), channel, temperature))
                seq += 1
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO telemetry (device_id, seq, device_time, ingest_time, channel, size_bytes, "
                            "temperature_c, state) VALUES (%s, %s, %s, %s + interval '2 seconds', %s, 64, %s, %s)",
                            [(d, s, t, t, c, temp, "online" if c == "status" else None) for d, s, t, c, temp in fill.telemetry])
        payload = b'{"ts": 1, "seq": "x"}'
        conn.execute("INSERT INTO dead_letter (received_at, topic, payload, payload_sha256, reason, detail, pilot_id, "
                     "device_id) VALUES (now(), 'pilotlab/v1/up-pilot/up-env/telemetry', %s, %s, 'invalid_payload', "
                     "'seq: expected an integer', 'up-pilot', 'up-env')", (payload, hashlib.sha256(payload).digest()))
        fill.dead_letters = 1
        if version >= 3:
            frames = [(fcnt, old + timedelta(minutes=10 * i)) for i, fcnt in enumerate((1, 2, 4))]  # 3 never heard
            conn.cursor().executemany(
                "INSERT INTO uplink_frame (device_id, fcnt, uplink_time, received_at, network_server, f_port) "
                "VALUES ('up-env', %s, %s, %s, 'chirpstack', 1)", [(f, t, t) for f, t in frames])
            fill.uplink_frames, fill.uplink_lost = len(frames), 1
        if read_capabilities(conn).timescaledb:
            refresh_hourly(url)
            compress_old_chunks(conn)
            fill.compressed_time = old + timedelta(minutes=5)
    return fill


def telemetry_rows(conn: psycopg.Connection) -> list[Row]:
    return [tuple(r) for r in conn.execute(  # type: ignore[misc]
        "SELECT device_id, seq, device_time, channel, temperature_c FROM telemetry ORDER BY device_id, seq")]


def hourly_expected(rows: list[Row]) -> list[tuple[Any, ...]]:
    """(device_id, UTC hour, messages, readings, mean temperature) per device and hour of `rows`."""
    groups: dict[tuple[str, datetime], list[Row]] = defaultdict(list)
    for row in rows:
        groups[row[0], row[2].astimezone(UTC).replace(minute=0, second=0, microsecond=0)].append(row)
    expected = []
    for (device, hour), members in sorted(groups.items()):
        temperatures = [r[4] for r in members if r[4] is not None]
        expected.append((device, hour, len(members), sum(r[3] == "telemetry" for r in members),
                         sum(temperatures) / len(temperatures) if temperatures else None))
    return expected


def refresh_hourly(url: str) -> None:
    """What the scheduler does on TimescaleDB: one run of telemetry_hourly's refresh policy (its
    own window). Nothing to do on plain PostgreSQL, where telemetry_hourly is a view."""
    with psycopg.connect(url, autocommit=True) as conn:
        if not read_capabilities(conn).timescaledb:
            return
        job = conn.execute("SELECT job_id FROM timescaledb_information.jobs WHERE hypertable_name = 'telemetry_hourly' "
                           "AND proc_name = 'policy_refresh_continuous_aggregate'").fetchone()
        assert job, "telemetry_hourly has no refresh policy"
        deadline = time.monotonic() + 30
        while True:  # the scheduler runs the policy itself too (first at its creation): ours waits for it
            try:
                conn.execute("CALL run_job(%s)", (job[0],))
                return
            except psycopg.errors.LockNotAvailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def compress_old_chunks(conn: psycopg.Connection) -> None:
    """What the compression policy does, for the chunks older than its 7 days. The scheduler may
    be compressing the same chunk at that moment (its policy runs as soon as it exists): a chunk
    it compressed first is fine."""
    chunks = [row[0] for row in conn.execute("SELECT c::text FROM show_chunks('telemetry', older_than => INTERVAL '7 days') c")]
    assert chunks
    for chunk in chunks:
        try:
            conn.execute("SELECT compress_chunk(%s::regclass, if_not_compressed => true)", (chunk,))
        except psycopg.errors.DuplicateObject:  # "already compressed", by the scheduler
            pass
    assert conn.execute("SELECT bool_and(is_compressed) FROM timescaledb_information.chunks WHERE hypertable_name = "
                        "'telemetry' AND range_end <= now() - INTERVAL '7 days'").fetchone() == (True,)
