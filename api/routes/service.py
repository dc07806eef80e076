"""`GET /health`: is the API up and its database reachable and migrated?"""

from __future__ import annotations

import logging

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from psycopg_pool import ConnectionPool, PoolTimeout

from api.schemas import ServiceHealth
from store.migrate import current_version
from store.timeseries import read_capabilities

router = APIRouter(tags=["service"])
log = logging.getLogger(__name__)

PROBE_WAIT_S = 2.0


@router.get("/health", response_model=ServiceHealth, summary="Service health",
            responses={503: {"model": ServiceHealth, "description": "the database is unreachable"}})
def service_health(request: Request) -> ServiceHealth | JSONResponse:
    """200 with the schema version and whether TimescaleDB is in use; 503 if the database is down."""
    pool: ConnectionPool = request.app.state.pool
    try:
        with pool.connection(timeout=PROBE_WAIT_S) as conn:
            version = current_version(conn)
            caps = read_capabilities(conn)
    except (psycopg.Error, PoolTimeout) as exc:
        log.warning("health probe failed: %s", exc)
        down = ServiceHealth(ok=False, database=False, schema_version=None, timescaledb=None)
        return JSONResponse(status_code=503, content=down.model_dump())
    return ServiceHealth(ok=True, database=True, schema_version=version, timescaledb=caps.timescaledb)
