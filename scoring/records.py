"""Signed reference records: canonical JSON (RFC 8785) signed with Ed25519.

A record file is the RFC 8785 canonical JSON of

    {"record": {...}, "signature": {"alg": "Ed25519", "key_id": "...", "value": "<base64>"}}

where `value` signs the canonical bytes of `record`. `record` holds the pilot, firm, window, fleet
summary, pooled metrics, components, gates, score, verdict, rubric version and digest, evidence
(its digest, and from format 2 the breakdown of the fleet and of every device: scoring.breakdown,
latency percentiles exact), software version and issue time. Numbers are rounded to 6 decimals
before canonicalisation, so scoring the same data twice gives byte-identical records but for
`issued_at` and the signature. Records of format 1 (before the breakdown) verify as they did.

Verification needs only the file and the public key: the file must be exactly its own canonical
form (so any changed byte, even outside a value, fails), the key id must match, and the signature
must verify over the canonical `record`.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import math
from datetime import UTC, datetime
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pilotlab.errors import RecordInvalid
from scoring.signing import key_id

RECORD_FORMAT = "pilotlab-reference-record/2"
RECORD_FORMATS = ("pilotlab-reference-record/1", RECORD_FORMAT)  # what verify accepts
DECIMALS = 6


def plain(value: Any) -> Any:
    """JSON-ready, deterministic form: floats rounded, datetimes as UTC RFC 3339, dataclasses as dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        rounded = round(value, DECIMALS)
        return 0.0 if rounded == 0 else rounded
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return str(value)


def sign(record: dict[str, Any], key: Ed25519PrivateKey) -> bytes:
    """The signed record file's bytes."""
    body = plain(record)
    signature = key.sign(rfc8785.dumps(body))
    envelope = {"record": body,
                "signature": {"alg": "Ed25519", "key_id": key_id(key.public_key()),
                              "value": base64.b64encode(signature).decode("ascii")}}
    return rfc8785.dumps(envelope)


def record_id(document: bytes) -> str:
    return hashlib.sha256(document).hexdigest()


def verify(document: bytes, public: Ed25519PublicKey, formats: tuple[str, ...] = RECORD_FORMATS) -> dict[str, Any]:
    """The record if `document` is a valid signed record for `public` of one of `formats` (the
    records' form also carries conformance reports); else RecordInvalid(reason)."""
    try:
        envelope = json.loads(document)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordInvalid(f"not JSON: {exc}") from None
    if not isinstance(envelope, dict) or set(envelope) != {"record", "signature"}:
        raise RecordInvalid("not a signed record: expected exactly the keys 'record' and 'signature'")
    try:
        canonical = rfc8785.dumps(envelope)
    except Exception as exc:  # noqa: BLE001 - any value RFC 8785 cannot encode
        raise RecordInvalid(f"cannot be canonicalised: {exc}") from None
    if canonical != document:
        raise RecordInvalid("the file is not in RFC 8785 canonical form: it was altered after signing")
    signature = envelope["signature"]
    if not isinstance(signature, dict) or signature.get("alg") != "Ed25519":
        raise RecordInvalid("signature.alg must be 'Ed25519'")
    if signature.get("key_id") != key_id(public):
        raise RecordInvalid(f"signed by key {signature.get('key_id')!r}, not by the given key {key_id(public)!r}")
    try:
        raw = base64.b64decode(str(signature.get("value")), validate=True)
    except ValueError:
        raise RecordInvalid("signature.value is not base64") from None
    record = envelope["record"]
    try:
        public.verify(raw, rfc8785.dumps(record))
    except InvalidSignature:
        raise RecordInvalid("the signature does not match the record: it was altered or signed by another key") from None
    if not isinstance(record, dict) or record.get("format") not in formats:
        raise RecordInvalid(f"record.format is not one of {', '.join(map(repr, formats))}")
    return record
