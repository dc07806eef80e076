"""The request's database connection, borrowed from the app's pool.

Connections are put in autocommit mode: each read sees the latest committed data and each store
write commits in its own `conn.transaction()` block before the response is sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, Request
from psycopg_pool import ConnectionPool

from store.timeseries import Capabilities

POOL_WAIT_S = 5.0  # a request that waits longer for a connection gets 503, not a hung socket


def _connection(request: Request) -> Iterator[psycopg.Connection]:
    pool: ConnectionPool = request.app.state.pool
    with pool.connection(timeout=POOL_WAIT_S) as conn:
        conn.autocommit = True
        yield conn


def _capabilities(request: Request) -> Capabilities:
    caps: Capabilities = request.app.state.capabilities
    return caps


Db = Annotated[psycopg.Connection, Depends(_connection, scope="function")]
Caps = Annotated[Capabilities, Depends(_capabilities)]
