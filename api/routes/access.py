"""Broker credentials of devices and gateways, and API keys. Secrets appear once, in the answer
that creates them; every other answer shows only ids, roles and timestamps."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Literal

import psycopg
from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from access import api_keys, credentials, sync
from access.dynsec import DynsecError
from access.policy import ApiRole
from api.database import Db
from api.schemas import CredentialOut, IssuedCredentialOut, Problem
from pilotlab.errors import ServiceUnavailable

router = APIRouter(tags=["access"], responses={404: {"model": Problem}, 409: {"model": Problem}})
log = logging.getLogger(__name__)


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: ApiRole
    firm_id: str | None = None
    pilot_ids: list[str] = Field(default_factory=list)
    name: str = Field(default="", max_length=200)


class ApiKeyOut(BaseModel):
    id: str
    role: str
    firm_id: str | None
    pilot_ids: list[str]
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class IssuedApiKeyOut(ApiKeyOut):
    key: str = Field(description="shown only in this answer; pilotlab keeps a SHA-256 of it")


def _out(account: credentials.BrokerAccount, synced: bool | None) -> CredentialOut:
    return CredentialOut(username=account.username, kind=account.kind, created_at=account.created_at,
                         rotated_at=account.rotated_at, revoked_at=account.revoked_at,
                         revoke_reason=account.revoke_reason, broker_synced=synced)


def push_to_broker(conn: psycopg.Connection, request: Request, change: str,
                   secrets: dict[str, str] | None = None) -> bool | None:
    """Make the broker's accounts and ACLs equal to the registry now, inside the caller's
    transaction, after a change to what an account may publish (a device attached to or detached
    from a gateway, decommissioned or deleted; a gateway decommissioned or deleted).

    True: the broker has it. None: no broker admin account is configured, logged as a warning (the
    broker keeps the old ACLs, e.g. a detached gateway still speaks for the device, until
    `pilotlab broker sync`). A broker that cannot be told answers 503 and the caller's transaction
    rolls back, so the registry never says what the broker does not enforce."""
    try:
        report = sync.push(conn, request.app.state.settings, secrets)
    except (ServiceUnavailable, DynsecError) as exc:
        raise HTTPException(503, f"{change} was not made: the broker could not be told ({exc}); try again") from None
    if report is None:
        log.warning("%s: no broker admin account is configured (PILOTLAB_BROKER_ADMIN_USERNAME / _PASSWORD), so "
                    "the broker keeps its previous ACLs until `pilotlab broker sync`", change)
        return None
    return True


def issue_credentials(conn: Db, request: Request, kind: Literal["device", "gateway"], object_id: str) -> IssuedCredentialOut:
    """A new broker account for a device or gateway, pushed to the broker; the secret is in this answer only.
    Call inside a transaction: a broker that cannot be told rolls the new secret back."""
    issued = credentials.issue(conn, kind, object_id)
    synced = push_to_broker(conn, request, f"the credentials of {kind} {object_id!r}", {object_id: issued.secret})
    out = _out(issued.account, synced)
    return IssuedCredentialOut(**out.model_dump(), mqtt_username=object_id, mqtt_password=issued.secret)


def _issue(conn: Db, request: Request, kind: Literal["device", "gateway"], object_id: str) -> IssuedCredentialOut:
    with conn.transaction():
        return issue_credentials(conn, request, kind, object_id)


def _revoke(conn: Db, request: Request, object_id: str) -> CredentialOut:
    with conn.transaction():
        account = credentials.revoke(conn, object_id, "revoked through the API")
        synced = push_to_broker(conn, request, f"revoking the credentials of {object_id!r}")
    return _out(account, synced)


@router.post("/devices/{device_id}/credentials", status_code=201, response_model=IssuedCredentialOut,
             summary="Issue or rotate a device's broker credentials (the secret is shown once)")
def issue_device_credentials(device_id: str, conn: Db, request: Request) -> IssuedCredentialOut:
    """Username = the device id. A new secret replaces the old one at once on the broker."""
    return _issue(conn, request, "device", device_id)


@router.get("/devices/{device_id}/credentials", response_model=CredentialOut, summary="A device's broker account")
def device_credentials(device_id: str, conn: Db) -> CredentialOut:
    return _out(credentials.get_account(conn, device_id), None)


@router.delete("/devices/{device_id}/credentials", response_model=CredentialOut,
               summary="Revoke a device's broker credentials (it is disconnected)")
def revoke_device_credentials(device_id: str, conn: Db, request: Request) -> CredentialOut:
    return _revoke(conn, request, device_id)


@router.post("/gateways/{gateway_id}/credentials", status_code=201, response_model=IssuedCredentialOut,
             summary="Issue or rotate a gateway's broker credentials (the secret is shown once)")
def issue_gateway_credentials(gateway_id: str, conn: Db, request: Request) -> IssuedCredentialOut:
    return _issue(conn, request, "gateway", gateway_id)


@router.get("/gateways/{gateway_id}/credentials", response_model=CredentialOut, summary="A gateway's broker account")
def gateway_credentials(gateway_id: str, conn: Db) -> CredentialOut:
    return _out(credentials.get_account(conn, gateway_id), None)


@router.delete("/gateways/{gateway_id}/credentials", response_model=CredentialOut,
               summary="Revoke a gateway's broker credentials (it is disconnected)")
def revoke_gateway_credentials(gateway_id: str, conn: Db, request: Request) -> CredentialOut:
    return _revoke(conn, request, gateway_id)


@router.post("/api-keys", status_code=201, response_model=IssuedApiKeyOut, summary="Create an API key (shown once)")
def create_api_key(body: ApiKeyIn, conn: Db) -> IssuedApiKeyOut:
    """firm keys need `firm_id`, pilot_manager keys `pilot_ids`; 409 otherwise."""
    issued = api_keys.create(conn, body.role, firm_id=body.firm_id, pilot_ids=body.pilot_ids, name=body.name)
    return IssuedApiKeyOut(**vars(issued.key), key=issued.token)


@router.get("/api-keys", response_model=list[ApiKeyOut], summary="List API keys (never their secrets)")
def list_api_keys(conn: Db) -> list[ApiKeyOut]:
    return [ApiKeyOut(**vars(k)) for k in api_keys.list_keys(conn)]


@router.delete("/api-keys/{key_id}", status_code=204, summary="Revoke an API key")
def revoke_api_key(key_id: str, conn: Db) -> Response:
    api_keys.revoke(conn, key_id)
    return Response(status_code=204)
