"""A misconfigured server says so: 503 naming the setting its operator must set, never a 422 that
blames the request (and never the server's file paths); what is the request's fault stays 4xx."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from pilotlab.errors import ANSWERS, ConfigError, InvalidRequest
from pilotlab.settings import Settings
from tests.support import admin_headers


@pytest.fixture
def server(database_url: str) -> Callable[..., AbstractContextManager[TestClient]]:
    """An API of its own with the given settings (a server as its operator configured it)."""

    @contextmanager
    def start(**settings: object) -> Iterator[TestClient]:
        app = create_app(Settings(database_url=database_url, **settings))  # type: ignore[arg-type]
        with TestClient(app, headers=admin_headers(database_url)) as client:
            yield client

    return start


def _problem(answer, status: int) -> str:  # type: ignore[no-untyped-def]
    assert answer.status_code == status, answer.text
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail
    return detail


def _records(db: psycopg.Connection, pilot_id: str) -> int:
    return db.execute("SELECT count(*) FROM reference_record WHERE pilot_id = %s", (pilot_id,)).fetchone()[0]


def test_a_server_without_a_signing_key_answers_503_saying_what_its_operator_must_set(server, pilot_id, db):
    with server() as client:
        issued = client.post(f"/pilots/{pilot_id}/records", params={"as_of": "2024-01-02T00:00:00Z"})
        assert "PILOTLAB_SIGNING_KEY" in _problem(issued, 503)
        assert _records(db, pilot_id) == 0
        anonymous = {"Authorization": ""}
        assert "PILOTLAB_SIGNING_KEY" in _problem(client.get("/records/public-key", headers=anonymous), 503)
        verify = client.post("/records/verify", content=b'{"record": {}, "signature": {}}', headers=anonymous)
        assert "PILOTLAB_SIGNING_KEY" in _problem(verify, 503)


def test_an_unreadable_signing_key_is_a_503_that_keeps_the_servers_path_to_its_log(server, pilot_id, caplog):
    hidden = "/nonexistent/operators-secret-place/key.pem"
    with server(signing_key=Path(hidden)) as client, caplog.at_level(logging.ERROR):
        detail = _problem(client.post(f"/pilots/{pilot_id}/records"), 503)
    assert "PILOTLAB_SIGNING_KEY" in detail and "operators-secret-place" not in detail
    assert any(hidden in record.getMessage() for record in caplog.records)


def test_a_broken_rubric_file_is_a_503_naming_pilotlab_rubric(server, pilot_id, tmp_path):
    rubric = tmp_path / "rubric.yaml"
    rubric.write_text("version: '9'\n")
    with server(rubric=rubric) as client:
        detail = _problem(client.get(f"/pilots/{pilot_id}/score", params={"as_of": "2024-01-02T00:00:00Z"}), 503)
    assert "PILOTLAB_RUBRIC" in detail


def test_what_the_request_got_wrong_stays_4xx(server, pilot_id, unique_id):
    with server() as client:
        future = client.get(f"/pilots/{pilot_id}/score", params={"as_of": "4000-01-01T00:00:00Z"})
        assert "in the future" in _problem(future, 422)
        assert "Mars/Olympus" in _problem(client.put(f"/pilots/{pilot_id}/timezone", json={"timezone": "Mars/Olympus"}), 422)
        device = {"id": unique_id("dev"), "kind": "env_sensor", "pilot_id": unique_id("nopilot"), "connectivity": "lpwa",
                  "reporting_interval_s": 60, "commissioned_at": "2024-01-01T00:00:00Z"}
        assert "names no pilot" in _problem(client.post("/devices", json=device), 422)
        assert _problem(client.get("/pilots/no-such-pilot/score"), 404)
        firm = client.get(f"/pilots/{pilot_id}").json()["firm_id"]
        assert _problem(client.post("/firms", json={"id": firm, "name": "again"}), 409)


def test_misconfiguration_and_bad_requests_have_their_answer_in_the_one_table():
    assert (ANSWERS[ConfigError].http_status, ANSWERS[InvalidRequest].http_status) == (503, 422)
