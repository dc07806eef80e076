"""GET /network-server-applications: registered applications listed, scoped like the rest (was 405)."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from fastapi.testclient import TestClient

from access import api_keys


def test_registered_applications_are_listed_by_pilot_and_network_server(
        client: TestClient, db: psycopg.Connection, pilot_id: str, unique_id: Callable[[str], str]) -> None:
    firm = db.execute("SELECT firm_id FROM pilot WHERE id = %s", (pilot_id,)).fetchone()[0]  # type: ignore[index]
    other = unique_id("other-pilot")
    assert client.post("/pilots", json={"id": other, "firm_id": firm, "name": "n", "site": "s",
                                        "starts_at": "2024-01-01T00:00:00Z"}).status_code == 201
    registered = [("chirpstack", unique_id("cs-app"), pilot_id), ("tts", f"{unique_id('app')}@ttn", pilot_id),
                  ("chirpstack", unique_id("cs-other"), other)]
    for ns, app, pilot in registered:
        body = {"network_server": ns, "application_id": app, "pilot_id": pilot}
        assert client.post("/network-server-applications", json=body).status_code == 201
    mine = client.get("/network-server-applications", params={"pilot_id": pilot_id}).json()
    assert [(a["network_server"], a["application_id"], a["pilot_id"]) for a in mine] == sorted(registered[:2])
    assert all(a["created_at"] for a in mine)
    tts = client.get("/network-server-applications", params={"pilot_id": pilot_id, "network_server": "tts"}).json()
    assert [a["application_id"] for a in tts] == [registered[1][1]]
    everything = {a["application_id"] for a in client.get("/network-server-applications").json()}
    assert {app for _, app, _ in registered} <= everything

    manager = {"Authorization": f"Bearer {api_keys.create(db, 'pilot_manager', pilot_ids=[other]).token}"}
    assert client.get("/network-server-applications", headers=manager).status_code == 403  # lists within its pilots
    assert client.get("/network-server-applications", params={"pilot_id": pilot_id}, headers=manager).status_code == 404
    scoped = client.get("/network-server-applications", params={"pilot_id": other}, headers=manager).json()
    assert [a["application_id"] for a in scoped] == [registered[2][1]]
