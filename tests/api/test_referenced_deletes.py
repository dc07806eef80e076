"""Deleting what others still reference is refused, saying what references it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from fastapi.testclient import TestClient


def test_a_firm_with_pilots_cannot_be_deleted(client: TestClient, pilot_id: str) -> None:
    firm = client.get(f"/pilots/{pilot_id}").json()["firm_id"]
    answer = client.delete(f"/firms/{firm}")
    assert answer.status_code == 409
    assert answer.json() == {"detail": f"firm {firm!r} is referenced by 1 pilots; delete or reassign them first"}
    assert client.get(f"/firms/{firm}").status_code == 200


def test_a_pilot_with_gateways_and_devices_cannot_be_deleted(client: TestClient, pilot_id: str,
                                                             make_device: Callable[..., str],
                                                             unique_id: Callable[[str], str]) -> None:
    client.post("/gateways", json={"id": unique_id("gw"), "pilot_id": pilot_id, "protocol": "wifi"})
    make_device()
    make_device()
    answer = client.delete(f"/pilots/{pilot_id}")
    assert answer.status_code == 409
    assert "is referenced by 1 gateways and 2 devices" in answer.json()["detail"]


def test_a_gateway_that_devices_use_cannot_be_deleted(client: TestClient, pilot_id: str,
                                                      make_device: Callable[..., str],
                                                      unique_id: Callable[[str], str]) -> None:
    gw = unique_id("gw")
    client.post("/gateways", json={"id": gw, "pilot_id": pilot_id, "protocol": "lorawan"})
    make_device(gateway_id=gw)
    answer = client.delete(f"/gateways/{gw}")
    assert answer.status_code == 409
    assert "referenced by 1 devices" in answer.json()["detail"]


def test_a_device_with_telemetry_is_decommissioned_not_deleted(client: TestClient, make_device: Callable[..., str],
                                                               insert_rows: Callable[..., None]) -> None:
    dev = make_device()
    insert_rows(dev, [(datetime(2024, 5, 1, tzinfo=UTC), {"temperature_c": 20.0})])
    answer = client.delete(f"/devices/{dev}")
    assert answer.status_code == 409
    assert answer.json()["detail"] == (f"device {dev!r} is referenced by 1 telemetry rows; "
                                       "decommission it instead")


def test_a_pilot_emptied_of_devices_can_then_be_deleted(client: TestClient, pilot_id: str,
                                                       make_device: Callable[..., str]) -> None:
    dev = make_device()
    assert client.delete(f"/devices/{dev}").status_code == 204
    assert client.delete(f"/pilots/{pilot_id}").status_code == 204
    assert client.get(f"/pilots/{pilot_id}").status_code == 404
