"""Pilots: register under a firm, filter, change stage and dates, delete."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient


def _pilot(pilot_id: str, firm_id: str, **extra: object) -> dict[str, object]:
    return {"id": pilot_id, "firm_id": firm_id, "name": "Parking", "site": "Harbour",
            "starts_at": "2024-03-01T00:00:00+01:00", **extra}


def test_a_pilot_gets_stage_3_and_planned_by_default(client: TestClient, unique_id: Callable[[str], str]) -> None:
    firm, pilot = unique_id("firm"), unique_id("pilot")
    client.post("/firms", json={"id": firm, "name": "Acme"})
    created = client.post("/pilots", json=_pilot(pilot, firm))
    assert created.status_code == 201, created.text
    got = client.get(f"/pilots/{pilot}").json()
    assert (got["stage"], got["status"], got["firm_id"], got["ends_at"]) == (3, "planned", firm, None)
    assert got["starts_at"].startswith("2024-02-29T23:00:00")


def test_pilots_filter_by_firm_and_status(client: TestClient, unique_id: Callable[[str], str]) -> None:
    firm = unique_id("firm")
    client.post("/firms", json={"id": firm, "name": "Acme"})
    client.post("/pilots", json=_pilot(f"{firm}-a", firm, status="running"))
    client.post("/pilots", json=_pilot(f"{firm}-b", firm, status="completed"))
    assert [p["id"] for p in client.get("/pilots", params={"firm_id": firm}).json()] == [f"{firm}-a", f"{firm}-b"]
    running = client.get("/pilots", params={"firm_id": firm, "status": "running"}).json()
    assert [p["id"] for p in running] == [f"{firm}-a"]
    assert client.get("/pilots", params={"status": "paused"}).status_code == 422


def test_a_pilot_of_an_unknown_firm_is_refused_naming_the_firm(client: TestClient,
                                                              unique_id: Callable[[str], str]) -> None:
    answer = client.post("/pilots", json=_pilot(unique_id("pilot"), "no-such-firm"))
    assert answer.status_code == 422
    assert answer.json() == {"detail": "firm_id 'no-such-firm' names no firm; register the firm first"}


def test_a_duplicate_pilot_id_is_a_conflict(client: TestClient, pilot_id: str) -> None:
    firm = client.get(f"/pilots/{pilot_id}").json()["firm_id"]
    answer = client.post("/pilots", json=_pilot(pilot_id, firm))
    assert answer.status_code == 409
    assert pilot_id in answer.json()["detail"]


def test_stage_outside_1_to_4_and_naive_times_are_refused(client: TestClient, unique_id: Callable[[str], str]) -> None:
    firm = unique_id("firm")
    client.post("/firms", json={"id": firm, "name": "Acme"})
    bad_stage = client.post("/pilots", json=_pilot(unique_id("pilot"), firm, stage=5))
    assert bad_stage.status_code == 422
    assert bad_stage.json()["errors"][0]["field"] == "body.stage"
    naive = client.post("/pilots", json={**_pilot(unique_id("pilot"), firm), "starts_at": "2024-03-01T00:00:00"})
    assert naive.status_code == 422
    assert "timezone" in naive.json()["errors"][0]["message"]


def test_patching_stage_and_status_round_trips(client: TestClient, pilot_id: str) -> None:
    changed = client.patch(f"/pilots/{pilot_id}", json={"stage": 4, "status": "completed",
                                                        "ends_at": "2024-06-30T00:00:00Z"})
    assert changed.status_code == 200
    got = client.get(f"/pilots/{pilot_id}").json()
    assert (got["stage"], got["status"]) == (4, "completed")
    assert got["ends_at"].startswith("2024-06-30T00:00:00")


def test_an_end_before_the_start_is_refused_with_the_rule(client: TestClient, pilot_id: str) -> None:
    answer = client.patch(f"/pilots/{pilot_id}", json={"ends_at": "2023-12-31T00:00:00Z"})
    assert answer.status_code == 422
    assert answer.json() == {"detail": f"pilot {pilot_id!r}: ends_at must be after starts_at"}


def test_the_firm_of_a_pilot_cannot_be_patched(client: TestClient, pilot_id: str) -> None:
    answer = client.patch(f"/pilots/{pilot_id}", json={"firm_id": "other"})
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "body.firm_id"


def test_unknown_pilot_ids_are_404(client: TestClient) -> None:
    assert client.get("/pilots/nope").json() == {"detail": "no pilot with id 'nope'"}
    assert client.patch("/pilots/nope", json={"stage": 2}).status_code == 404
    assert client.delete("/pilots/nope").status_code == 404
