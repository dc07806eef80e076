"""Broker credentials of devices and gateways, and API keys. Secrets appear once, in the answer
that creates them; every other answer shows only ids, roles and timestamps."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from access import api_keys, credentials, sync
from access.policy import ApiRole
from api.database import Db
from api.schemas import CredentialOut, IssuedCredentialOut, Problem

router = APIRouter(tags=["access"], responses={404: {"model": Problem}, 409: {"model": Problem}})


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


def issue_credentials(conn: Db, request: Request, kind: Literal["device", "gateway"], object_id: str) -> IssuedCredentialOut:
    """A new broker account for a device or gateway, pushed to the broker; the secret is in this answer only."""
    issued = credentials.issue(conn, kind, object_id)
    report = sync.push(conn, request.app.state.settings, {object_id: issued.secret})
    out = _out(issued.account, None if report is None else True)
    return IssuedCredentialOut(**out.model_dump(), mqtt_username=object_id, mqtt_password=issued.secret)


def _revoke(conn: Db, request: Request, object_id: str) -> CredentialOut:
    account = credentials.revoke(conn, object_id, "revoked through the API")
    report = sync.push(conn, request.app.state.settings)
    return _out(account, None if report is None else True)


@router.post("/devices/{device_id}/credentials", status_code=201, response_model=IssuedCredentialOut,
             summary="Issue or rotate a device's broker credentials (the secret is shown once)")
def issue_device_credentials(device_id: str, conn: Db, request: Request) -> IssuedCredentialOut:
    """Username = the device id. A new secret replaces the old one at once on the broker."""
    return issue_credentials(conn, request, "device", device_id)


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
    return issue_credentials(conn, request, "gateway", gateway_id)


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
