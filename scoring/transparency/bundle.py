"""Record bundles: a signed record with its inclusion proof and the tree head it proves against,
verified offline with the signer's public key alone.

A bundle is the RFC 8785 canonical JSON of

    {"format": "pilotlab-record-bundle/1",
     "record": "<the signed record file's text, exactly as issued>",
     "inclusion": {"leaf_index": i, "tree_size": N, "audit_path": ["<hex>", ...]},
     "tree_head": {<a signed tree head file of size N, as an object: scoring.transparency.tree_head>}}

Verification: the record's signature (scoring.records.verify), the tree head's signature, and the
audit path from SHA-256(0x00 || record bytes), computed here and never taken from the bundle, up
to the tree head's root. Given a tree head the verifier already trusts (one it audited), the
bundle must prove against exactly that one. As with records, the file must be exactly its
canonical form (hashes in lower-case hex), so any changed byte fails.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pilotlab.errors import RecordInvalid
from scoring.issuing import get_record
from scoring.records import RECORD_FORMATS, verify
from scoring.transparency.log import Inclusion, current_tree_head, inclusion, tree_head_at
from scoring.transparency.merkle import leaf_hash, verify_inclusion
from scoring.transparency.tree_head import TreeHead, hex_hash, verify_tree_head

BUNDLE_FORMAT = "pilotlab-record-bundle/1"


@dataclass(frozen=True)
class VerifiedBundle:
    record: dict[str, Any]
    leaf_index: int
    tree_head: TreeHead


def make_bundle(document: bytes, proof: Inclusion, head: TreeHead) -> bytes:
    if proof.tree_size != head.tree_size:
        raise ValueError(f"an inclusion proof for size {proof.tree_size} against a tree head of size {head.tree_size}")
    return rfc8785.dumps({"format": BUNDLE_FORMAT, "record": document.decode("utf-8"),
                          "inclusion": {"leaf_index": proof.leaf_index, "tree_size": proof.tree_size,
                                        "audit_path": [h.hex() for h in proof.audit_path]},
                          "tree_head": head.envelope()})


def is_bundle(document: bytes) -> bool:
    try:
        parsed = json.loads(document)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(parsed, dict) and parsed.get("format") == BUNDLE_FORMAT


def verify_bundle(document: bytes, public: Ed25519PublicKey, trusted: TreeHead | None = None,
                  formats: tuple[str, ...] = RECORD_FORMATS) -> VerifiedBundle:
    """The record (of one of `formats`), its leaf index and tree head if the bundle holds; else
    RecordInvalid(reason)."""
    try:
        bundle = json.loads(document)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordInvalid(f"not JSON: {exc}") from None
    if not isinstance(bundle, dict) or set(bundle) != {"format", "record", "inclusion", "tree_head"} \
            or bundle["format"] != BUNDLE_FORMAT or not isinstance(bundle["record"], str):
        raise RecordInvalid(f"not a record bundle: expected {BUNDLE_FORMAT!r} with record, inclusion and tree_head")
    try:
        canonical = rfc8785.dumps(bundle)
    except Exception:  # noqa: BLE001 - any value RFC 8785 cannot encode
        canonical = b""
    if canonical != document:
        raise RecordInvalid("the bundle is not in RFC 8785 canonical form: it was altered after it was made")
    entry = bundle["record"].encode("utf-8")
    record = verify(entry, public, formats)
    head = verify_tree_head(bundle["tree_head"], public)
    index, tree_size, path = _inclusion(bundle["inclusion"])
    if tree_size != head.tree_size:
        raise RecordInvalid(f"the inclusion proof is for tree size {tree_size}, the tree head is of size {head.tree_size}")
    verify_inclusion(leaf_hash(entry), index, tree_size, path, head.root_hash)
    if trusted is not None and (trusted.tree_size, trusted.root_hash) != (head.tree_size, head.root_hash):
        raise RecordInvalid(f"the bundle proves inclusion in the tree of size {head.tree_size}, not in the given tree "
                            f"head's (size {trusted.tree_size}, root {trusted.root_hash.hex()[:16]}…): ask for the "
                            f"bundle at tree_size={trusted.tree_size}")
    return VerifiedBundle(record, index, head)


def _inclusion(given: Any) -> tuple[int, int, list[bytes]]:
    if not isinstance(given, dict) or set(given) != {"leaf_index", "tree_size", "audit_path"}:
        raise RecordInvalid("inclusion: expected exactly leaf_index, tree_size and audit_path")
    index, tree_size, path = given["leaf_index"], given["tree_size"], given["audit_path"]
    if any(isinstance(n, bool) or not isinstance(n, int) for n in (index, tree_size)) or not isinstance(path, list):
        raise RecordInvalid("inclusion: leaf_index and tree_size must be whole numbers, audit_path a list")
    hashes = [hex_hash(h) for h in path]
    if any(h is None for h in hashes):
        raise RecordInvalid("inclusion: audit_path must hold hashes of 64 lower-case hex digits")
    return index, tree_size, [h for h in hashes if h is not None]


def bundle_of(conn: psycopg.Connection, record_id: str, key: Callable[[], Ed25519PrivateKey],
              tree_size: int | None = None) -> bytes:
    """The stored record's bundle against the signed tree head of `tree_size` (default: the
    newest, signing one with `key()` if leaves were appended without one)."""
    document = get_record(conn, record_id).document
    head = current_tree_head(conn, key) if tree_size is None else tree_head_at(conn, tree_size)
    return make_bundle(document, inclusion(conn, record_id, head.tree_size), head)
