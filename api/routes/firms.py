"""Firms: the companies that run pilots."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.database import Db
from api.routes import ListLimit, ListOffset
from api.schemas import FirmCreate, FirmOut, FirmUpdate, Problem
from store import registry

router = APIRouter(prefix="/firms", tags=["firms"],
                   responses={404: {"model": Problem}, 422: {"model": Problem}})


@router.post("", status_code=201, response_model=FirmOut, responses={409: {"model": Problem}},
             summary="Register a firm")
def create_firm(body: FirmCreate, conn: Db) -> registry.Firm:
    """409 if the id is taken."""
    return registry.create(conn, registry.FIRMS, body.model_dump(exclude_unset=True))


@router.get("", response_model=list[FirmOut], summary="List firms")
def list_firms(conn: Db, limit: ListLimit = 100, offset: ListOffset = 0) -> list[registry.Firm]:
    return registry.list_rows(conn, registry.FIRMS, {}, limit=limit, offset=offset)


@router.get("/{firm_id}", response_model=FirmOut, summary="Get a firm")
def get_firm(firm_id: str, conn: Db) -> registry.Firm:
    return registry.get(conn, registry.FIRMS, firm_id)


@router.patch("/{firm_id}", response_model=FirmOut, summary="Change a firm's name or contact")
def update_firm(firm_id: str, body: FirmUpdate, conn: Db) -> registry.Firm:
    return registry.update(conn, registry.FIRMS, firm_id, body.model_dump(exclude_unset=True))


@router.delete("/{firm_id}", status_code=204, responses={409: {"model": Problem}}, summary="Delete a firm")
def delete_firm(firm_id: str, conn: Db) -> Response:
    """Only a firm without pilots can be deleted (409 says how many it still has)."""
    registry.delete(conn, registry.FIRMS, firm_id)
    return Response(status_code=204)
