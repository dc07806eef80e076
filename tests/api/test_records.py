"""Reference records over HTTP as a reviewer uses them: the record file itself posted to
/records/verify (or wrapped as {"document": …}), without any key, and the OpenAPI saying so."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from pilotlab.settings import Settings
from tests.support import admin_headers


@pytest.fixture(scope="module")
def signing_client(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    from scoring.signing import generate_key

    key = tmp_path_factory.mktemp("key") / "signing.pem"
    generate_key(key)
    with TestClient(create_app(Settings(database_url=database_url, signing_key=key)),
                    headers=admin_headers(database_url)) as test_client:
        yield test_client


@pytest.fixture
def record_file(signing_client: TestClient, pilot_id: str) -> bytes:
    """A record issued by the API for a pilot of the test, byte for byte as a reviewer downloads it."""
    issued = signing_client.post(f"/pilots/{pilot_id}/records", params={"as_of": "2024-01-02T00:00:00Z"})
    assert issued.status_code == 201, issued.text
    document = signing_client.get(issued.json()["url"])
    assert document.status_code == 200
    return document.content


ANONYMOUS = {"Authorization": ""}  # the client's admin key, taken away


def test_the_record_file_itself_posted_to_verify_is_valid_without_any_key(signing_client, record_file, pilot_id):
    for content_type in ("application/json", "application/x-www-form-urlencoded"):  # curl --data-binary's default
        answer = signing_client.post("/records/verify", content=record_file,
                                     headers={**ANONYMOUS, "Content-Type": content_type})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"valid": True, "reason": None, "pilot_id": pilot_id,
                                 "verdict": json.loads(record_file)["record"]["verdict"],
                                 "score": json.loads(record_file)["record"]["score"],
                                 "issued_at": json.loads(record_file)["record"]["issued_at"]}


def test_a_posted_record_file_with_one_byte_changed_is_invalid_with_the_reason(signing_client, record_file):
    tampered = record_file.replace(b'"stage":2', b'"stage":3')
    assert tampered != record_file
    answer = signing_client.post("/records/verify", content=tampered, headers={"Content-Type": "application/json"})
    assert answer.status_code == 200
    assert answer.json()["valid"] is False and "altered" in answer.json()["reason"]


def test_the_wrapped_form_still_verifies_with_the_servers_or_a_given_public_key(signing_client, record_file, tmp_path):
    from scoring.signing import generate_key, public_pem

    document = record_file.decode()
    assert signing_client.post("/records/verify", json={"document": document}).json()["valid"] is True
    other = public_pem(generate_key(tmp_path / "other.pem").public_key()).decode()
    answer = signing_client.post("/records/verify", json={"document": document, "public_key": other}).json()
    assert answer["valid"] is False and "not by the given key" in answer["reason"]


def test_a_wrapped_body_with_a_bad_public_key_is_a_422_naming_the_field(signing_client, record_file):
    answer = signing_client.post("/records/verify", json={"document": record_file.decode(), "public_key": "nope"})
    assert answer.status_code == 422 and answer.json()["detail"].startswith("public_key: ")


def test_openapi_says_which_routes_need_no_key_and_documents_both_verify_bodies(signing_client):
    spec = signing_client.get("/openapi.json").json()
    verify = spec["paths"]["/records/verify"]["post"]
    assert verify["security"] == []
    for path in ("/records/public-key", "/health"):
        assert spec["paths"][path]["get"]["security"] == []
    assert spec["paths"]["/pilots/{pilot_id}/records"]["post"]["security"] == [{"API key": []}]
    forms = verify["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert [sorted(form["required"]) for form in forms] == [["record", "signature"], ["document"]]

