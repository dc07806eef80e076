"""`GET /health`: is the API up and its database reachable and migrated? On TimescaleDB, also
how its background jobs (compression, retention, the hourly aggregate's refresh) and chunk
compression are doing, failures included, so an operator sees them without the server log.

The probe runs on a connection of its own (api.database.HealthProbe), never on the request pool:
a pool busy with slow requests is not a database that is down.
"""

from __future__ import annotations

import dataclasses
import logging

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.database import HealthProbe
from api.schemas import CompressionOut, ServiceHealth, TimescaleHealth, TimescaleJobOut
from store.timeseries import TimeseriesHealth

router = APIRouter(tags=["service"])
log = logging.getLogger(__name__)


@router.get("/health", response_model=ServiceHealth, summary="Service health",
            responses={503: {"model": ServiceHealth, "description": "the database is unreachable"}})
def service_health(request: Request) -> ServiceHealth | JSONResponse:
    """200 with the schema version, whether TimescaleDB is in use and, if so, its jobs and
    compression; 503 if the database is down."""
    probe: HealthProbe = request.app.state.health_probe
    try:
        version, timescaledb, timeseries = probe.check()
    except psycopg.Error as exc:
        log.warning("health probe failed: %s", exc)
        down = ServiceHealth(ok=False, database=False, schema_version=None, timescaledb=None)
        return JSONResponse(status_code=503, content=down.model_dump())
    return ServiceHealth(ok=True, database=True, schema_version=version, timescaledb=timescaledb,
                         timescaledb_health=_timescale_health(timeseries) if timeseries else None)


def _timescale_health(health: TimeseriesHealth) -> TimescaleHealth:
    jobs = [TimescaleJobOut(job_id=j.job_id, name=j.proc_name, target=j.target,
                            schedule_interval_s=j.schedule_interval.total_seconds(), last_run_status=j.last_run_status,
                            last_run_started_at=j.last_run_started_at, last_successful_finish=j.last_successful_finish,
                            next_start=j.next_start, total_runs=j.total_runs, total_failures=j.total_failures,
                            last_error=j.last_error, last_error_at=j.last_error_at, known_cause=j.known_cause)
            for j in health.jobs]
    compression = [CompressionOut(**dataclasses.asdict(c)) for c in health.compression]
    return TimescaleHealth(failing_jobs=health.failing_jobs, jobs=jobs, compression=compression)
