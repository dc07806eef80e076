"""Signed reference records: round trip, any changed byte fails, verification with only the file
and the public key (no database), determinism, and the CLI's exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pilotlab.errors import RecordInvalid
from scoring.records import plain, sign, verify
from scoring.scorer import record_body, score_pilot
from scoring.signing import generate_key, load_public_key
from tests.scoring.conftest import ENV_OK

ISSUED = datetime(2024, 2, 1, tzinfo=UTC)


@pytest.fixture
def scored_pilot(db, make_pilot):
    pilot = make_pilot()
    for k in range(2):
        dev = pilot.device(f"env{k}", claimed_battery_days=100)
        pilot.series(dev, "2024-01-01Z", 1440, 60, ENV_OK + ", 100 - i * 0.001 AS battery_pct",
                     skip=f"i BETWEEN {100 * k} AND {100 * k + 20}")
    return pilot


@pytest.fixture
def key_pair(tmp_path: Path):
    path = tmp_path / "signing.pem"
    return generate_key(path), path, Path(f"{path}.pub")


def test_a_signed_record_verifies_and_holds_the_verdict(db, rubric, scored_pilot, key_pair):
    key, _, pub = key_pair
    document = sign(record_body(score_pilot(db, scored_pilot.pilot_id, rubric), ISSUED), key)
    record = verify(document, load_public_key(pub))
    assert record["pilot"]["id"] == scored_pilot.pilot_id and record["rubric"]["sha256"] == rubric.sha256
    assert record["verdict"] == "not_eligible"  # one day: the duration gate fails
    assert set(record) >= {"firm", "window", "fleet", "metrics", "gates", "score", "evidence", "software", "issued_at"}


def test_changing_any_single_byte_fails_verification(db, rubric, scored_pilot, key_pair):
    key, _, pub = key_pair
    public = load_public_key(pub)
    document = sign(record_body(score_pilot(db, scored_pilot.pilot_id, rubric), ISSUED), key)
    step = max(1, len(document) // 400)  # ~400 positions spread over every field
    for i in range(0, len(document), step):
        for changed in (document[i] ^ 0x01, ord(" ")):
            if changed == document[i]:
                continue
            tampered = document[:i] + bytes([changed]) + document[i + 1:]
            with pytest.raises(RecordInvalid):
                verify(tampered, public)


def test_a_record_signed_with_another_key_is_refused(db, rubric, scored_pilot, key_pair, tmp_path):
    key, _, _ = key_pair
    other = generate_key(tmp_path / "other.pem")
    document = sign(record_body(score_pilot(db, scored_pilot.pilot_id, rubric), ISSUED), key)
    with pytest.raises(RecordInvalid, match="not by the given key"):
        verify(document, other.public_key())


def test_scoring_the_same_data_twice_gives_byte_identical_records_but_for_issue_time_and_signature(
        db, rubric, scored_pilot, key_pair):
    key, _, _ = key_pair
    first = json.loads(sign(record_body(score_pilot(db, scored_pilot.pilot_id, rubric), ISSUED), key))
    second = json.loads(sign(record_body(score_pilot(db, scored_pilot.pilot_id, rubric),
                                         datetime(2024, 3, 1, tzinfo=UTC)), key))
    assert first["record"].pop("issued_at") != second["record"].pop("issued_at")
    assert first["signature"] != second["signature"]
    import rfc8785
    assert rfc8785.dumps(first["record"]) == rfc8785.dumps(second["record"])


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pilotlab", *args], capture_output=True, text=True, env=env, timeout=60)


def test_cli_issues_a_record_and_verifies_it_without_any_database(database_url, scored_pilot, key_pair, tmp_path):
    _, private, pub = key_pair
    out = tmp_path / "record.json"
    issued = _cli("record", "issue", scored_pilot.pilot_id, "--out", str(out), "--as-of", "2024-01-05T00:00:00Z",
                  "--database-url", database_url, "--signing-key", str(private))
    assert issued.returncode == 0, issued.stderr
    assert len([line for line in issued.stderr.splitlines() if "scoring devices" in line]) == 1, issued.stderr
    # a machine without pilotlab's database: no database settings at all
    bare = {k: v for k, v in os.environ.items() if not k.startswith("PILOTLAB_")}
    bare["PILOTLAB_DATA_DIR"] = str(tmp_path / "no-demo")  # never a demo left running in ./.pilotlab
    ok = _cli("record", "verify", str(out), "--key", str(pub), env=bare)
    assert ok.returncode == 0 and "is valid" in ok.stdout, ok.stderr
    data = out.read_bytes()
    out.write_bytes(data.replace(b'"verdict":"not_eligible"', b'"verdict":"eligible"'))
    bad = _cli("record", "verify", str(out), "--key", str(pub), env=bare)
    assert bad.returncode == 1 and "INVALID" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_cli_refuses_a_bad_rubric_with_one_line_and_exit_2(database_url, scored_pilot, tmp_path):
    rubric = tmp_path / "bad.yaml"
    rubric.write_text("version: '9'\n")
    answer = _cli("score", scored_pilot.pilot_id, "--rubric", str(rubric), "--database-url", database_url)
    assert answer.returncode == 2
    assert answer.stderr.strip().splitlines() == ["pilotlab: rubric bad.yaml: window: Field required"]


def test_cli_scores_a_pilot_with_progress(database_url, scored_pilot):
    answer = _cli("score", scored_pilot.pilot_id, "--as-of", "2024-01-05T00:00:00Z", "--database-url", database_url)
    assert answer.returncode == 0, answer.stderr
    assert "scoring devices 2/2" in answer.stderr and "verdict not_eligible" in answer.stdout


def _one_line_error(answer: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert answer.returncode == 2, (answer.returncode, answer.stdout, answer.stderr)
    assert "Traceback" not in answer.stderr
    lines = [line for line in answer.stderr.splitlines() if line.strip() and not line.startswith("scoring devices")]
    assert len(lines) == 1, answer.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _records_of(db, pilot_id: str) -> int:
    return db.execute("SELECT count(*) FROM reference_record WHERE pilot_id = %s", (pilot_id,)).fetchone()[0]


@pytest.mark.parametrize("where", ["missing directory", "a directory"])
def test_cli_issuing_to_an_unwritable_out_path_says_so_in_one_line_and_stores_nothing(
        db, database_url, scored_pilot, key_pair, tmp_path, where):
    _, private, _ = key_pair
    out = tmp_path / "no-such-dir" / "record.json" if where == "missing directory" else tmp_path
    answer = _cli("record", "issue", scored_pilot.pilot_id, "--out", str(out), "--as-of", "2024-01-05T00:00:00Z",
                  "--database-url", database_url, "--signing-key", str(private))
    _one_line_error(answer, "pilotlab: ", str(out))
    assert _records_of(db, scored_pilot.pilot_id) == 0
    assert not (tmp_path / "no-such-dir").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signing.pem", "signing.pem.pub"]  # no temporary file left


def test_cli_issuing_stores_the_record_it_wrote_byte_for_byte(db, database_url, scored_pilot, key_pair, tmp_path):
    _, private, _ = key_pair
    out = tmp_path / "record.json"
    answer = _cli("record", "issue", scored_pilot.pilot_id, "--out", str(out), "--as-of", "2024-01-05T00:00:00Z",
                  "--database-url", database_url, "--signing-key", str(private))
    assert answer.returncode == 0, answer.stderr
    stored = db.execute("SELECT document FROM reference_record WHERE pilot_id = %s", (scored_pilot.pilot_id,)).fetchall()
    assert [bytes(row[0]) for row in stored] == [out.read_bytes()]


def test_cli_keygen_to_an_unwritable_path_says_so_in_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    _one_line_error(_cli("record", "keygen", str(blocker / "key.pem")), str(blocker / "key.pem"))
    assert blocker.read_text() == "not a directory"


def test_cli_keygen_leaves_no_private_key_behind_when_the_public_key_cannot_be_written(tmp_path):
    key = tmp_path / "key.pem"
    Path(f"{key}.pub").mkdir()
    _one_line_error(_cli("record", "keygen", str(key)), f"{key}.pub")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.pem.pub"]


def test_cli_keygen_writes_a_private_key_only_its_owner_reads_and_its_public_key(tmp_path):
    key = tmp_path / "keys" / "key.pem"
    answer = _cli("record", "keygen", str(key))
    assert answer.returncode == 0, answer.stderr
    assert key.stat().st_mode & 0o777 == 0o600
    assert load_public_key(Path(f"{key}.pub"))
    assert sorted(p.name for p in key.parent.iterdir()) == ["key.pem", "key.pem.pub"]


def test_a_record_carries_the_breakdown_of_the_fleet_and_of_every_device_in_its_evidence(
        db, rubric, ingested_pilot, key_pair):
    key, _, pub = key_pair
    score = score_pilot(db, ingested_pilot.pilot_id, rubric)
    record = verify(sign(record_body(score, ISSUED), key), load_public_key(pub))
    assert record["format"] == "pilotlab-reference-record/2"
    evidence = record["evidence"]
    assert evidence["fleet_breakdown"] == plain(score.fleet_breakdown())
    [device] = evidence["device_breakdowns"]
    assert device["deliveries"]["rejected"]["by_reason"] == {"invalid_payload": 1, "malformed_json": 2,
                                                             "timestamp_out_of_range": 1}
    assert device["quality_incidents"]["count"] == 1 and device["outages"]["count"] == 1


def test_a_record_of_format_1_from_before_the_breakdown_still_verifies(key_pair):
    key, _, pub = key_pair
    body = {"format": "pilotlab-reference-record/1", "pilot": {"id": "p"}, "verdict": "eligible", "score": 91.5,
            "evidence": {"sha256": "0" * 64, "devices": 3, "daily_counts": 84, "delivery_ratio_source": None}}
    assert verify(sign(body, key), load_public_key(pub))["format"] == "pilotlab-reference-record/1"
    with pytest.raises(RecordInvalid, match="record.format is not one of"):
        verify(sign(body | {"format": "pilotlab-reference-record/9"}, key), load_public_key(pub))
