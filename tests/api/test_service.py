"""Service health, startup against a missing database, and the OpenAPI docs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable

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
from tests.conftest import _with_database
from tests.support import admin_headers

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/pilotlab"


def test_health_reports_the_schema_version_and_timescaledb_mode(client: TestClient, db: psycopg.Connection) -> None:
    answer = client.get("/health")
    assert answer.status_code == 200
    version = db.execute("SELECT max(version) FROM schema_migration").fetchone()
    timescale = db.execute("SELECT enabled FROM store_capability WHERE name = 'timescaledb'").fetchone()
    assert answer.json() == {"ok": True, "database": True, "schema_version": version and version[0],
                             "timescaledb": timescale and timescale[0]}


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
        assert answer.json() == {"ok": False, "database": False, "schema_version": None, "timescaledb": None}
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
