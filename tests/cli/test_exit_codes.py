"""The CLI answers each error class as the one table says (pilotlab.errors.ANSWERS): one line on
stderr, exit 2 for what the operator must change or retry, 1 for a record checked and found
invalid; never a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pilotlab.embedded.ports import free_port
from pilotlab.errors import (
    ConfigError,
    Conflict,
    InvalidRequest,
    NotFound,
    PilotlabError,
    RecordInvalid,
    ServiceUnavailable,
    answer_for,
)
from tests.cli.test_cli import run
from tests.support import register_pilot

Case = Callable[[str, str, Path], tuple[str, ...]]


def _tampered_record(tmp_path: Path) -> tuple[str, ...]:
    from scoring.records import RECORD_FORMAT, sign
    from scoring.signing import generate_key

    key = generate_key(tmp_path / "key.pem")
    record = tmp_path / "record.json"
    signed = sign({"format": RECORD_FORMAT, "pilot": {"id": "p"}, "verdict": "eligible", "score": 90.0}, key)
    record.write_bytes(signed.replace(b'"eligible"', b'"conditional"'))
    return ("record", "verify", str(record), "--key", str(tmp_path / "key.pem.pub"))


CASES: dict[type[PilotlabError], tuple[int, str, Case]] = {
    ConfigError: (2, "PILOTLAB_SIGNING_KEY", lambda db, pilot, tmp: (
        "record", "issue", pilot, "--out", str(tmp / "r.json"), "--database-url", db)),
    NotFound: (2, "no-such-pilot", lambda db, pilot, tmp: ("score", "no-such-pilot", "--database-url", db)),
    InvalidRequest: (2, "is in the future", lambda db, pilot, tmp: (
        "score", pilot, "--as-of", "4000-01-01T00:00:00Z", "--database-url", db)),
    Conflict: (2, "a firm key needs --firm", lambda db, pilot, tmp: (
        "apikey", "create", "--role", "firm", "--database-url", db)),
    ServiceUnavailable: (2, "cannot reach the database", lambda db, pilot, tmp: (
        "score", pilot, "--database-url", f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")),
    RecordInvalid: (1, "INVALID", lambda db, pilot, tmp: _tampered_record(tmp)),
}


@pytest.mark.parametrize("error", list(CASES), ids=lambda cls: cls.__name__)
def test_each_error_class_exits_with_its_code_from_the_one_table_in_one_line(
        error: type[PilotlabError], database_url: str, unique_id: Callable[[str], str], tmp_path: Path) -> None:
    code, fragment, command = CASES[error]
    assert answer_for(error("x")).exit_code == code
    pilot = register_pilot(database_url, unique_id("codes")).pilot_id
    result = run(*command(database_url, pilot, tmp_path))
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("scoring devices")]
    assert len(lines) == 1 and fragment in lines[0], result.stderr
