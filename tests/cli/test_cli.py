"""The `pilotlab` command: clear help, and for bad input or unreachable services one line on
stderr and exit code 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable

import pytest

from pilotlab.embedded.ports import free_port


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTLAB_")}
    # a demo a developer left running in ./.pilotlab must not become these commands' database
    full_env["PILOTLAB_DATA_DIR"] = tempfile.mkdtemp(prefix="pilotlab-cli-")
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "pilotlab", *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_lists_every_command() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("demo", "ingest", "api", "simulate", "db"):
        assert command in result.stdout


@pytest.mark.parametrize("args", [("bogus",), ("ingest", "--no-such-flag"), ("db",), ("simulate",),
                                  ("api", "--port", "eighty")])
def test_bad_arguments_give_one_line_and_exit_code_2(args: tuple[str, ...]) -> None:
    assert_one_line_error(run(*args), "pilotlab")


def test_an_unreachable_database_gives_one_line_and_exit_code_2() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    assert_one_line_error(run("db", "migrate", "--database-url", url), "cannot reach the database")


def test_a_missing_database_url_says_which_setting_to_give() -> None:
    assert_one_line_error(run("db", "migrate"), "PILOTLAB_DATABASE_URL")


def test_a_malformed_broker_url_is_refused_before_anything_starts(database_url: str) -> None:
    assert_one_line_error(run("ingest", "--database-url", database_url, "--mqtt-url", "http://x"),
                          "mqtt://")


def test_an_unreachable_broker_gives_one_line_and_exit_code_2(database_url: str) -> None:
    result = run("ingest", "--database-url", database_url, "--mqtt-url", f"mqtt://127.0.0.1:{free_port()}")
    assert_one_line_error(result, "cannot reach the MQTT broker")


def test_a_bad_setting_in_the_environment_names_the_setting(database_url: str, mqtt_url: str) -> None:
    result = run("ingest", env={"PILOTLAB_DATABASE_URL": database_url, "PILOTLAB_MQTT_URL": mqtt_url,
                                "PILOTLAB_BATCH_SIZE": "lots"})
    assert_one_line_error(result, "batch_size")


def test_ingest_refuses_a_database_without_the_schema(admin_database_url: str, mqtt_url: str) -> None:
    import psycopg
    from psycopg import sql

    name = "pilotlab_test_unmigrated"
    with psycopg.connect(admin_database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        info = psycopg.conninfo.conninfo_to_dict(admin_database_url)
        info["dbname"] = name
        url = psycopg.conninfo.make_conninfo(**info)
        assert_one_line_error(run("ingest", "--database-url", url, "--mqtt-url", mqtt_url), "pilotlab db migrate")
        result = run("db", "migrate", "--database-url", url)
        assert result.returncode == 0, result.stderr
        assert "0001_registry.sql" in result.stdout
    finally:
        with psycopg.connect(admin_database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_migrate_twice_reports_the_schema_up_to_date(make_database: Callable[[], str]) -> None:
    result = run("db", "migrate", "--database-url", make_database())
    assert result.returncode == 0
    assert "up to date" in result.stdout
