"""Telling a row the database refuses from a database that cannot serve: the one place ingest
decides which of the two a failed write was.

psycopg's exception classes do not say it: `ProgramLimitExceeded` (SQLSTATE 54000, e.g. an index
row too large for one message's value) is an `OperationalError`, like a dropped connection, and a
worker that took it for an outage retried one message for ever while nothing else was stored. So
the decision rests on what happened, not on the class:

- the connection is broken or closed: an outage (retry the batch, unacknowledged, with backoff);
- the SQLSTATE class is one of `REFUSED_CLASSES`: the statement's data was refused; the same
  statement will fail again, so the offending row is isolated and dead-lettered;
- anything else (server shutting down, out of disk, a deadlock, a missing privilege or table): the
  server cannot take the batch now; it is retried unacknowledged and the log says why. None of
  these is the message's fault, so none may turn good messages into dead letters.
"""

from __future__ import annotations

import psycopg

# SQLSTATE classes (PostgreSQL, Appendix A) that blame the row, not the server:
REFUSED_CLASSES = frozenset({
    "22",  # data exception: a value the column's type cannot take
    "23",  # integrity constraint violation: CHECK, NOT NULL, foreign key
    "54",  # program limit exceeded: e.g. an index row or a value too large
    "P0",  # raised by PL/pgSQL: a trigger refusing the row (a recall rule, say)
})
REFUSED_STATES = frozenset({"XX000"})  # internal_error: raised for a row by some extensions' triggers


def connection_lost(conn: psycopg.Connection | None) -> bool:
    return conn is None or conn.closed or conn.broken


def is_refusal(exc: BaseException, conn: psycopg.Connection | None) -> bool:
    """True if `exc`, raised by a statement on `conn`, refuses that statement's data."""
    if not isinstance(exc, psycopg.Error) or connection_lost(conn):
        return False
    state = exc.sqlstate
    if state is None:  # raised by psycopg itself before sending: a value it cannot send (NUL in text)
        return isinstance(exc, psycopg.DataError)
    return state[:2] in REFUSED_CLASSES or state in REFUSED_STATES


def describe(exc: BaseException) -> str:
    """One line for logs and dead-letter details: SQLSTATE and the server's primary message."""
    if isinstance(exc, psycopg.Error):
        message = exc.diag.message_primary or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"{exc.sqlstate} {message}" if exc.sqlstate else message
    return str(exc) or type(exc).__name__
