"""Gateways and devices: register in a pilot, filter, change, decommission."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from fastapi.testclient import TestClient


def test_a_gateway_round_trips_and_lists_by_pilot(client: TestClient, pilot_id: str,
                                                   unique_id: Callable[[str], str]) -> None:
    gw = unique_id("gw")
    created = client.post("/gateways", json={"id": gw, "pilot_id": pilot_id, "protocol": "lorawan",
                                             "description": "roof of city hall"})
    assert created.status_code == 201, created.text
    registered = created.json()
    issued = registered.pop("credentials")
    assert (issued["mqtt_username"], issued["kind"]) == (gw, "gateway")
    assert len(issued["mqtt_password"]) >= 32
    fetched = client.get(f"/gateways/{gw}").json()
    assert fetched == registered, "the secret is shown at registration only"
    assert [g["id"] for g in client.get("/gateways", params={"pilot_id": pilot_id}).json()] == [gw]
    changed = client.patch(f"/gateways/{gw}", json={"description": "moved to the library"}).json()
    assert (changed["description"], changed["protocol"]) == ("moved to the library", "lorawan")
    assert client.post("/gateways", json={"id": gw, "pilot_id": pilot_id, "protocol": "wifi"}).status_code == 409


def test_a_gateway_protocol_outside_the_vocabulary_is_refused(client: TestClient, pilot_id: str) -> None:
    answer = client.post("/gateways", json={"id": "gw-x", "pilot_id": pilot_id, "protocol": "zigbee"})
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "body.protocol"


def test_a_device_round_trips_with_its_gateway(client: TestClient, pilot_id: str,
                                               unique_id: Callable[[str], str]) -> None:
    gw, dev = unique_id("gw"), unique_id("dev")
    client.post("/gateways", json={"id": gw, "pilot_id": pilot_id, "protocol": "lorawan"})
    created = client.post("/devices", json={"id": dev, "kind": "location_tracker", "pilot_id": pilot_id,
                                            "connectivity": "lpwa", "reporting_interval_s": 300,
                                            "gateway_id": gw, "model": "TrackR 2"})
    assert created.status_code == 201, created.text
    registered = created.json()
    issued = registered.pop("credentials")
    assert (issued["mqtt_username"], issued["kind"]) == (dev, "device")
    assert len(issued["mqtt_password"]) >= 32
    got = client.get(f"/devices/{dev}").json()
    assert got == registered, "the secret is shown at registration only"
    assert (got["kind"], got["gateway_id"], got["reporting_interval_s"], got["decommissioned_at"]) == (
        "location_tracker", gw, 300, None)


def test_devices_filter_by_pilot_and_kind(client: TestClient, pilot_id: str,
                                          make_device: Callable[..., str]) -> None:
    sensor = make_device("env_sensor")
    switch = make_device("smart_switch")
    everything = client.get("/devices", params={"pilot_id": pilot_id}).json()
    assert sorted(d["id"] for d in everything) == sorted([sensor, switch])
    switches = client.get("/devices", params={"pilot_id": pilot_id, "kind": "smart_switch"}).json()
    assert [d["id"] for d in switches] == [switch]
    assert client.get("/devices", params={"kind": "toaster"}).status_code == 422


def test_a_device_naming_an_unknown_gateway_or_pilot_is_refused(client: TestClient, pilot_id: str,
                                                                 unique_id: Callable[[str], str]) -> None:
    body = {"id": unique_id("dev"), "kind": "env_sensor", "pilot_id": pilot_id, "connectivity": "wifi",
            "reporting_interval_s": 60}
    no_gateway = client.post("/devices", json={**body, "gateway_id": "gw-missing"})
    assert no_gateway.status_code == 422
    assert no_gateway.json()["detail"] == "gateway_id 'gw-missing' names no gateway; register the gateway first"
    no_pilot = client.post("/devices", json={**body, "pilot_id": "pilot-missing"})
    assert no_pilot.status_code == 422
    assert "pilot_id 'pilot-missing' names no pilot" in no_pilot.json()["detail"]


def test_a_duplicate_device_id_is_a_conflict(client: TestClient, make_device: Callable[..., str],
                                             pilot_id: str) -> None:
    dev = make_device()
    answer = client.post("/devices", json={"id": dev, "kind": "env_sensor", "pilot_id": pilot_id,
                                           "connectivity": "wifi", "reporting_interval_s": 60})
    assert answer.status_code == 409
    assert answer.json() == {"detail": f"device {dev!r} already exists"}


def test_device_validation_names_each_bad_field(client: TestClient, pilot_id: str) -> None:
    answer = client.post("/devices", json={"id": "d1", "kind": "toaster", "pilot_id": pilot_id,
                                           "connectivity": "wifi", "reporting_interval_s": 0})
    assert answer.status_code == 422
    assert {e["field"] for e in answer.json()["errors"]} == {"body.kind", "body.reporting_interval_s"}


def test_patch_changes_the_interval_but_not_the_kind(client: TestClient, make_device: Callable[..., str]) -> None:
    dev = make_device(interval_s=60)
    changed = client.patch(f"/devices/{dev}", json={"reporting_interval_s": 900, "connectivity": "cellular"})
    assert changed.status_code == 200
    assert (changed.json()["reporting_interval_s"], changed.json()["connectivity"]) == (900, "cellular")
    assert client.patch(f"/devices/{dev}", json={"kind": "smart_switch"}).status_code == 422
    assert client.get(f"/devices/{dev}").json()["kind"] == "env_sensor"


def test_decommissioning_records_when_and_why_once(client: TestClient, make_device: Callable[..., str]) -> None:
    dev = make_device()
    done = client.post(f"/devices/{dev}/decommission", json={"reason": "stolen", "at": "2024-05-01T12:00:00Z"})
    assert done.status_code == 200, done.text
    assert done.json()["decommission_reason"] == "stolen"
    assert done.json()["decommissioned_at"].startswith("2024-05-01T12:00:00")
    again = client.post(f"/devices/{dev}/decommission", json={"reason": "stolen"})
    assert again.status_code == 409
    assert "already decommissioned" in again.json()["detail"]


def test_decommissioning_before_commissioning_is_refused(client: TestClient, make_device: Callable[..., str]) -> None:
    dev = make_device()  # commissioned 2024-01-01
    answer = client.post(f"/devices/{dev}/decommission", json={"reason": "typo", "at": "2023-06-01T00:00:00Z"})
    assert answer.status_code == 422
    assert "before its commissioning" in answer.json()["detail"]


def test_decommissioning_needs_a_reason(client: TestClient, make_device: Callable[..., str]) -> None:
    answer = client.post(f"/devices/{make_device()}/decommission", json={})
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "body.reason"


def test_a_gateway_is_decommissioned_with_a_default_time_of_now(client: TestClient, pilot_id: str,
                                                                unique_id: Callable[[str], str]) -> None:
    gw = unique_id("gw")
    client.post("/gateways", json={"id": gw, "pilot_id": pilot_id, "protocol": "cellular"})
    done = client.post(f"/gateways/{gw}/decommission", json={"reason": "contract ended"})
    assert done.status_code == 200
    assert done.json()["decommissioned_at"] is not None
    assert client.get(f"/gateways/{gw}").json()["decommission_reason"] == "contract ended"


def test_unknown_device_and_gateway_ids_are_404(client: TestClient) -> None:
    assert client.get("/devices/nope").json() == {"detail": "no device with id 'nope'"}
    assert client.patch("/devices/nope", json={"model": "x"}).status_code == 404
    assert client.post("/devices/nope/decommission", json={"reason": "x"}).status_code == 404
    assert client.get("/gateways/nope").status_code == 404
    assert client.post("/gateways/nope/decommission", json={"reason": "x"}).status_code == 404


def test_a_device_or_gateway_id_under_the_reserved_client_id_prefix_is_refused_before_anything_is_stored(
        client: TestClient, db: psycopg.Connection, pilot_id: str, unique_id: Callable[[str], str]) -> None:
    gw, dev = unique_id("pilotlab-ingest-gw"), unique_id("pilotlab-ingest-s1")
    answers = {
        gw: client.post("/gateways", json={"id": gw, "pilot_id": pilot_id, "protocol": "wifi"}),
        dev: client.post("/devices", json={"id": dev, "kind": "env_sensor", "pilot_id": pilot_id,
                                           "connectivity": "wifi", "reporting_interval_s": 60}),
    }
    for object_id, answer in answers.items():
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"] == (
            f"invalid request: body.id: {object_id!r} begins with 'pilotlab-', the MQTT client-id prefix reserved "
            "for pilotlab's own services (ingest workers); choose an id without it")
        assert [e["field"] for e in answer.json()["errors"]] == ["body.id"]
    for table in ("gateway", "device", "broker_account"):
        key = "username" if table == "broker_account" else "id"
        stored = db.execute(f"SELECT count(*) FROM {table} WHERE {key} = ANY(%s)", (list(answers),)).fetchone()
        assert stored == (0,), f"{table} kept a row for a refused id"
    assert client.get(f"/gateways/{gw}").status_code == 404
    assert client.get(f"/devices/{dev}").status_code == 404
