"""Device profiles: a device model's codecs and measurement mapping, versioned (devices.profiles).

Ownership: a profile belongs to a firm, or is public (made by an admin, no firm). A firm or
pilot_manager key sees its firm's profiles and the public ones, creates and changes only its
firm's; another firm's profile answers as one that does not exist. Only an admin makes or changes
a public profile. A device may use its own firm's profiles and the public ones.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from access.api_keys import Principal
from access.policy import SCOPED, ApiRole
from api.database import Db
from api.routes import ListLimit, ListOffset
from api.schemas import (
    DeviceOut,
    DeviceProfileCreate,
    DeviceProfileOut,
    DeviceProfileRef,
    DeviceProfileVersionOut,
    Problem,
)
from devices.kinds import DeviceKind
from devices.profile_codecs import check_codecs, js_codec_limits
from devices.profiles import ProfileDefinition
from store import profiles

router = APIRouter(tags=["device profiles"], responses={404: {"model": Problem}, 422: {"model": Problem}})

PUBLIC_IS_ADMINS = "a public device profile (no firm) is made and changed only with an admin key"


def _principal(request: Request) -> Principal | None:
    return getattr(request.state, "principal", None)


def _codecs_load(definition: ProfileDefinition, request: Request) -> ProfileDefinition:
    """`definition`, once each JavaScript codec of it has loaded under ingest's limits (422 otherwise)."""
    check_codecs(definition, js_codec_limits(request.app.state.settings))
    return definition


def _out(stored: profiles.StoredProfile) -> DeviceProfileOut:
    return DeviceProfileOut.model_validate(stored, from_attributes=True)


@router.post("/device-profiles", status_code=201, response_model=DeviceProfileOut,
             responses={403: {"model": Problem}, 409: {"model": Problem}}, summary="Create a device profile (version 1)")
def create_profile(body: DeviceProfileCreate, conn: Db, request: Request) -> DeviceProfileOut:
    """A firm key's profile is its firm's (`firm_id` may be left out); a pilot_manager or
    provisioning key names the firm; an admin key leaving `firm_id` out makes a public profile.
    409 if the id is taken; 422 if the definition breaks a rule (each problem named), or a
    JavaScript codec does not load: a syntax error, no entry point (the engine's message, the fPort)."""
    principal = _principal(request)
    firm_id = body.firm_id
    if firm_id is None and principal is not None and principal.role is ApiRole.FIRM:
        firm_id = principal.firm_id
    if firm_id is None and principal is not None and principal.role is not ApiRole.ADMIN:
        raise HTTPException(422 if principal.role in SCOPED else 403,
                            f"name the owning firm (firm_id): {PUBLIC_IS_ADMINS}")
    return _out(profiles.create(conn, body.id, firm_id, _codecs_load(body.definition(), request)))


@router.get("/device-profiles", response_model=list[DeviceProfileOut],
            summary="List device profiles (current versions), optionally of one vendor, model or kind")
def list_profiles(conn: Db, firm_id: Annotated[str | None, Query(
                      description="the profiles this firm may use: its own and the public ones")] = None,
                  vendor: Annotated[str | None, Query(description="case-insensitive")] = None,
                  model: Annotated[str | None, Query(description="case-insensitive")] = None,
                  kind: Annotated[DeviceKind | None, Query()] = None,
                  limit: ListLimit = 100, offset: ListOffset = 0) -> list[DeviceProfileOut]:
    rows = profiles.list_profiles(conn, usable_by_firm=firm_id, vendor=vendor, model=model,
                                  kind=kind.value if kind else None, limit=limit, offset=offset)
    return [_out(row) for row in rows]


@router.get("/device-profiles/{profile_id}", response_model=DeviceProfileOut,
            summary="Get a device profile: its current version, or ?version=N")
def get_profile(profile_id: str, conn: Db,
                version: Annotated[int | None, Query(ge=1, description="an earlier version")] = None) -> DeviceProfileOut:
    return _out(profiles.get(conn, profile_id, version))


@router.put("/device-profiles/{profile_id}", response_model=DeviceProfileOut, responses={403: {"model": Problem}},
            summary="Change a device profile: the whole definition becomes its next version")
def change_profile(profile_id: str, body: ProfileDefinition, conn: Db, request: Request) -> DeviceProfileOut:
    """Earlier versions are kept unchanged (readings name the version that decoded them). The kind
    cannot change (422); a JavaScript codec must load, as on create (422). 403 for a public profile
    unless the key is an admin's."""
    principal = _principal(request)
    current = profiles.get(conn, profile_id)
    if current.firm_id is None and principal is not None and principal.role is not ApiRole.ADMIN:
        raise HTTPException(403, PUBLIC_IS_ADMINS)
    return _out(profiles.new_version(conn, profile_id, _codecs_load(body, request)))


@router.get("/device-profiles/{profile_id}/versions", response_model=list[DeviceProfileVersionOut],
            summary="Every version of a device profile, oldest first")
def profile_versions(profile_id: str, conn: Db) -> list[profiles.ProfileVersionSummary]:
    return profiles.versions(conn, profile_id)


@router.put("/devices/{device_id}/profile", response_model=DeviceOut, tags=["devices"],
            summary="Set or clear the device profile a device's payloads are decoded by")
def set_device_profile(device_id: str, body: DeviceProfileRef, conn: Db) -> DeviceOut:
    """422 if the profile names nothing the device's firm may use (another firm's profile reads as
    none), or is for another kind of device."""
    return DeviceOut.model_validate(profiles.assign(conn, device_id, body.profile_id))
