"""Which mode migrate chooses when TimescaleDB's files are on the server but its library is not
preloaded (or the role cannot create the extension), and what happens when the preload changes.
A private server of the shared build, restarted with and without `shared_preload_libraries`
(tests/timescaledb_cluster.py): CREATE EXTENSION there ends the connection, which migrate must
never reach."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from pilotlab.cli import main
from store.migrate import migrate, migrations
from tests.conftest import _with_database
from tests.store.filling import fill_at, hourly_expected, refresh_hourly, telemetry_rows
from tests.timescaledb_cluster import MISSING, TimescaleCluster, cluster_script

NOT_PRELOADED = ("database mode: plain PostgreSQL, although TimescaleDB 2.28.3 is installed on the server: "
                 "it is not preloaded (shared_preload_libraries = '')")


@pytest.fixture(scope="module")
def cluster() -> Iterator[TimescaleCluster]:
    script = cluster_script()
    if script is None:
        pytest.skip(MISSING)
    server = TimescaleCluster(script)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _new_database(cluster: TimescaleCluster) -> str:
    name = f"modes_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return _with_database(cluster.url, name)


def _has_hypertable(url: str) -> bool:
    with psycopg.connect(url) as conn:
        if conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'").fetchone() == (0,):
            return False
        return conn.execute("SELECT count(*) FROM timescaledb_information.hypertables "
                            "WHERE hypertable_name = 'telemetry'").fetchone() == (1,)


def test_without_the_preload_migrate_completes_on_plain_postgresql_and_says_why(
        cluster: TimescaleCluster, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    cluster.restart(preload=False)
    url = _new_database(cluster)
    with caplog.at_level(logging.WARNING, logger="store.migrate"):
        assert main(["db", "migrate", "--database-url", url]) == 0
        assert main(["db", "migrate", "--database-url", url]) == 0  # and again, as at every start
    out = capsys.readouterr().out
    assert out.count(NOT_PRELOADED) == 2
    assert [r.getMessage() for r in caplog.records if r.name == "store.migrate"][0].startswith(NOT_PRELOADED)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT max(version) FROM schema_migration").fetchone() == (migrations()[-1].version,)
        assert conn.execute("SELECT enabled FROM store_capability WHERE name = 'timescaledb'").fetchone() == (False,)
        assert conn.execute("SELECT relkind FROM pg_class WHERE relname = 'telemetry_hourly'").fetchone() == ("v",)
    assert not _has_hypertable(url)


def test_once_the_server_preloads_it_migrate_converts_the_plain_database_keeping_its_data(
        cluster: TimescaleCluster) -> None:
    cluster.restart(preload=False)
    url = _new_database(cluster)
    migrate(url, target=migrations()[-1].version)
    fill = fill_at(url, migrations()[-1].version)  # a month of history, and the last hours
    cluster.restart(preload=True)
    report = migrate(url)
    assert report.converted and report.capabilities.timescaledb and report.applied == []
    assert _has_hypertable(url)
    refresh_hourly(url)  # the first run of the refresh policy materialises the whole history
    with psycopg.connect(url, autocommit=True) as conn:
        assert telemetry_rows(conn) == fill.telemetry
        assert conn.execute("SELECT device_id, bucket, messages, readings, mean_temperature_c FROM telemetry_hourly "
                            "ORDER BY 1, 2").fetchall() == hourly_expected(fill.telemetry)
        assert conn.execute("SELECT enabled FROM store_capability WHERE name = 'timescaledb'").fetchone() == (True,)
    again = migrate(url)
    assert not again.converted and again.applied == []


def test_a_timescaledb_database_whose_server_stopped_preloading_it_is_a_one_line_error(
        cluster: TimescaleCluster, capsys: pytest.CaptureFixture[str]) -> None:
    cluster.restart(preload=True)
    url = _new_database(cluster)
    migrate(url)
    cluster.restart(preload=False)
    assert main(["db", "migrate", "--database-url", url]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "this database uses TimescaleDB 2.28.3 but the server does not preload it" in err
    assert "shared_preload_libraries" in err


def test_a_role_that_cannot_create_the_extension_gets_plain_postgresql_with_the_reason(cluster: TimescaleCluster) -> None:
    cluster.restart(preload=True)
    role = f"app_{uuid.uuid4().hex[:8]}"
    url = _new_database(cluster)
    with psycopg.connect(url, autocommit=True) as conn:  # may create tables, not extensions (no CREATE on the database)
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(role)))
    url = psycopg.conninfo.make_conninfo(url, user=role)
    report = migrate(url)  # not a superuser: shared_preload_libraries is hidden from it, the extension refused
    assert not report.capabilities.timescaledb and report.capabilities.fallback
    assert "CREATE EXTENSION timescaledb failed (permission denied to create extension" in report.capabilities.note
    assert not _has_hypertable(url)
