"""The FastAPI application: routes, error mapping, and the connection pool's lifetime."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from psycopg_pool import ConnectionPool

from api import errors, metrics
from api.database import SCORING_SLOTS, HealthProbe, open_request_pool
from api.routes import dead_letters, devices, firms, gateways, health, links, pilots, service, telemetry
from pilotlab import __version__
from pilotlab.settings import Settings
from store.timeseries import read_capabilities

DESCRIPTION = """
Registry, telemetry and health of city IoT living-lab pilots.

* **Registry**: firms run pilots; a pilot has gateways and devices. Ids are 1-64 of `A-Z a-z 0-9 _ . -`.
  Devices and gateways are *decommissioned*, not deleted, once they have history.
* **Telemetry**: raw messages or per-bucket aggregates of one device over a time range.
* **Health**: a device is online while its last message arrived within 3 × its declared reporting interval.
* **Dead letters**: messages the ingest could not store, with the reason.

Every error answers `{"detail": "..."}` saying what to fix.
"""

TAGS = [
    {"name": "firms", "description": "Companies that run pilots."},
    {"name": "pilots", "description": "Time-boxed deployments at a site, at a living-lab stage 1-4."},
    {"name": "gateways", "description": "Radio gateways a pilot's devices report through."},
    {"name": "devices", "description": "Registered devices: kind, connectivity, declared reporting interval."},
    {"name": "telemetry", "description": "Stored messages of a device."},
    {"name": "health", "description": "Is each device reporting as declared?"},
    {"name": "links", "description": "LoRaWAN DevEUIs and network-server applications, uplink loss and "
                                     "receptions, gateway health."},
    {"name": "dead letters", "description": "Messages refused by the ingest, with the reason."},
    {"name": "device profiles", "description": "Device models: codecs per fPort and the mapping of their output to "
                                               "pilotlab's measurements; a change makes a new version."},
    {"name": "contract", "description": "The MQTT contract v1 as JSON Schema, for firmware makers (no key needed)."},
    {"name": "service", "description": "Liveness of the API and its database."},
    {"name": "access", "description": "Broker credentials of devices and gateways, and API keys (secrets shown once)."},
    {"name": "conformance", "description": "A device checked against the contract and its profile before a pilot: "
                                           "runs and their signed reports."},
    {"name": "matching", "description": "A city department's requirements and the firms whose signed records meet them."},
    {"name": "commands", "description": "Switch a smart switch on or off over MQTT or a LoRaWAN downlink, and follow "
                                        "the command to its acknowledgement or expiry."},
]


def create_app(settings: Settings, *, pool: ConnectionPool | None = None) -> FastAPI:
    """The API app. It opens its request pool on `settings.database_url` at startup (or adopts
    `pool`, already open: api.database.open_request_pool) and the /health probe's own connection,
    and closes both at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = pool or open_request_pool(settings)
        app.state.health_probe = HealthProbe(settings.require_database_url())
        app.state.scoring_slots = asyncio.Semaphore(SCORING_SLOTS)
        try:
            with app.state.pool.connection() as conn:
                app.state.capabilities = read_capabilities(conn)
            yield
        finally:
            app.state.health_probe.close()
            app.state.pool.close()

    from fastapi import Depends

    from api import auth, limits  # API keys and roles, request-body limit (issue 6)
    from api.routes import access

    app = FastAPI(title="pilotlab", version=__version__, description=DESCRIPTION, openapi_tags=TAGS, lifespan=lifespan,
                  dependencies=[Depends(auth.authorize)], docs_url=None, redoc_url=None)  # docs: api.pages.docs, offline
    app.state.settings = settings
    errors.install(app)
    metrics.install(app)
    limits.install(app, settings.api_max_body_bytes)
    from api.routes import conformance, contract, profiles  # profiles, contract schema (14), conformance (17)

    for routes in (firms, pilots, gateways, devices, telemetry, health, links, dead_letters, service, access,
                   profiles, contract, conformance):
        app.include_router(routes.router)
    from api import scoring  # scores, records, daily rescoring (issue 4)

    scoring.install(app, settings)
    from api.routes import matching  # demand-supply matching for city departments (issue 16)

    app.include_router(matching.router)
    from api.routes import commands  # commands to smart switches (issue 18)

    app.include_router(commands.router)
    from api.routes import plans  # the program's rolling plan (issue 18)

    app.include_router(plans.router)
    auth.document_public_routes(app)
    from api import pages  # web pages, sign-in and the offline API docs (issue 16)

    pages.install(app)
    return app
