"""Ingest tells a row the database refuses from a database that cannot serve, by what happened
(the connection's state, the SQLSTATE class), never by psycopg's exception class."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import psycopg
import pytest

from ingest.refusal import is_refusal


def _error_of(conn: psycopg.Connection, statement: str, params: tuple[object, ...] = ()) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as raised:
        conn.execute(statement, params)  # type: ignore[arg-type]
    return raised.value


def test_an_index_row_too_large_is_a_refusal_although_psycopg_calls_it_operational(
    make_database: Callable[[], str],
) -> None:
    with psycopg.connect(make_database()) as conn:
        conn.execute("CREATE TABLE keyed (k text PRIMARY KEY)")
        error = _error_of(conn, "INSERT INTO keyed VALUES (%s)", (secrets.token_hex(1600),))
        assert isinstance(error, psycopg.OperationalError) and error.sqlstate == "54000"
        assert is_refusal(error, conn)
        conn.rollback()
        assert is_refusal(_error_of(conn, "SELECT 1 / 0"), conn)
        conn.rollback()
        assert is_refusal(_error_of(conn, "INSERT INTO keyed VALUES (%s)", ("nul\x00byte",)), conn)


def test_a_lost_connection_or_a_missing_table_is_never_a_refusal(make_database: Callable[[], str]) -> None:
    url = make_database()
    with psycopg.connect(url) as conn:
        assert not is_refusal(_error_of(conn, "INSERT INTO no_such_table VALUES (1)"), conn)
        conn.rollback()
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        error = _error_of(conn, "SELECT 1")
        assert conn.broken and not is_refusal(error, conn)
