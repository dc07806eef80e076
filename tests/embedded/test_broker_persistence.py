"""The embedded Mosquitto takes the persistence its version can give: the shipped persist-sqlite
file on 2.1 with the plugin, the mosquitto.db file on 2.0, with a one-line warning that a restart
can then lose messages."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pilotlab.embedded.broker import EmbeddedBroker, MosquittoInstall, mosquitto_config, mosquitto_install

pytestmark = pytest.mark.mosquitto


def _active(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_generated_config_for_2_1_loads_the_plugin_found_beside_the_binary_and_no_mosquitto_db(
        tmp_path: Path) -> None:
    plugin = tmp_path / "lib" / "mosquitto_persist_sqlite.so"
    active = _active(mosquitto_config(18830, tmp_path, plugin))
    assert ["plugin", str(plugin)] in active
    assert ["plugin_opt_flush_period", "0"] in active and ["sys_interval", "1"] in active
    assert not [words for words in active if words[0] in ("persistence", "autosave_interval")], \
        "2.1 refuses `persistence true` beside a persistence plugin"
    assert ["max_queued_messages", "200000"] in active, "the tuning is the same"


def test_the_shipped_broker_runs_with_sqlite_persistence_and_no_warning(
        tmp_path: Path, shipped_mosquitto: MosquittoInstall, caplog: pytest.LogCaptureFixture) -> None:
    broker = EmbeddedBroker(tmp_path / "broker", prefer="mosquitto", mosquitto=shipped_mosquitto.binary)
    with caplog.at_level(logging.WARNING, logger="pilotlab.embedded.broker"), broker:
        assert broker.restart_safe
        assert (tmp_path / "broker" / "mosquitto.sqlite3").exists()
    assert not caplog.records
    assert "Error" not in broker.log_path.read_text()


def test_a_mosquitto_without_the_plugin_keeps_working_with_file_persistence_and_warns_in_one_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    found = mosquitto_install()
    if found is None or found.restart_safe:
        pytest.skip(f"needs a Mosquitto without persist-sqlite on PATH (found: {found or 'none'})")
    broker = EmbeddedBroker(tmp_path / "broker", prefer="mosquitto")
    with caplog.at_level(logging.WARNING, logger="pilotlab.embedded.broker"), broker:
        assert not broker.restart_safe
    assert (tmp_path / "broker" / "mosquitto.db").exists(), "SIGTERM saved the sessions"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert "restart can lose messages" in warnings[0] and str(found.binary) in warnings[0]
