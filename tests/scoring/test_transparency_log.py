"""The transparency log of reference records (scoring/transparency, migration 0017): every stored
record is a leaf, every tree head is signed, proofs verify, and removing, reordering or altering
a leaf behind the log's back makes `pilotlab log audit` and inclusion checks fail.

Each test has a database of its own (the log is one per database), records signed for real but
without scoring (the end-to-end CLI test scores a pilot), and expectations built independently:
leaf hashes with hashlib, roots with the RFC 9162 code held to published vectors (test_merkle.py).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pilotlab.errors import NotFound, RecordInvalid
from scoring.issuing import IssuedRecord, store_record
from scoring.records import RECORD_FORMAT, record_id, sign
from scoring.signing import generate_key
from scoring.transparency import log
from scoring.transparency.bundle import bundle_of, verify_bundle
from scoring.transparency.log import LogDamaged
from scoring.transparency.merkle import root_hash, verify_consistency, verify_inclusion
from scoring.transparency.tree_head import TreeHead, read_tree_head
from store.migrate import migrate

ISSUED = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass
class Log:
    url: str
    conn: psycopg.Connection
    key: Ed25519PrivateKey
    key_file: Path
    public_file: Path
    pilot_id: str
    documents: list[bytes]

    def issue(self, n: int = 1) -> list[IssuedRecord]:
        issued = []
        for _ in range(n):
            k = len(self.documents)
            body = {"format": RECORD_FORMAT, "pilot": {"id": self.pilot_id}, "verdict": "eligible", "score": 80 + k,
                    "issued_at": ISSUED + timedelta(minutes=k)}
            document = sign(body, self.key)
            record = IssuedRecord(record_id(document), self.pilot_id, ISSUED + timedelta(minutes=k), "2", "eligible",
                                  80.0 + k, "k", document)
            with self.conn.transaction():
                store_record(self.conn, record, self.key)
            self.documents.append(document)
            issued.append(record)
        return issued

    def head(self, size: int) -> TreeHead:
        return read_tree_head(log.tree_head_at(self.conn, size).document, self.key.public_key())

    def tamper(self, *statements: str) -> None:
        """Change the log as a superuser would, past its append-only triggers."""
        with self.conn.transaction():
            self.conn.execute("SET LOCAL session_replication_role = replica")
            for statement in statements:
                self.conn.execute(statement.encode())


def _leaf(document: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + document).digest()


@pytest.fixture
def new_log(make_database: Callable[[], str], tmp_path: Path) -> Iterator[Log]:
    url = make_database()
    key_file = tmp_path / "log-key.pem"
    key = generate_key(key_file)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO firm (id, name) VALUES ('firm-log', 'Acme')")
        conn.execute("INSERT INTO pilot (id, firm_id, name, site, starts_at, status) "
                     "VALUES ('pilot-log', 'firm-log', 'Air', 'Old Town', '2026-01-01Z', 'completed')")
        yield Log(url, conn, key, key_file, Path(f"{key_file}.pub"), "pilot-log", [])


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTLAB_")}
    env["PILOTLAB_DATA_DIR"] = "/nonexistent/pilotlab-no-demo"
    return subprocess.run([sys.executable, "-m", "pilotlab", *args], capture_output=True, text=True, env=env, timeout=60)


def _save(path: Path, head: TreeHead) -> str:
    path.write_bytes(head.document)
    return str(path)


def test_every_stored_record_is_a_leaf_and_each_size_has_a_signed_tree_head(new_log):
    new_log.issue(7)
    rows = new_log.conn.execute("SELECT leaf_index, record_id, leaf_hash FROM transparency_leaf ORDER BY leaf_index").fetchall()
    assert [(i, r, bytes(h)) for i, r, h in rows] == [(i, hashlib.sha256(d).hexdigest(), _leaf(d))
                                                      for i, d in enumerate(new_log.documents)]
    for size in range(1, 8):
        head = new_log.head(size)
        assert head.tree_size == size and head.root_hash == root_hash([_leaf(d) for d in new_log.documents[:size]])


def test_each_record_proves_its_inclusion_in_every_later_tree_head(new_log):
    records = new_log.issue(6)
    for index, record in enumerate(records):
        for size in range(index + 1, 7):
            proof = log.inclusion(new_log.conn, record.id, size)
            assert proof.leaf_index == index
            verify_inclusion(_leaf(new_log.documents[index]), index, size, proof.audit_path, new_log.head(size).root_hash)


def test_every_tree_head_extends_every_earlier_one_and_log_audit_says_so(new_log, tmp_path):
    new_log.issue(5)
    for first in range(1, 6):
        for second in range(first, 6):
            verify_consistency(first, second, new_log.head(first).root_hash, new_log.head(second).root_hash,
                               log.consistency(new_log.conn, first, second))
    audit = _cli("log", "audit", _save(tmp_path / "old.json", new_log.head(2)), _save(tmp_path / "new.json", new_log.head(5)),
                 "--key", str(new_log.public_file), "--database-url", new_log.url)
    assert audit.returncode == 0, audit.stderr
    assert "extends the one of size 2" in audit.stdout


def test_the_log_refuses_updates_deletes_and_truncation(new_log):
    new_log.issue(2)
    for statement in ("UPDATE transparency_leaf SET leaf_hash = sha256('x') WHERE leaf_index = 0",
                      "DELETE FROM transparency_leaf WHERE leaf_index = 1", "TRUNCATE transparency_leaf",
                      "UPDATE transparency_tree_head SET tree_size = 9 WHERE tree_size = 2",
                      "DELETE FROM transparency_tree_head", "TRUNCATE transparency_tree_head"):
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            new_log.conn.execute(statement.encode())
    assert log.size(new_log.conn) == 2 and log.latest_tree_head(new_log.conn).tree_size == 2


# Tampering with leaf 3 of 6 (and its neighbour 4): removed with later leaves moved up, swapped, or
# its hash replaced by another record's; the tree heads signed since are dropped too, so the log
# can go on signing over what its rows now say (a history rewritten as well as a superuser can).
REWRITE = "DELETE FROM transparency_tree_head WHERE tree_size > 3"
TAMPERING = {
    "removed": ("DELETE FROM transparency_leaf WHERE leaf_index = 3",
                "UPDATE transparency_leaf SET leaf_index = leaf_index - 1 WHERE leaf_index > 3", REWRITE),
    "reordered": ("UPDATE transparency_leaf SET leaf_index = leaf_index + 1000 WHERE leaf_index IN (3, 4)",
                  "UPDATE transparency_leaf SET leaf_index = CASE leaf_index WHEN 1003 THEN 4 ELSE 3 END WHERE leaf_index >= 1000",
                  REWRITE),
    "altered": ("UPDATE transparency_leaf SET leaf_hash = sha256(decode('00', 'hex') || 'another record'::bytea) "
                "WHERE leaf_index = 3", REWRITE),
}


@pytest.mark.parametrize("tampering", TAMPERING)
def test_removing_reordering_or_altering_a_leaf_fails_the_audit_and_the_inclusion_checks(new_log, tmp_path, tampering):
    records = new_log.issue(6)
    old = _save(tmp_path / "old.json", new_log.head(6))
    new_log.tamper(*TAMPERING[tampering])
    new_log.issue(1)  # the log goes on, signing a tree head over what its rows now say
    new = _save(tmp_path / "new.json", new_log.head(log.size(new_log.conn)))

    audit = _cli("log", "audit", old, new, "--key", str(new_log.public_file), "--database-url", new_log.url)
    assert audit.returncode == 1, (audit.stdout, audit.stderr)
    assert audit.stderr.startswith("pilotlab: log audit FAILED:") and len(audit.stderr.strip().splitlines()) == 1

    held, newest = read_tree_head(Path(old).read_bytes(), new_log.key.public_key()), read_tree_head(Path(new).read_bytes(),
                                                                                                     new_log.key.public_key())
    for index in range(6):  # every record against the tree head held from before; an altered leaf's own
        # audit path never held it, so its record is checked against the newest tree head instead
        head = newest if (tampering, index) == ("altered", 3) else held
        with pytest.raises((RecordInvalid, NotFound)):
            proof = log.inclusion(new_log.conn, records[index].id, head.tree_size)
            verify_inclusion(_leaf(new_log.documents[index]), proof.leaf_index, head.tree_size, proof.audit_path,
                             head.root_hash)
    for index in range(3):  # the tree of the three leaves before the tampered one still holds
        proof = log.inclusion(new_log.conn, records[index].id, 3)
        verify_inclusion(_leaf(new_log.documents[index]), index, 3, proof.audit_path, new_log.head(3).root_hash)


def test_an_altered_leaf_no_longer_proves_its_record_even_against_the_newest_tree_head(new_log):
    records = new_log.issue(4)
    new_log.tamper(*TAMPERING["altered"])
    new_log.issue(1)
    with pytest.raises(RecordInvalid, match="does not lead to the root"):
        verify_bundle(bundle_of(new_log.conn, records[3].id, lambda: new_log.key), new_log.key.public_key())
    verify_bundle(bundle_of(new_log.conn, records[2].id, lambda: new_log.key), new_log.key.public_key())


@pytest.mark.parametrize("tampering", TAMPERING)
def test_the_log_refuses_to_sign_on_over_leaves_that_no_longer_match_its_tree_heads(new_log, tampering):
    new_log.issue(6)
    new_log.tamper(*(t for t in TAMPERING[tampering] if t != REWRITE))
    if tampering == "removed":  # back to 5 leaves: the next one would be leaf 5 again, under the signed size 6
        with pytest.raises(LogDamaged, match="no longer match the tree head it signed for size 6"):
            new_log.issue(1)
    else:  # the next tree head (size 7) is still signed, but never extends the one of size 6
        new_log.issue(1)
        with pytest.raises(RecordInvalid, match="consistency proof"):
            verify_consistency(6, 7, new_log.head(6).root_hash, new_log.head(7).root_hash, log.consistency(new_log.conn, 6, 7))
    assert new_log.conn.execute("SELECT count(*) FROM reference_record").fetchone()[0] == 6 + (tampering != "removed")


def test_a_leaf_removed_without_closing_the_gap_is_reported_as_damage(new_log, tmp_path):
    records = new_log.issue(4)
    old, new = _save(tmp_path / "old.json", new_log.head(2)), _save(tmp_path / "new.json", new_log.head(4))
    new_log.tamper("DELETE FROM transparency_leaf WHERE leaf_index = 1")
    with pytest.raises(LogDamaged, match="leaf 1 is missing"):
        log.inclusion(new_log.conn, records[2].id, 4)
    with pytest.raises(LogDamaged, match="leaf 1 is missing"):
        new_log.issue(1)
    audit = _cli("log", "audit", old, new, "--key", str(new_log.public_file), "--database-url", new_log.url)
    assert audit.returncode == 1 and audit.stderr.strip() == ("pilotlab: log audit FAILED: the transparency log is "
                                                              "damaged: leaf 1 is missing")


def test_concurrent_issuers_never_fork_the_log(new_log):
    def issue_five(worker: int) -> None:
        with psycopg.connect(new_log.url, autocommit=True) as conn:
            for k in range(5):
                document = sign({"format": RECORD_FORMAT, "pilot": {"id": new_log.pilot_id}, "worker": worker, "k": k},
                                new_log.key)
                record = IssuedRecord(record_id(document), new_log.pilot_id, ISSUED, "2", "eligible", 80.0, "k", document)
                with conn.transaction():
                    store_record(conn, record, new_log.key)

    threads = [threading.Thread(target=issue_five, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    documents = [bytes(d) for (d,) in new_log.conn.execute(
        "SELECT r.document FROM transparency_leaf l JOIN reference_record r ON r.id = l.record_id ORDER BY l.leaf_index")]
    assert len(documents) == 40 and log.size(new_log.conn) == 40
    sizes = [s for (s,) in new_log.conn.execute("SELECT tree_size FROM transparency_tree_head ORDER BY tree_size")]
    assert sizes == list(range(1, 41))  # one tree head per append, each over the leaves before it
    final = new_log.head(40)
    assert final.root_hash == root_hash([_leaf(d) for d in documents])
    for size in sizes:
        verify_consistency(size, 40, new_log.head(size).root_hash, final.root_hash, log.consistency(new_log.conn, size, 40))


def test_records_stored_before_the_log_join_it_in_issue_order(make_empty_database):
    url = make_empty_database()
    migrate(url, target=16)
    key = Ed25519PrivateKey.generate()
    documents = {}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO firm (id, name) VALUES ('f', 'Acme')")
        conn.execute("INSERT INTO pilot (id, firm_id, name, site, starts_at, status) VALUES ('p', 'f', 'Air', 'Town', "
                     "'2026-01-01Z', 'completed')")
        for minutes in (30, 10, 20):  # stored out of issue order
            documents[minutes] = sign({"format": RECORD_FORMAT, "pilot": {"id": "p"}, "minute": minutes}, key)
            conn.execute("INSERT INTO reference_record (id, pilot_id, issued_at, rubric_version, verdict, score, key_id, "
                         "document) VALUES (%s, 'p', %s, '1', 'eligible', 90, 'k', %s)",
                         (record_id(documents[minutes]), ISSUED + timedelta(minutes=minutes), documents[minutes]))
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        leaves = [bytes(h) for (h,) in conn.execute("SELECT leaf_hash FROM transparency_leaf ORDER BY leaf_index")]
        assert leaves == [_leaf(documents[m]) for m in (10, 20, 30)]
        head = log.current_tree_head(conn, lambda: key)  # signed on first use: the migration has no key
        assert head.tree_size == 3 and head.root_hash == root_hash(leaves)


def test_cli_writes_a_stored_records_bundle_and_the_tree_heads_from_the_database(new_log, tmp_path):
    records = new_log.issue(3)
    bundle, head = tmp_path / "bundle.json", tmp_path / "head.json"
    wrote = _cli("record", "bundle", records[1].id, "--out", str(bundle), "--tree-size", "2", "--database-url", new_log.url)
    assert wrote.returncode == 0, wrote.stderr
    verified = verify_bundle(bundle.read_bytes(), new_log.key.public_key())
    assert (verified.leaf_index, verified.tree_head.tree_size) == (1, 2)
    newest = _cli("log", "tree-head", "--out", str(head), "--database-url", new_log.url)
    assert newest.returncode == 0 and read_tree_head(head.read_bytes(), new_log.key.public_key()).tree_size == 3
    shown = _cli("log", "tree-head", "--tree-size", "1", "--database-url", new_log.url)
    assert read_tree_head(shown.stdout.strip().encode(), new_log.key.public_key()) == new_log.head(1)
    unknown = _cli("record", "bundle", "f" * 64, "--out", str(bundle), "--database-url", new_log.url)
    assert unknown.returncode == 2 and unknown.stderr.strip() == f"pilotlab: no reference record with id {'f' * 64!r}"
