"""`GET /health`: is the API up and its database reachable and migrated?

The probe runs on a connection of its own (api.database.HealthProbe), never on the request pool:
a pool busy with slow requests is not a database that is down.
"""

from __future__ import annotations

import logging

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.database import HealthProbe
from api.schemas import ServiceHealth

router = APIRouter(tags=["service"])
log = logging.getLogger(__name__)


@router.get("/health", response_model=ServiceHealth, summary="Service health",
            responses={503: {"model": ServiceHealth, "description": "the database is unreachable"}})
def service_health(request: Request) -> ServiceHealth | JSONResponse:
    """200 with the schema version and whether TimescaleDB is in use; 503 if the database is down."""
    probe: HealthProbe = request.app.state.health_probe
    try:
        version, timescaledb = probe.check()
    except psycopg.Error as exc:
        log.warning("health probe failed: %s", exc)
        down = ServiceHealth(ok=False, database=False, schema_version=None, timescaledb=None)
        return JSONResponse(status_code=503, content=down.model_dump())
    return ServiceHealth(ok=True, database=True, schema_version=version, timescaledb=timescaledb)
