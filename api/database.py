"""The API's database connections: one pool for request work, a connection of its own for /health.

Request connections (`Db`) are borrowed from the app's pool in autocommit mode: each read sees
the latest committed data and each store write commits in its own `conn.transaction()` block
before the response is sent. Every statement they run is cut off after
`Settings.api_statement_timeout_s` (PostgreSQL `statement_timeout`, set per connection: 503 beyond).

Computing a score is the one request whose work grows with the data, so those requests
(`ScoringDb`) take one of SCORING_SLOTS slots first: however many arrive at once, the rest of the
pool stays free for reads and writes, and /health never waits for the pool at all (`HealthProbe`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, HTTPException, Request
from psycopg_pool import ConnectionPool

from pilotlab.settings import Settings
from store.connection import CONNECT_TIMEOUT_S, connect
from store.migrate import current_version
from store.timeseries import Capabilities, TimeseriesHealth, read_capabilities, read_timeseries_health

log = logging.getLogger(__name__)

POOL_SIZE = 8
POOL_WAIT_S = 5.0  # a request that waits longer for a connection gets 503, not a hung socket
SCORING_SLOTS = 3  # scores computed at once; the other POOL_SIZE - SCORING_SLOTS connections stay for the rest
PROBE_TIMEOUT_S = 2.0  # /health: connect and query limits of its own connection


def _options(url: str, statement_timeout_s: float) -> str:
    """The URL's own server `options` plus a statement_timeout."""
    given = psycopg.conninfo.conninfo_to_dict(url).get("options")
    timeout = f"-c statement_timeout={max(1, round(statement_timeout_s * 1000))}"
    return f"{given} {timeout}" if given else timeout


def open_request_pool(settings: Settings) -> ConnectionPool:
    """The pool request work borrows from; ServiceUnavailable at once if the database is unreachable."""
    url = settings.require_database_url()
    connect(url).close()
    pool = ConnectionPool(url, min_size=1, max_size=POOL_SIZE, open=False, timeout=POOL_WAIT_S,
                          kwargs={"connect_timeout": CONNECT_TIMEOUT_S,
                                  "options": _options(url, settings.api_statement_timeout_s)})
    pool.open(wait=True, timeout=CONNECT_TIMEOUT_S * 2)
    return pool


class HealthProbe:
    """One connection kept for /health alone, with short connect and statement limits, reopened when
    lost: the answer says whether the database answers, never whether the request pool is busy."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()

    def check(self) -> tuple[int, bool, TimeseriesHealth | None]:
        """(schema version, TimescaleDB in use, its jobs and compression); psycopg.Error if the
        database does not answer."""
        if not self._lock.acquire(timeout=PROBE_TIMEOUT_S):
            raise psycopg.OperationalError("another health probe has been waiting on the database")
        try:
            reused = self._conn is not None and not self._conn.closed
            try:
                return self._ask()
            except psycopg.Error:
                if self._conn is not None:
                    self._conn.close()
                if not reused:
                    raise
            return self._ask()  # the kept connection had gone stale (e.g. a database restart): once more, fresh
        finally:
            self._lock.release()

    def _ask(self) -> tuple[int, bool, TimeseriesHealth | None]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=max(1, round(PROBE_TIMEOUT_S)),
                                         options=_options(self.url, PROBE_TIMEOUT_S))
        try:
            version, timescaledb = current_version(self._conn), read_capabilities(self._conn).timescaledb
        except psycopg.Error:
            self._conn.close()
            raise
        return version, timescaledb, self._timeseries() if timescaledb else None

    def _timeseries(self) -> TimeseriesHealth | None:
        """TimescaleDB's job and compression state; None (logged) if this role may not read it:
        the database answered, so /health stays 200."""
        assert self._conn is not None
        try:
            return read_timeseries_health(self._conn)
        except psycopg.Error as exc:
            if self._conn.closed:
                raise
            log.warning("cannot read TimescaleDB's job and compression state: %s", exc)
            return None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()


def _connection(request: Request) -> Iterator[psycopg.Connection]:
    pool: ConnectionPool = request.app.state.pool
    with pool.connection(timeout=POOL_WAIT_S) as conn:
        conn.autocommit = True
        yield conn


async def _scoring_slot(request: Request) -> AsyncIterator[None]:
    # waits on the event loop, not in a worker thread: a crowd of waiting requests holds no threads
    slots: asyncio.Semaphore = request.app.state.scoring_slots
    try:
        await asyncio.wait_for(slots.acquire(), POOL_WAIT_S)
    except TimeoutError:
        raise HTTPException(503, f"{SCORING_SLOTS} scores are being computed already; try again shortly",
                            headers={"Retry-After": "5"}) from None
    try:
        yield
    finally:
        slots.release()


def _scoring_connection(request: Request, _slot: Annotated[None, Depends(_scoring_slot, scope="function")]
                        ) -> Iterator[psycopg.Connection]:
    yield from _connection(request)


def _capabilities(request: Request) -> Capabilities:
    caps: Capabilities = request.app.state.capabilities
    return caps


Db = Annotated[psycopg.Connection, Depends(_connection, scope="function")]
ScoringDb = Annotated[psycopg.Connection, Depends(_scoring_connection, scope="function")]
Caps = Annotated[Capabilities, Depends(_capabilities)]
