"""Opening connections, with unreachable servers turned into one clear ServiceUnavailable."""

from __future__ import annotations

import re

import psycopg
from psycopg_pool import ConnectionPool

from pilotlab.errors import ServiceUnavailable

CONNECT_TIMEOUT_S = 5


def redact(url: str) -> str:
    """The URL with any password replaced, for messages and logs."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection:
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ServiceUnavailable(f"cannot reach the database at {redact(url)}: {first_line}") from None
    except psycopg.ProgrammingError as exc:
        raise ServiceUnavailable(f"bad database URL {redact(url)}: {exc}") from None


def open_pool(url: str, *, min_size: int = 1, max_size: int = 8) -> ConnectionPool:
    """A connection pool that has proven it can connect (fails fast with ServiceUnavailable)."""
    connect(url).close()
    pool = ConnectionPool(url, min_size=min_size, max_size=max_size, open=False,
                          kwargs={"connect_timeout": CONNECT_TIMEOUT_S})
    pool.open(wait=True, timeout=CONNECT_TIMEOUT_S * 2)
    return pool
