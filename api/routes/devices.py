"""Devices: registered smart switches, location trackers and environment sensors."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from access import credentials
from api.database import Db
from api.routes import ListLimit, ListOffset
from api.routes.access import issue_credentials, push_to_broker
from api.schemas import (
    Decommission,
    DeviceChangedOut,
    DeviceCreate,
    DeviceOut,
    DeviceRegisteredOut,
    DeviceUpdate,
    Problem,
)
from devices.kinds import DeviceKind
from store import registry

router = APIRouter(prefix="/devices", tags=["devices"],
                   responses={404: {"model": Problem}, 422: {"model": Problem}})


@router.post("", status_code=201, response_model=DeviceRegisteredOut, responses={409: {"model": Problem}},
             summary="Register a device and issue its MQTT credentials")
def create_device(body: DeviceCreate, conn: Db, request: Request) -> DeviceRegisteredOut:
    """The ingest accepts its messages within a second. The answer carries the device's broker
    account (username = device id) with a password shown only here; rotate it with
    `POST /devices/{id}/credentials`. 409 if the id is taken; 422 if `pilot_id` or `gateway_id`
    names nothing registered (or one the key may not see), or if the id begins with the client-id
    prefix reserved for pilotlab's services (`pilotlab-`), before anything is stored."""
    with conn.transaction():
        device = registry.create(conn, registry.DEVICES, body.model_dump(exclude_unset=True))
        issued = issue_credentials(conn, request, "device", device.id)
    return DeviceRegisteredOut(**DeviceOut.model_validate(device).model_dump(), credentials=issued)


@router.get("", response_model=list[DeviceOut], summary="List devices, optionally of one pilot or kind")
def list_devices(conn: Db, pilot_id: Annotated[str | None, Query()] = None,
                 kind: Annotated[DeviceKind | None, Query()] = None,
                 gateway_id: Annotated[str | None, Query()] = None,
                 limit: ListLimit = 100, offset: ListOffset = 0) -> list[registry.Device]:
    return registry.list_rows(conn, registry.DEVICES,
                              {"pilot_id": pilot_id, "kind": kind, "gateway_id": gateway_id},
                              limit=limit, offset=offset)


@router.get("/{device_id}", response_model=DeviceOut, summary="Get a device")
def get_device(device_id: str, conn: Db) -> registry.Device:
    return registry.get(conn, registry.DEVICES, device_id)


@router.patch("/{device_id}", response_model=DeviceChangedOut,
              summary="Change a device's connectivity, interval, gateway, model or commissioning time")
def update_device(device_id: str, body: DeviceUpdate, conn: Db, request: Request) -> DeviceChangedOut:
    """Kind and pilot cannot change: register a new device instead. A gateway change reaches the
    broker before the answer: the old gateway may no longer publish for the device, the new one may.
    422 if `gateway_id` names no gateway (or one the key may not see)."""
    with conn.transaction():
        device = registry.update(conn, registry.DEVICES, device_id, body.model_dump(exclude_unset=True))
        synced = push_to_broker(conn, request, f"the change to device {device_id!r}")
    return DeviceChangedOut(**DeviceOut.model_validate(device).model_dump(), broker_synced=synced)


@router.post("/{device_id}/decommission", response_model=DeviceChangedOut, responses={409: {"model": Problem}},
             summary="Take a device out of service")
def decommission_device(device_id: str, body: Decommission, conn: Db, request: Request) -> DeviceChangedOut:
    """Records when (default now) and why; from then on the ingest dead-letters its messages as
    `device_decommissioned`, its broker credentials are revoked and its gateway may no longer
    publish for it. 409 if it already was; 422 if `at` is before its commissioning."""
    with conn.transaction():
        retired = registry.decommission(conn, registry.DEVICES, device_id, body.reason, body.at)
        credentials.revoke_if_any(conn, device_id, "decommissioned")
        synced = push_to_broker(conn, request, f"decommissioning device {device_id!r}")
    return DeviceChangedOut(**DeviceOut.model_validate(retired).model_dump(), broker_synced=synced)


@router.delete("/{device_id}", status_code=204, responses={409: {"model": Problem}}, summary="Delete a device")
def delete_device(device_id: str, conn: Db, request: Request) -> Response:
    """Only a device that never sent telemetry can be deleted (a registration mistake); one with
    history is decommissioned instead, so reviewers keep its record. Its broker account goes too."""
    with conn.transaction():
        registry.delete(conn, registry.DEVICES, device_id)
        push_to_broker(conn, request, f"deleting device {device_id!r}")
    return Response(status_code=204)
