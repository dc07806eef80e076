"""Pilots: time-boxed deployments of a firm at a site, at a living-lab stage 1-4."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.database import Db
from api.routes import ListLimit, ListOffset
from api.schemas import PilotCreate, PilotOut, PilotStatus, PilotUpdate, Problem
from store import registry

router = APIRouter(prefix="/pilots", tags=["pilots"],
                   responses={404: {"model": Problem}, 422: {"model": Problem}})


@router.post("", status_code=201, response_model=PilotOut, responses={409: {"model": Problem}},
             summary="Register a pilot")
def create_pilot(body: PilotCreate, conn: Db) -> registry.Pilot:
    """409 if the id is taken; 422 if `firm_id` names no firm or `ends_at` is not after `starts_at`."""
    return registry.create(conn, registry.PILOTS, body.model_dump(exclude_unset=True))


@router.get("", response_model=list[PilotOut], summary="List pilots, optionally of one firm or status")
def list_pilots(conn: Db, firm_id: Annotated[str | None, Query()] = None,
                status: Annotated[PilotStatus | None, Query()] = None,
                limit: ListLimit = 100, offset: ListOffset = 0) -> list[registry.Pilot]:
    return registry.list_rows(conn, registry.PILOTS, {"firm_id": firm_id, "status": status},
                              limit=limit, offset=offset)


@router.get("/{pilot_id}", response_model=PilotOut, summary="Get a pilot")
def get_pilot(pilot_id: str, conn: Db) -> registry.Pilot:
    return registry.get(conn, registry.PILOTS, pilot_id)


@router.patch("/{pilot_id}", response_model=PilotOut,
              summary="Change a pilot's name, site, stage, dates or status")
def update_pilot(pilot_id: str, body: PilotUpdate, conn: Db) -> registry.Pilot:
    """The firm is fixed. 422 if the change leaves `ends_at` not after `starts_at`."""
    return registry.update(conn, registry.PILOTS, pilot_id, body.model_dump(exclude_unset=True))


@router.delete("/{pilot_id}", status_code=204, responses={409: {"model": Problem}}, summary="Delete a pilot")
def delete_pilot(pilot_id: str, conn: Db) -> Response:
    """Only a pilot without gateways and devices can be deleted; mark it `cancelled` instead."""
    registry.delete(conn, registry.PILOTS, pilot_id)
    return Response(status_code=204)

