"""`pilotlab api`: check the database, then serve the app with uvicorn."""

from __future__ import annotations

import psycopg
import uvicorn

from api.app import create_app
from api.database import open_request_pool
from pilotlab.errors import ServiceUnavailable
from pilotlab.settings import Settings
from store.connection import redact
from store.migrate import current_version


def serve(settings: Settings) -> int:
    """Run the API until interrupted. Raises ServiceUnavailable before listening if the database
    cannot be reached or holds no pilotlab schema (the CLI prints one line and exits 2)."""
    url = settings.require_database_url()
    pool = open_request_pool(settings)
    try:
        with pool.connection() as conn:
            version = current_version(conn)
    except psycopg.errors.UndefinedTable:
        version = 0
    except psycopg.Error as exc:
        pool.close()
        raise ServiceUnavailable(f"database at {redact(url)} cannot be read: {exc}") from None
    if version == 0:
        pool.close()
        raise ServiceUnavailable(f"database at {redact(url)} has no pilotlab schema: run `pilotlab db migrate`")
    uvicorn.run(create_app(settings, pool=pool), host=settings.api_host, port=settings.api_port,
                log_level="info")
    return 0
