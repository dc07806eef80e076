"""Firms: register, read, list, change, delete."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient


def test_a_registered_firm_reads_back_as_given(client: TestClient, unique_id: Callable[[str], str]) -> None:
    firm = unique_id("firm")
    created = client.post("/firms", json={"id": firm, "name": "Acme", "contact": "ops@acme.test"})
    assert created.status_code == 201
    fetched = client.get(f"/firms/{firm}").json()
    assert fetched == created.json()
    assert (fetched["id"], fetched["name"], fetched["contact"]) == (firm, "Acme", "ops@acme.test")
    assert firm in [f["id"] for f in client.get("/firms", params={"limit": 1000}).json()]


def test_registering_a_taken_firm_id_is_a_conflict(client: TestClient, unique_id: Callable[[str], str]) -> None:
    firm = unique_id("firm")
    assert client.post("/firms", json={"id": firm, "name": "Acme"}).status_code == 201
    again = client.post("/firms", json={"id": firm, "name": "Other"})
    assert again.status_code == 409
    assert again.json() == {"detail": f"firm {firm!r} already exists"}
    assert client.get(f"/firms/{firm}").json()["name"] == "Acme"


def test_patch_changes_only_the_fields_sent(client: TestClient, unique_id: Callable[[str], str]) -> None:
    firm = unique_id("firm")
    client.post("/firms", json={"id": firm, "name": "Acme", "contact": "a@acme.test"})
    changed = client.patch(f"/firms/{firm}", json={"name": "Acme Ltd"})
    assert changed.status_code == 200
    assert (changed.json()["name"], changed.json()["contact"]) == ("Acme Ltd", "a@acme.test")
    cleared = client.patch(f"/firms/{firm}", json={"contact": None})
    assert cleared.json()["contact"] is None


def test_a_required_field_cannot_be_patched_to_null(client: TestClient, unique_id: Callable[[str], str]) -> None:
    firm = unique_id("firm")
    client.post("/firms", json={"id": firm, "name": "Acme"})
    answer = client.patch(f"/firms/{firm}", json={"name": None})
    assert answer.status_code == 422
    assert answer.json()["errors"] == [
        {"field": "body.name", "message": "cannot be null; leave the field out to keep its value or default"}]


def test_a_bad_id_is_refused_with_the_field_and_rule(client: TestClient) -> None:
    answer = client.post("/firms", json={"id": "acme corp/1", "name": "Acme"})
    assert answer.status_code == 422
    body = answer.json()
    assert body["errors"][0]["field"] == "body.id"
    assert "pattern" in body["errors"][0]["message"]
    assert body["detail"].startswith("invalid request: body.id:")


def test_an_unknown_field_is_refused_rather_than_ignored(client: TestClient, unique_id: Callable[[str], str]) -> None:
    answer = client.post("/firms", json={"id": unique_id("firm"), "name": "Acme", "contcat": "x"})
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "body.contcat"


def test_an_unreferenced_firm_can_be_deleted(client: TestClient, unique_id: Callable[[str], str]) -> None:
    firm = unique_id("firm")
    client.post("/firms", json={"id": firm, "name": "Acme"})
    assert client.delete(f"/firms/{firm}").status_code == 204
    assert client.get(f"/firms/{firm}").status_code == 404


def test_unknown_firm_ids_are_404_with_the_id_named(client: TestClient) -> None:
    for answer in (client.get("/firms/nope"), client.patch("/firms/nope", json={"name": "x"}),
                   client.delete("/firms/nope")):
        assert answer.status_code == 404
        assert answer.json() == {"detail": "no firm with id 'nope'"}


def test_a_value_postgresql_cannot_store_is_a_422_not_a_500(client: TestClient, unique_id: Callable[[str], str]) -> None:
    answer = client.post("/firms", json={"id": unique_id("firm"), "name": "Ac\u0000me"})
    assert answer.status_code == 422
    assert "NUL" in answer.json()["detail"]
