"""The API against the session's real throwaway database, plus helpers that register a pilot's
fixtures through the API and write telemetry rows straight into the table (so the expected
answers are known by construction)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from pilotlab.settings import Settings
from tests.support import admin_headers


@pytest.fixture(scope="session")
def client(database_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=database_url)), headers=admin_headers(database_url)) as test_client:
        yield test_client


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def pilot_id(client: TestClient, unique_id: Callable[[str], str]) -> str:
    """A registered firm and running pilot of its own, for one test."""
    firm = unique_id("firm")
    assert client.post("/firms", json={"id": firm, "name": "Acme Sensors"}).status_code == 201
    pilot = unique_id("pilot")
    answer = client.post("/pilots", json={"id": pilot, "firm_id": firm, "name": "Air quality",
                                          "site": "Old Town", "stage": 2, "status": "running",
                                          "starts_at": "2024-01-01T00:00:00Z"})
    assert answer.status_code == 201, answer.text
    return pilot


@pytest.fixture
def make_device(client: TestClient, pilot_id: str, unique_id: Callable[[str], str]) -> Callable[..., str]:
    """Register a device in the test's pilot; returns its id."""
    count = iter(range(1000))

    def register(kind: str = "env_sensor", interval_s: int = 60, **extra: Any) -> str:
        device = unique_id(f"dev{next(count)}")
        body = {"id": device, "kind": kind, "pilot_id": pilot_id, "connectivity": "lpwa",
                "reporting_interval_s": interval_s, "commissioned_at": "2024-01-01T00:00:00Z", **extra}
        answer = client.post("/devices", json=body)
        assert answer.status_code == 201, answer.text
        return device

    return register


@pytest.fixture
def insert_rows(db: psycopg.Connection) -> Callable[..., None]:
    """insert_rows(device_id, [(device_time, {column: value}), ...], channel=..., ingest_time=...)

    seq counts from 0 in the order given; ingest_time defaults to the device time."""

    def insert(device_id: str, rows: list[tuple[datetime, dict[str, Any]]], *, channel: str = "telemetry",
               ingest_time: datetime | None = None, first_seq: int = 0) -> None:
        with db.cursor() as cur:
            for seq, (device_time, values) in enumerate(rows, start=first_seq):
                columns = ["device_id", "seq", "device_time", "ingest_time", "channel", "size_bytes", *values]
                params = [device_id, seq, device_time, ingest_time or device_time, channel, 64, *values.values()]
                placeholders = ", ".join(["%s"] * len(columns))
                cur.execute(f"INSERT INTO telemetry ({', '.join(columns)}) VALUES ({placeholders})",
                            params)

    return insert


@contextmanager
def served(app: FastAPI) -> Iterator[tuple[str, int]]:
    """`app` served by a real uvicorn server on a free loopback port, for tests that need real
    HTTP (chunked bodies, concurrent clients); yields (host, port)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield "127.0.0.1", sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
