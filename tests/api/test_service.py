"""Service health, startup against a missing database, and the OpenAPI docs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from api.app import create_app
from api.server import serve
from pilotlab.cli import main
from pilotlab.errors import ServiceUnavailable
from pilotlab.settings import Settings
from store.migrate import migrate
from store.timeseries import PORTAL_CAUSE
from tests.conftest import _with_database
from tests.support import admin_headers, wait_until

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/pilotlab"


def test_health_reports_the_schema_version_and_timescaledb_mode(client: TestClient, db: psycopg.Connection,
                                                               database_server: str) -> None:
    answer = client.get("/health")
    assert answer.status_code == 200
    version = db.execute("SELECT max(version) FROM schema_migration").fetchone()
    body = answer.json()
    timescale = database_server == "timescaledb"
    assert body | {"timescaledb_health": None} == {"ok": True, "database": True, "schema_version": version and version[0],
                                                   "timescaledb": timescale, "timescaledb_health": None}
    assert (body["timescaledb_health"] is not None) is timescale  # jobs and compression on TimescaleDB only


@pytest.mark.timescaledb
def test_health_and_metrics_report_failing_timescaledb_jobs_and_chunk_compression(empty_database: str) -> None:
    """A job that fails for real (a procedure that raises, run by TimescaleDB's scheduler) shows
    in /health with its error and in /metrics; so do compressed and overdue chunks. pilotlab's
    own policies are listed as their runs were logged: on PostgreSQL 15.20 each scheduled run is
    logged as failed with a known cause, which is reported as a failure, with that cause."""
    migrate(empty_database)
    now = datetime.now(UTC)
    with psycopg.connect(empty_database, autocommit=True) as conn:
        # pilotlab's policies run once as soon as they exist; their next runs are hours away
        wait_until(lambda: conn.execute("SELECT count(s.last_run_status) FROM timescaledb_information.jobs j "
                                        "JOIN timescaledb_information.job_stats s USING (job_id) "
                                        "WHERE j.hypertable_name IN ('telemetry', 'telemetry_hourly')").fetchone() == (3,),
                   timeout_s=60, what="the first scheduled runs of pilotlab's policies")
        conn.execute("INSERT INTO firm (id, name) VALUES ('jobs', 'Jobs')")
        conn.execute("INSERT INTO pilot (id, firm_id, name, site, starts_at) VALUES ('jobs-p', 'jobs', 'J', 'lab', %s)",
                     (now - timedelta(days=60),))
        conn.execute("INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, commissioned_at) "
                     "VALUES ('jobs-env', 'jobs-p', 'env_sensor', 'wifi', 60, %s)", (now - timedelta(days=60),))
        insert = ("INSERT INTO telemetry (device_id, seq, device_time, ingest_time, channel, size_bytes, temperature_c) "
                  "SELECT 'jobs-env', %s + i, %s + i * interval '1 minute', now(), 'telemetry', 40, 20 "
                  "FROM generate_series(0, 99) i")
        conn.execute(insert, (0, now - timedelta(days=20)))
        conn.execute("SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks('telemetry') c")
        conn.execute(insert, (1000, now - timedelta(days=10)))  # a chunk the compression policy has not reached
        conn.execute("CREATE PROCEDURE pilotlab_test_fails(job_id int, config jsonb) LANGUAGE plpgsql "
                     "AS $$ BEGIN RAISE EXCEPTION 'deliberate failure of job %', job_id; END $$")
        job = conn.execute("SELECT add_job('pilotlab_test_fails', '1 hour', initial_start => now())").fetchone()[0]
        wait_until(lambda: conn.execute("SELECT last_run_status FROM timescaledb_information.job_stats "
                                        "WHERE job_id = %s", (job,)).fetchone() == ("Failed",),
                   timeout_s=60, what="the scheduler to run the failing job")
    with TestClient(create_app(Settings(database_url=empty_database)), headers=admin_headers(empty_database)) as api:
        health = api.get("/health").json()["timescaledb_health"]
        metrics = api.get("/metrics").text
    jobs = {j["name"]: j for j in health["jobs"]}
    failing = jobs["pilotlab_test_fails"]
    assert (failing["last_run_status"], failing["total_failures"], failing["known_cause"]) == ("Failed", 1, None)
    assert failing["last_error"] == f"deliberate failure of job {job}"
    assert {(name, jobs[name]["target"]) for name in jobs} >= {
        ("policy_compression", "telemetry"), ("policy_retention", "telemetry"),
        ("policy_refresh_continuous_aggregate", "telemetry_hourly")}
    for name in ("policy_compression", "policy_retention", "policy_refresh_continuous_aggregate"):
        policy = jobs[name]
        if (policy["last_error"] or "").startswith("cannot drop portal"):  # PostgreSQL 15.20 (deploy/README.md)
            assert (policy["last_run_status"], policy["known_cause"]) == ("Failed", PORTAL_CAUSE), policy
        else:
            assert policy["last_run_status"] == "Success", policy
    assert health["failing_jobs"] == sum(j["last_run_status"] == "Failed" for j in health["jobs"]) >= 1
    [telemetry] = [c for c in health["compression"] if c["hypertable"] == "telemetry"]
    assert telemetry["compressed_chunks"] >= 1 and telemetry["overdue_chunks"] == 1
    assert telemetry["chunks"] == telemetry["compressed_chunks"] + 1
    assert telemetry["bytes_after"] > 0
    labels = f'job="pilotlab_test_fails",job_id="{job}",target=""'
    assert f"pilotlab_timescaledb_job_failures_total{{{labels}}} 1.0" in metrics
    assert f"pilotlab_timescaledb_job_last_run_ok{{{labels}}} 0.0" in metrics
    assert 'pilotlab_timescaledb_chunks{hypertable="telemetry",state="overdue"} 1.0' in metrics


def test_health_reconnects_when_the_database_dropped_its_connection(client: TestClient,
                                                                     db: psycopg.Connection) -> None:
    assert client.get("/health").status_code == 200
    probe = client.app.state.health_probe  # type: ignore[attr-defined]
    db.execute("SELECT pg_terminate_backend(%s)", (probe._conn.info.backend_pid,))  # as a database restart does
    answer = client.get("/health")
    assert answer.status_code == 200 and answer.json()["database"] is True


def test_health_is_503_once_the_database_is_gone(make_database: Callable[[], str], admin_database_url: str) -> None:
    url = make_database()
    with TestClient(create_app(Settings(database_url=url)), headers=admin_headers(url)) as doomed:
        assert doomed.get("/health").status_code == 200
        name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
        with psycopg.connect(admin_database_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(str(name))))
        answer = doomed.get("/health")
        assert answer.status_code == 503
        assert answer.json() == {"ok": False, "database": False, "schema_version": None, "timescaledb": None,
                                 "timescaledb_health": None}
        lost = doomed.get("/firms")
        assert lost.status_code == 503
        assert lost.json() == {"detail": "the database is unreachable; try again shortly"}


def test_serve_refuses_an_unreachable_database_before_listening() -> None:
    with pytest.raises(ServiceUnavailable, match="cannot reach the database at postgresql://postgres@127.0.0.1:1"):
        serve(Settings(database_url=UNREACHABLE))


def test_serve_refuses_a_database_without_the_schema(admin_database_url: str) -> None:
    name = f"pilotlab_bare_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with pytest.raises(ServiceUnavailable, match="run `pilotlab db migrate`"):
            serve(Settings(database_url=_with_database(admin_database_url, name)))
    finally:
        with psycopg.connect(admin_database_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_the_cli_exits_2_with_one_line_when_the_database_is_down(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["api", "--database-url", UNREACHABLE, "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pilotlab: cannot reach the database")
    assert err.count("\n") == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_pilotlab_api_serves_http_on_the_configured_port(database_url: str) -> None:
    port = _free_port()
    env = {**os.environ, "PILOTLAB_DATABASE_URL": database_url}
    server = subprocess.Popen([sys.executable, "-m", "pilotlab", "api", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read().decode() if server.stderr else "exited"
                assert time.monotonic() < deadline, "API did not start listening within 20 s"
                time.sleep(0.2)
        assert answer.status_code == 200
        assert answer.json()["database"] is True
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_openapi_docs_describe_every_operation(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    operations = [op for path in spec["paths"].values() for op in path.values()]
    assert len(operations) >= 25
    assert all(op.get("summary") for op in operations)
    telemetry = spec["paths"]["/devices/{device_id}/telemetry"]["get"]
    assert {p["name"] for p in telemetry["parameters"]} >= {"from", "to", "channel", "bucket", "limit"}
    assert "3 ×" in spec["paths"]["/devices/{device_id}/health"]["get"]["description"]
