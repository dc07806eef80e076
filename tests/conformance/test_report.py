"""A conformance report is in the records' form: signed, logged, verifiable offline, and any changed
byte fails; reports are kept per device with their runs."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import rfc8785

from conformance import runs
from conformance.report import verify_report
from pilotlab.errors import RecordInvalid
from scoring.signing import load_public_key
from scoring.transparency.merkle import leaf_hash, root_hash
from tests.conformance.conftest import RunOutcome

Cli = Callable[..., subprocess.CompletedProcess[str]]


def test_a_reports_bundle_verifies_offline_and_names_the_device_and_its_leaf(conformance_run: RunOutcome, cli: Cli) -> None:
    bundle = conformance_run.bundle("ok")
    result = cli("conformance", "verify", str(bundle), "--key", str(conformance_run.public_key))
    assert result.returncode == 0, result.stderr
    assert f"device {conformance_run.device['ok']}, passed" in result.stdout and "in the log: leaf" in result.stdout
    failed = cli("conformance", "verify", str(conformance_run.bundle("qos0")), "--key", str(conformance_run.public_key))
    assert failed.returncode == 0 and ", failed, issued" in failed.stdout  # a valid report of a failed run


def test_one_changed_byte_anywhere_in_a_bundle_makes_it_invalid(conformance_run: RunOutcome, cli: Cli,
                                                                tmp_path: Path) -> None:
    original = conformance_run.bundle("ok").read_bytes()
    public = load_public_key(conformance_run.public_key)
    positions = sorted({round(i * (len(original) - 1) / 199) for i in range(200)})
    for position in positions:
        changed = bytearray(original)
        changed[position] = ord("0") if changed[position] != ord("0") else ord("1")
        with pytest.raises(RecordInvalid):
            verify_report(bytes(changed), public)
    altered = original.replace(b'\\"passed\\":true', b'\\"passed\\":fals')  # within the signed report's text
    assert altered != original
    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(altered)
    result = cli("conformance", "verify", str(tampered), "--key", str(conformance_run.public_key))
    assert result.returncode == 1 and "INVALID" in result.stderr


def test_the_bare_report_verifies_by_its_signature_and_fails_changed(conformance_run: RunOutcome) -> None:
    public = load_public_key(conformance_run.public_key)
    document = json.loads(conformance_run.bundle("ok").read_bytes())["record"].encode()
    assert verify_report(document, public).report["device"]["id"] == conformance_run.device["ok"]
    with pytest.raises(RecordInvalid, match="signature does not match"):
        verify_report(rfc8785.dumps({**json.loads(document), "record": {
            **json.loads(document)["record"], "passed": False}}), public)


def test_a_report_is_a_leaf_of_the_records_transparency_log(conformance_run: RunOutcome) -> None:
    with psycopg.connect(conformance_run.database_url) as conn:
        report = conn.execute("SELECT id, document FROM conformance_report WHERE device_id = %s",
                              (conformance_run.device["ok"],)).fetchone()
        assert report is not None
        leaf = conn.execute("SELECT leaf_hash, source FROM transparency_leaf WHERE record_id = %s", (report[0],)).fetchone()
        leaves = [bytes(h) for (h,) in conn.execute("SELECT leaf_hash FROM transparency_leaf ORDER BY leaf_index")]
        head = conn.execute("SELECT tree_size, root_hash FROM transparency_tree_head ORDER BY tree_size DESC "
                            "LIMIT 1").fetchone()
    assert leaf is not None and bytes(leaf[0]) == leaf_hash(bytes(report[1])) and leaf[1] == "conformance_report"
    assert head is not None and head[0] == len(leaves) and bytes(head[1]) == root_hash(leaves)


def test_record_verify_says_a_conformance_report_is_not_a_reference_record(conformance_run: RunOutcome, cli: Cli) -> None:
    result = cli("record", "verify", str(conformance_run.bundle("ok")), "--key", str(conformance_run.public_key))
    assert result.returncode == 1 and "record.format" in result.stderr


def test_a_devices_runs_and_reports_are_kept_as_its_history(conformance_run: RunOutcome, cli: Cli) -> None:
    device = conformance_run.device["ok"]
    with psycopg.connect(conformance_run.database_url, autocommit=True) as conn:
        [run] = runs.runs_of(conn, [device])
        assert run.status == "passed" and run.report_id is not None and runs.has_passed(conn, device)
        assert runs.get_report(conn, run.report_id).run_id == run.id
        assert not runs.has_passed(conn, conformance_run.device["qos0"])
    result = cli("conformance", "history", device, "--database-url", conformance_run.database_url)
    assert result.returncode == 0 and f"{run.id} passed  report {run.report_id}" in result.stdout


def test_a_stored_reports_bundle_is_written_again_from_the_database(conformance_run: RunOutcome, cli: Cli,
                                                                    tmp_path: Path) -> None:
    with psycopg.connect(conformance_run.database_url) as conn:
        [run] = runs.runs_of(conn, [conformance_run.device["ok"]])
    out = tmp_path / "again.json"
    written = cli("conformance", "report", str(run.report_id), "--out", str(out), "--database-url",
                  conformance_run.database_url, "--signing-key", str(conformance_run.signing_key))
    assert written.returncode == 0, written.stderr
    assert cli("conformance", "verify", str(out), "--key", str(conformance_run.public_key)).returncode == 0
