"""Gateways: the radio gateways (Wi-Fi, LoRaWAN, cellular) a pilot's devices report through."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from access import credentials
from api.database import Db
from api.routes import ListLimit, ListOffset
from api.routes.access import issue_credentials, push_to_broker
from api.schemas import (
    Decommission,
    GatewayChangedOut,
    GatewayCreate,
    GatewayOut,
    GatewayRegisteredOut,
    GatewayUpdate,
    Problem,
)
from store import registry

router = APIRouter(prefix="/gateways", tags=["gateways"],
                   responses={404: {"model": Problem}, 422: {"model": Problem}})


@router.post("", status_code=201, response_model=GatewayRegisteredOut, responses={409: {"model": Problem}},
             summary="Register a gateway and issue its MQTT credentials")
def create_gateway(body: GatewayCreate, conn: Db, request: Request) -> GatewayRegisteredOut:
    """The answer carries the gateway's broker account (username = gateway id) with a password
    shown only here. 409 if the id is taken; 422 if `pilot_id` names no pilot (or one the key may not see),
    or if the id begins with the client-id prefix reserved for pilotlab's services (`pilotlab-`)."""
    with conn.transaction():
        gateway = registry.create(conn, registry.GATEWAYS, body.model_dump(exclude_unset=True))
        issued = issue_credentials(conn, request, "gateway", gateway.id)
    return GatewayRegisteredOut(**GatewayOut.model_validate(gateway).model_dump(), credentials=issued)


@router.get("", response_model=list[GatewayOut], summary="List gateways, optionally of one pilot")
def list_gateways(conn: Db, pilot_id: Annotated[str | None, Query()] = None,
                  limit: ListLimit = 100, offset: ListOffset = 0) -> list[registry.Gateway]:
    return registry.list_rows(conn, registry.GATEWAYS, {"pilot_id": pilot_id}, limit=limit, offset=offset)


@router.get("/{gateway_id}", response_model=GatewayOut, summary="Get a gateway")
def get_gateway(gateway_id: str, conn: Db) -> registry.Gateway:
    return registry.get(conn, registry.GATEWAYS, gateway_id)


@router.patch("/{gateway_id}", response_model=GatewayOut, summary="Change a gateway's protocol or description")
def update_gateway(gateway_id: str, body: GatewayUpdate, conn: Db) -> registry.Gateway:
    return registry.update(conn, registry.GATEWAYS, gateway_id, body.model_dump(exclude_unset=True))


@router.post("/{gateway_id}/decommission", response_model=GatewayChangedOut, responses={409: {"model": Problem}},
             summary="Take a gateway out of service")
def decommission_gateway(gateway_id: str, body: Decommission, conn: Db, request: Request) -> GatewayChangedOut:
    """Records when (default now) and why; its broker credentials are revoked at once (it is
    disconnected). 409 if it already was."""
    with conn.transaction():
        retired = registry.decommission(conn, registry.GATEWAYS, gateway_id, body.reason, body.at)
        credentials.revoke_if_any(conn, gateway_id, "decommissioned")
        synced = push_to_broker(conn, request, f"decommissioning gateway {gateway_id!r}")
    return GatewayChangedOut(**GatewayOut.model_validate(retired).model_dump(), broker_synced=synced)


@router.delete("/{gateway_id}", status_code=204, responses={409: {"model": Problem}},
               summary="Delete a gateway")
def delete_gateway(gateway_id: str, conn: Db, request: Request) -> Response:
    """Only a gateway no device points at can be deleted. Its broker account goes too."""
    with conn.transaction():
        registry.delete(conn, registry.GATEWAYS, gateway_id)
        push_to_broker(conn, request, f"deleting gateway {gateway_id!r}")
    return Response(status_code=204)
