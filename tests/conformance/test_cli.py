"""`pilotlab conformance` and `pilotlab simulate --misbehave`: bad input is one line and exit 2,
before a run starts."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.conformance.conftest import RunOutcome

Cli = Callable[..., subprocess.CompletedProcess[str]]


def _one_line(result: subprocess.CompletedProcess[str], *words: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize("given", ["15x", "-3m", "0"])
def test_a_duration_that_is_not_one_is_refused(cli: Cli, given: str) -> None:
    _one_line(cli("conformance", "run", "d1", f"--duration={given}"), "not a duration")


def test_a_run_is_refused_before_it_starts_for_an_unknown_device_a_short_duration_or_no_key(
        conformance_run: RunOutcome, cli: Cli, tmp_path: Path) -> None:
    db = ("--database-url", conformance_run.database_url)
    key = ("--signing-key", str(conformance_run.signing_key))
    _one_line(cli("conformance", "run", "no-such-device", *db, *key, "--out", str(tmp_path)), "names no device")
    _one_line(cli("conformance", "run", conformance_run.device["ok"], "--duration", "4s", *db, *key,
                  "--out", str(tmp_path)), "too short", "at least 5 intervals")
    _one_line(cli("conformance", "run", conformance_run.device["ok"], *db, "--out", str(tmp_path)), "PILOTLAB_SIGNING_KEY")
    with psycopg.connect(conformance_run.database_url) as conn:
        row = conn.execute("SELECT count(*) FROM conformance_run WHERE device_id = %s",
                           (conformance_run.device["ok"],)).fetchone()
    assert row == (1,)  # only the shared run's: none of these started one


def test_a_bare_report_against_a_tree_head_is_refused_in_one_line(conformance_run: RunOutcome, cli: Cli,
                                                                    tmp_path: Path) -> None:
    bare = tmp_path / "bare.json"
    bare.write_text(json.loads(conformance_run.bundle("ok").read_bytes())["record"])
    assert cli("conformance", "verify", str(bare), "--key", str(conformance_run.public_key)).returncode == 0
    _one_line(cli("conformance", "verify", str(bare), "--key", str(conformance_run.public_key), "--tree-head", str(bare)),
              "bare report")


def test_simulate_knows_every_misbehaviour_and_refuses_others(cli: Cli) -> None:
    assert all(mode in cli("simulate", "--help").stdout for mode in ("wrong-topic", "counter-reset", "qos0"))
    _one_line(cli("simulate", "--pilot", "p", "--misbehave", "sloppy"), "invalid choice")
