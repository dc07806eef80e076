"""Signed tree heads: the log's signature over its size and root at a moment.

A tree head file is the RFC 8785 canonical JSON of

    {"tree_head": {"format": "pilotlab-tree-head/1", "log_id": "<hex>", "tree_size": N,
                   "root_hash": "<hex>", "timestamp": "2026-12-01T09:00:00.123Z"},
     "signature": {"alg": "Ed25519", "key_id": "<hex>", "value": "<base64>"}}

where `value` is the Ed25519 signature over the canonical bytes of `tree_head`, made with the key
that signs reference records (scoring.signing). `log_id` is SHA-256 of the log key's raw public
key (as RFC 6962's LogID), `key_id` its first 16 hex digits (as on records), `root_hash` the
RFC 9162 tree hash of the first N leaves (lower-case hex). As with records, a file must be exactly
its canonical form, so any changed byte fails.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pilotlab.errors import RecordInvalid
from scoring.signing import key_id

TREE_HEAD_FORMAT = "pilotlab-tree-head/1"
_FIELDS = {"format", "log_id", "tree_size", "root_hash", "timestamp"}


@dataclass(frozen=True)
class TreeHead:
    tree_size: int
    root_hash: bytes
    timestamp: str          # RFC 3339, UTC, milliseconds
    key_id: str
    document: bytes         # the signed file (canonical JSON)

    def envelope(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.document)
        return parsed


def hex_hash(text: Any) -> bytes | None:
    """The 32-byte hash `text` spells in lower-case hex (the one spelling accepted), else None."""
    if not isinstance(text, str) or len(text) != 64:
        return None
    try:
        value = bytes.fromhex(text)
    except ValueError:
        return None
    return value if value.hex() == text else None


def log_id(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).hexdigest()


def sign_tree_head(tree_size: int, root: bytes, key: Ed25519PrivateKey, at: datetime | None = None) -> TreeHead:
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    timestamp = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    body: dict[str, Any] = {"format": TREE_HEAD_FORMAT, "log_id": log_id(key.public_key()), "tree_size": tree_size,
                            "root_hash": root.hex(), "timestamp": timestamp}
    signature: dict[str, Any] = {"alg": "Ed25519", "key_id": key_id(key.public_key()),
                                 "value": base64.b64encode(key.sign(rfc8785.dumps(body))).decode("ascii")}
    document = rfc8785.dumps({"tree_head": body, "signature": signature})
    return TreeHead(tree_size, root, timestamp, signature["key_id"], document)


def read_tree_head(document: bytes, public: Ed25519PublicKey) -> TreeHead:
    """The tree head in a file, its signature checked with `public`; else RecordInvalid(reason)."""
    try:
        envelope = json.loads(document)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordInvalid(f"tree head: not JSON: {exc}") from None
    head = verify_tree_head(envelope, public)
    if head.document != document:
        raise RecordInvalid("tree head: the file is not in RFC 8785 canonical form: it was altered after signing")
    return head


def verify_tree_head(envelope: Any, public: Ed25519PublicKey) -> TreeHead:
    """The tree head of a parsed tree head file, its signature checked; else RecordInvalid(reason)."""
    if not isinstance(envelope, dict) or set(envelope) != {"tree_head", "signature"}:
        raise RecordInvalid("not a signed tree head: expected exactly the keys 'tree_head' and 'signature'")
    body, signature = envelope["tree_head"], envelope["signature"]
    if not isinstance(body, dict) or set(body) != _FIELDS or body["format"] != TREE_HEAD_FORMAT:
        raise RecordInvalid(f"tree head: expected {TREE_HEAD_FORMAT!r} with exactly {sorted(_FIELDS)}")
    size, root = body["tree_size"], body["root_hash"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise RecordInvalid("tree head: tree_size must be a whole number >= 0")
    root_hash = hex_hash(root)
    if root_hash is None:
        raise RecordInvalid("tree head: root_hash must be 64 lower-case hex digits")
    if not isinstance(body["timestamp"], str) or not isinstance(body["log_id"], str):
        raise RecordInvalid("tree head: timestamp and log_id must be strings")
    if not isinstance(signature, dict) or signature.get("alg") != "Ed25519":
        raise RecordInvalid("tree head: signature.alg must be 'Ed25519'")
    if signature.get("key_id") != key_id(public) or body["log_id"] != log_id(public):
        raise RecordInvalid(f"tree head signed by key {signature.get('key_id')!r}, not by the given key {key_id(public)!r}")
    try:
        public.verify(base64.b64decode(str(signature.get("value")), validate=True), rfc8785.dumps(body))
    except (ValueError, InvalidSignature):
        raise RecordInvalid(f"tree head of size {size}: the signature does not match: it was altered") from None
    return TreeHead(size, root_hash, str(body["timestamp"]), str(signature["key_id"]), rfc8785.dumps(envelope))
