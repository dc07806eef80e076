"""Record bundles and the log's API: a record verifies offline with its bundle and the public key
(and a tree head the verifier trusts), any changed byte fails, and the public endpoints serve the
tree heads and proofs `pilotlab log audit` checks over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import rfc8785
from fastapi.testclient import TestClient

from api.app import create_app
from pilotlab.errors import RecordInvalid
from pilotlab.settings import Settings
from scoring.issuing import IssuedRecord, store_record
from scoring.records import RECORD_FORMAT, record_id, sign
from scoring.signing import generate_key, load_public_key
from scoring.transparency.bundle import verify_bundle
from scoring.transparency.merkle import leaf_hash, verify_consistency, verify_inclusion
from scoring.transparency.tree_head import read_tree_head
from tests.api.conftest import served
from tests.scoring.conftest import ENV_OK
from tests.support import admin_headers


def _cli(*args: str, bare: bool = False) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if bare:  # a reviewer's machine: no pilotlab settings, no database
        env = {k: v for k, v in env.items() if not k.startswith("PILOTLAB_")}
        env["PILOTLAB_DATA_DIR"] = "/nonexistent/pilotlab-no-demo"
    return subprocess.run([sys.executable, "-m", "pilotlab", *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture
def key_pair(tmp_path: Path) -> tuple[Path, Path]:
    path = tmp_path / "signing.pem"
    generate_key(path)
    return path, Path(f"{path}.pub")


def test_an_issued_record_verifies_offline_from_its_bundle_and_any_changed_byte_fails(database_url, make_pilot, key_pair,
                                                                                        tmp_path):
    private, public = key_pair
    pilot = make_pilot()
    pilot.series(pilot.device("env"), "2024-01-01Z", 1440, 60, ENV_OK)
    out = tmp_path / "bundle.json"
    for as_of, bundled in (("2024-01-04", []), ("2024-01-05", ["--bundle"])):  # the first: a non-empty audit path
        issued = _cli("record", "issue", pilot.pilot_id, "--out", str(out), *bundled, "--as-of", f"{as_of}T00:00:00Z",
                      "--database-url", database_url, "--signing-key", str(private))
        assert issued.returncode == 0, issued.stderr
    bundle = out.read_bytes()
    ok = _cli("record", "verify", str(out), "--key", str(public), bare=True)
    assert ok.returncode == 0, ok.stderr
    assert "is valid" in ok.stdout and "in the log: leaf" in ok.stdout

    parsed = json.loads(bundle)
    head = tmp_path / "head.json"
    head.write_bytes(rfc8785.dumps(parsed["tree_head"]))
    with_head = _cli("record", "verify", str(out), "--key", str(public), "--tree-head", str(head), bare=True)
    assert with_head.returncode == 0, with_head.stderr
    record = parsed["record"].encode()
    assert parsed["inclusion"]["tree_size"] == parsed["tree_head"]["tree_head"]["tree_size"]
    verify_inclusion(leaf_hash(record), parsed["inclusion"]["leaf_index"], parsed["inclusion"]["tree_size"],
                     [bytes.fromhex(h) for h in parsed["inclusion"]["audit_path"]],
                     bytes.fromhex(parsed["tree_head"]["tree_head"]["root_hash"]))

    key = load_public_key(public)
    step = max(1, len(bundle) // 500)  # ~500 positions over record, proof and tree head
    for i in range(0, len(bundle), step):
        for changed in {bundle[i] ^ 0x01, ord(" "), ord(bytes([bundle[i]]).swapcase())} - {bundle[i]}:
            with pytest.raises(RecordInvalid):
                verify_bundle(bundle[:i] + bytes([changed]) + bundle[i + 1:], key)
    at = bundle.index(b'"audit_path":["') + 20  # one hex digit of the proof, through the CLI
    out.write_bytes(bundle[:at] + (b"0" if bundle[at:at + 1] != b"0" else b"1") + bundle[at + 1:])
    bad = _cli("record", "verify", str(out), "--key", str(public), bare=True)
    assert bad.returncode == 1 and "INVALID" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_a_bare_record_with_a_tree_head_is_refused_naming_the_bundle(tmp_path, key_pair):
    private, public = key_pair
    from scoring.signing import load_private_key

    record = tmp_path / "record.json"
    record.write_bytes(sign({"format": RECORD_FORMAT, "pilot": {"id": "p"}}, load_private_key(private)))
    answer = _cli("record", "verify", str(record), "--key", str(public), "--tree-head", str(record), bare=True)
    assert answer.returncode == 2 and "bare record" in answer.stderr and "bundle" in answer.stderr


class LogApi:
    def __init__(self, url: str, client: TestClient, private: Path, public: Path) -> None:
        self.url, self.client, self.private, self.public = url, client, private, public
        from scoring.signing import load_private_key

        self.key = load_private_key(private)
        self.ids: list[str] = []

    def issue(self, n: int) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            for _ in range(n):
                document = sign({"format": RECORD_FORMAT, "pilot": {"id": "pilot-api"}, "k": len(self.ids)}, self.key)
                record = IssuedRecord(record_id(document), "pilot-api", datetime.now(UTC), "2", "eligible", 80.0, "k", document)
                with conn.transaction():
                    store_record(conn, record, self.key)
                self.ids.append(record.id)


@pytest.fixture
def log_api(make_database: Callable[[], str], key_pair: tuple[Path, Path]) -> Iterator[LogApi]:
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO firm (id, name) VALUES ('firm-api', 'Acme')")
        conn.execute("INSERT INTO pilot (id, firm_id, name, site, starts_at, status) "
                     "VALUES ('pilot-api', 'firm-api', 'Air', 'Town', '2026-01-01Z', 'completed')")
    with TestClient(create_app(Settings(database_url=url, signing_key=key_pair[0]))) as client:
        yield LogApi(url, client, *key_pair)


def test_tree_heads_and_proofs_are_public_and_verify(log_api):
    log_api.issue(5)
    public = log_api.key.public_key()
    client = log_api.client  # no API key
    newest = read_tree_head(client.get("/log/tree-head").content, public)
    second = read_tree_head(client.get("/log/tree-head", params={"tree_size": 2}).content, public)
    assert (newest.tree_size, second.tree_size) == (5, 2)
    proof = client.get("/log/consistency", params={"first": 2, "second": 5}).json()
    verify_consistency(2, 5, second.root_hash, newest.root_hash, [bytes.fromhex(h) for h in proof["proof"]])
    document = client.get(f"/records/{log_api.ids[3]}", headers=admin_headers(log_api.url)).content
    inclusion = client.get(f"/records/{log_api.ids[3]}/inclusion").json()
    assert (inclusion["leaf_index"], inclusion["tree_size"]) == (3, 5)
    verify_inclusion(leaf_hash(document), 3, 5, [bytes.fromhex(h) for h in inclusion["audit_path"]], newest.root_hash)


def test_a_records_bundle_is_served_under_the_records_own_rule(log_api):
    log_api.issue(3)
    path = f"/records/{log_api.ids[1]}"
    assert log_api.client.get(path, params={"bundle": "true"}).status_code == 401
    bundle = log_api.client.get(path, params={"bundle": "true", "tree_size": 2}, headers=admin_headers(log_api.url))
    assert bundle.status_code == 200, bundle.text
    verified = verify_bundle(bundle.content, log_api.key.public_key())
    assert (verified.leaf_index, verified.tree_head.tree_size) == (1, 2)


def test_records_stored_without_a_tree_head_are_covered_by_the_next_one_served(log_api):
    log_api.issue(2)
    with psycopg.connect(log_api.url, autocommit=True) as conn:  # stored by hand: logged, not yet signed
        conn.execute("INSERT INTO reference_record (id, pilot_id, issued_at, rubric_version, verdict, score, key_id, "
                     "document) VALUES ('by-hand', 'pilot-api', now(), '1', 'eligible', 90, 'k', '{}')")
    head = read_tree_head(log_api.client.get("/log/tree-head").content, log_api.key.public_key())
    assert head.tree_size == 3
    assert log_api.client.get("/records/by-hand/inclusion").json()["leaf_index"] == 2


@pytest.mark.parametrize(("path", "params", "status", "says"), [
    ("/records/no-such/inclusion", {}, 404, "no record with id 'no-such' in the transparency log"),
    ("/records/{id}/inclusion", {"tree_size": 9}, 422, "tree_size 9 is out of range"),
    ("/records/{id}/inclusion", {"tree_size": 1}, 422, "is leaf 1"),
    ("/log/consistency", {"first": 3, "second": 2}, 422, "must not be larger"),
    ("/log/consistency", {"first": 1, "second": 7}, 422, "the log holds 2 leaves"),
    ("/log/tree-head", {"tree_size": 7}, 404, "no signed tree head of size 7"),
])
def test_proofs_the_log_cannot_give_are_refused_saying_why(log_api, path, params, status, says):
    log_api.issue(2)
    answer = log_api.client.get(path.replace("{id}", log_api.ids[1]), params=params)
    assert answer.status_code == status and says in answer.json()["detail"], answer.text


def test_log_audit_over_http_passes_for_the_log_and_fails_once_a_leaf_is_reordered(log_api, tmp_path):
    log_api.issue(4)
    with served(log_api.client.app) as (host, port):  # type: ignore[arg-type]
        base = f"http://{host}:{port}/log/tree-head"
        old = _cli("log", "audit", f"{base}?tree_size=3", base, "--key", str(log_api.public), bare=True)
        assert old.returncode == 0 and "extends the one of size 3" in old.stdout, old.stderr
        saved = tmp_path / "old.json"
        saved.write_bytes(log_api.client.get("/log/tree-head").content)
        with psycopg.connect(log_api.url, autocommit=True) as conn, conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
            conn.execute("UPDATE transparency_leaf SET leaf_index = leaf_index + 1000 WHERE leaf_index IN (1, 2)")
            conn.execute("UPDATE transparency_leaf SET leaf_index = CASE leaf_index WHEN 1001 THEN 2 ELSE 1 END "
                         "WHERE leaf_index >= 1000")
        log_api.issue(1)
        audit = _cli("log", "audit", str(saved), base, "--key", str(log_api.public), bare=True)
        assert audit.returncode == 1, (audit.stdout, audit.stderr)
        assert audit.stderr.startswith("pilotlab: log audit FAILED: consistency proof") and len(audit.stderr.splitlines()) == 1
