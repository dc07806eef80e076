"""Requests whose work grows with the data (scores) cannot take the API down for everyone else:
at most a few are computed at once, each SQL statement of a request is cut off after
`api_statement_timeout_s`, and /health has a database connection of its own.

Slow scoring is made real and deterministic by holding a lock the scorer needs (scoring_check),
as a long rollup rebuild or a busy database would; requests go over real HTTP to uvicorn."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import psycopg
import pytest

from access import api_keys
from api.app import create_app
from pilotlab.settings import Settings
from tests.api.conftest import served
from tests.support import admin_headers

AS_OF = "2024-01-03T00:00:00Z"


@pytest.fixture
def scored_pilot(db: psycopg.Connection, unique_id: Callable[[str], str]) -> tuple[str, dict[str, str]]:
    """A firm's pilot with a device and two days of readings; returns (pilot id, firm key headers)."""
    firm, pilot, device = unique_id("firm"), unique_id("pilot"), unique_id("dev")
    db.execute("INSERT INTO firm (id, name) VALUES (%s, 'Acme')", (firm,))
    db.execute("INSERT INTO pilot (id, firm_id, name, site, starts_at, status) VALUES (%s, %s, 'Air', 'Old Town', "
               "'2024-01-01Z', 'running')", (pilot, firm))
    db.execute("INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, commissioned_at) "
               "VALUES (%s, %s, 'env_sensor', 'wifi', 60, '2023-12-01Z')", (device, pilot))
    db.execute("INSERT INTO telemetry (device_id, seq, device_time, ingest_time, channel, size_bytes, temperature_c) "
               "SELECT %s, i, '2024-01-01Z'::timestamptz + i * interval '1 minute', "
               "'2024-01-01Z'::timestamptz + i * interval '1 minute', 'telemetry', 40, 20 + (i %% 7) * 0.1 "
               "FROM generate_series(0, 2 * 1440 - 1) AS i", (device,))
    return pilot, {"Authorization": f"Bearer {api_keys.create(db, 'firm', firm_id=firm).token}"}


@contextmanager
def scoring_held(database_url: str) -> Iterator[None]:
    """Every score computed meanwhile waits on the database, as a slow one would."""
    with psycopg.connect(database_url) as blocker:
        blocker.execute("LOCK TABLE scoring_check IN ACCESS EXCLUSIVE MODE")
        yield
        blocker.rollback()


def test_ten_slow_scores_at_once_leave_health_and_admin_reads_answering(
        database_url: str, scored_pilot: tuple[str, dict[str, str]]) -> None:
    pilot, firm = scored_pilot
    admin = admin_headers(database_url)
    with served(create_app(Settings(database_url=database_url))) as (host, port), \
            httpx.Client(base_url=f"http://{host}:{port}", timeout=60) as http, ThreadPoolExecutor(10) as pool:
        with scoring_held(database_url):
            heavy = [pool.submit(http.get, f"/pilots/{pilot}/score", params={"as_of": AS_OF}, headers=firm)
                     for _ in range(10)]
            time.sleep(0.5)  # all ten are in: computing, or waiting for a scoring slot
            assert not any(f.done() for f in heavy)
            for _ in range(3):
                started = time.monotonic()
                health = http.get("/health")
                firms = http.get("/firms", headers=admin)
                assert time.monotonic() - started < 1.0
                assert (health.status_code, health.json()["database"]) == (200, True)
                assert firms.status_code == 200
        answers = [f.result() for f in heavy]
    assert [a.status_code for a in answers] == [200] * 10  # freed within the slot wait, all were scored
    assert len({a.json()["score"] for a in answers}) == 1


def test_a_request_whose_statement_runs_past_the_timeout_gets_a_clear_503(
        database_url: str, scored_pilot: tuple[str, dict[str, str]]) -> None:
    pilot, firm = scored_pilot
    with served(create_app(Settings(database_url=database_url, api_statement_timeout_s=1))) as (host, port), \
            httpx.Client(base_url=f"http://{host}:{port}", timeout=60) as http:
        with scoring_held(database_url):
            started = time.monotonic()
            answer = http.get(f"/pilots/{pilot}/score", params={"as_of": AS_OF}, headers=firm)
            elapsed = time.monotonic() - started
        assert answer.status_code == 503 and elapsed < 3.0
        assert "ran past the 1 s limit (PILOTLAB_API_STATEMENT_TIMEOUT_S)" in answer.json()["detail"]
        assert http.get(f"/pilots/{pilot}/score", params={"as_of": AS_OF}, headers=firm).status_code == 200
        assert http.get("/health").json()["database"] is True

