"""The transparency log in PostgreSQL (migration 0017): its leaves, signed tree heads and proofs.

The database appends a leaf whenever a reference record is stored (a trigger, under a lock, so
concurrent issuers queue rather than fork the log); `sign_pending` signs the tree head of the new
size in the same transaction (scoring.issuing.store_record). Proofs are computed from the stored
leaf hashes up to the tree size asked for: whatever the rows say now, a verifier holding an older
signed tree head finds out if they were changed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pilotlab.errors import InvalidRequest, NotFound, PilotlabError
from scoring.transparency.merkle import consistency_proof, inclusion_proof, root_hash
from scoring.transparency.tree_head import TreeHead, sign_tree_head


class LogDamaged(PilotlabError):
    """The stored leaves are not the unbroken sequence 0..n-1 the log must be: rows were removed
    behind the back of its append-only triggers."""


@dataclass(frozen=True)
class Inclusion:
    record_id: str
    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    audit_path: list[bytes]

    def as_json(self) -> dict[str, Any]:
        return {"record_id": self.record_id, "leaf_index": self.leaf_index, "tree_size": self.tree_size,
                "leaf_hash": self.leaf_hash.hex(), "audit_path": [h.hex() for h in self.audit_path]}


_LOCK = "LOCK TABLE transparency_leaf IN SHARE ROW EXCLUSIVE MODE"
_HEAD = "SELECT tree_size, root_hash, key_id, document FROM transparency_tree_head"


def size(conn: psycopg.Connection) -> int:
    """The number of leaves in the log."""
    row = conn.execute("SELECT coalesce(max(leaf_index) + 1, 0) FROM transparency_leaf").fetchone()
    return int(row[0]) if row else 0


def leaves(conn: psycopg.Connection, tree_size: int) -> list[bytes]:
    """The leaf hashes of the first `tree_size` leaves, in order."""
    rows = conn.execute("SELECT leaf_index, leaf_hash FROM transparency_leaf WHERE leaf_index < %s ORDER BY leaf_index",
                        (tree_size,)).fetchall()
    for position, (index, _) in enumerate(rows):
        if index != position:
            raise LogDamaged(f"the transparency log is damaged: leaf {position} is missing")
    if len(rows) != tree_size:
        raise LogDamaged(f"the transparency log is damaged: it has {len(rows)} of its first {tree_size} leaves")
    return [bytes(h) for _, h in rows]


def sign_pending(conn: psycopg.Connection, key: Ed25519PrivateKey) -> TreeHead:
    """The signed tree head of the log's current size, signing it now if there is none yet."""
    with conn.transaction():
        conn.execute(_LOCK)
        current = size(conn)
        root = root_hash(leaves(conn, current))
        signed = _head(conn, "WHERE tree_size = %s", (current,))
        if signed is not None:
            if signed.root_hash != root:
                raise LogDamaged(f"the transparency log is damaged: its leaves no longer match the tree head it "
                                 f"signed for size {current}")
            return signed
        head = sign_tree_head(current, root, key)
        conn.execute("INSERT INTO transparency_tree_head (tree_size, root_hash, key_id, document) VALUES (%s, %s, %s, %s)",
                     (head.tree_size, head.root_hash, head.key_id, head.document))
        return head


def current_tree_head(conn: psycopg.Connection, key: Callable[[], Ed25519PrivateKey]) -> TreeHead:
    """The newest signed tree head if it covers every leaf; else one signed now with `key()`
    (leaves appended without one: records from before the log, or stored by hand)."""
    latest = latest_tree_head(conn)
    if latest is not None and latest.tree_size == size(conn):
        return latest
    return sign_pending(conn, key())


def latest_tree_head(conn: psycopg.Connection) -> TreeHead | None:
    return _head(conn, "ORDER BY tree_size DESC LIMIT 1", ())


def tree_head_at(conn: psycopg.Connection, tree_size: int) -> TreeHead:
    head = _head(conn, "WHERE tree_size = %s", (tree_size,))
    if head is None:
        raise NotFound(f"no signed tree head of size {tree_size}")
    return head


def _head(conn: psycopg.Connection, where: str, params: tuple[Any, ...]) -> TreeHead | None:
    row = conn.execute(f"{_HEAD} {where}".encode(), params).fetchone()  # fixed clauses of this module
    if row is None:
        return None
    document = bytes(row[3])
    return TreeHead(int(row[0]), bytes(row[1]), _timestamp(document), row[2], document)


def _timestamp(document: bytes) -> str:
    return str(json.loads(document)["tree_head"]["timestamp"])


def leaf_index(conn: psycopg.Connection, record_id: str) -> int:
    row = conn.execute("SELECT leaf_index FROM transparency_leaf WHERE record_id = %s", (record_id,)).fetchone()
    if row is None:
        raise NotFound(f"no record with id {record_id!r} in the transparency log")
    return int(row[0])


def inclusion(conn: psycopg.Connection, record_id: str, tree_size: int) -> Inclusion:
    """The record's audit path in the tree of the first `tree_size` leaves."""
    index = leaf_index(conn, record_id)
    _check_size(conn, tree_size, at_least=index + 1, what=f"record {record_id[:12]}… is leaf {index}")
    hashes = leaves(conn, tree_size)
    return Inclusion(record_id, index, tree_size, hashes[index], inclusion_proof(index, hashes))


def consistency(conn: psycopg.Connection, first: int, second: int) -> list[bytes]:
    """The RFC 9162 proof that the tree of `first` leaves is a prefix of the tree of `second`."""
    if first > second:
        raise InvalidRequest(f"first ({first}) must not be larger than second ({second})")
    _check_size(conn, second, at_least=0, what="")
    return consistency_proof(first, leaves(conn, second))


def _check_size(conn: psycopg.Connection, tree_size: int, *, at_least: int, what: str) -> None:
    current = size(conn)
    if not at_least <= tree_size <= current:
        because = f"{what}; " if what else ""
        raise InvalidRequest(f"tree_size {tree_size} is out of range: {because}the log holds {current} leaves")
