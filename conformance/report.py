"""Conformance reports in the records' form: canonical JSON (RFC 8785) signed with Ed25519 by the
records' key (scoring.records.sign), and verified offline with the public key alone.

A report file is `{"record": {...}, "signature": {...}}` exactly as a reference record is, with
`record.format` = REPORT_FORMAT and in it: the run (id, window), the device (pilot, firm, kind,
transport, declared interval, profile and its measurements), the conformance profile (version and
SHA-256 of its file), every check (outcome, message, evidence, examples), the verdict
(`passed`: no check failed), the software version and the issue time.

Once stored it is a leaf of the records' transparency log (store/sql/0021), and its bundle — the
same form as a record's (scoring.transparency.bundle: the report, its inclusion proof and the
signed tree head) — proves that too. `verify_report` checks either form; any changed byte fails.

The envelope check repeats scoring.records.verify's but for the format it accepts: that function
takes reference records only (see the report of issue 17).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from conformance.checks import CheckResult, Outcome
from conformance.observations import Observations
from conformance.thresholds import LoadedThresholds
from pilotlab import __version__
from pilotlab.errors import InvalidRequest, RecordInvalid
from scoring.records import sign
from scoring.signing import key_id
from scoring.transparency.bundle import BUNDLE_FORMAT
from scoring.transparency.merkle import leaf_hash, verify_inclusion
from scoring.transparency.tree_head import TreeHead, hex_hash, verify_tree_head

REPORT_FORMAT = "pilotlab-conformance-report/1"


def report_body(run_id: str, o: Observations, results: list[CheckResult], thresholds: LoadedThresholds,
                issued_at: datetime) -> dict[str, Any]:
    d = o.device
    failed = [r.name for r in results if r.outcome is Outcome.FAIL]
    return {
        "format": REPORT_FORMAT,
        "run": {"id": run_id, "start": o.start, "end": o.end},
        "device": {"id": d.id, "pilot": d.pilot_id, "firm": d.firm_id, "kind": d.kind, "connectivity": d.connectivity,
                   "transport": d.transport, "reporting_interval_s": d.reporting_interval_s, "dev_eui": d.dev_eui,
                   "gateway": d.gateway_id,
                   "profile": None if d.profile_id is None else {"id": d.profile_id, "version": d.profile_version,
                                                                 "measurements": list(d.declared or ())}},
        "conformance_profile": {"version": thresholds.thresholds.version, "sha256": thresholds.digest},
        "checks": [{"name": r.name, "outcome": r.outcome.value, "message": r.message, "evidence": r.evidence,
                    "examples": r.examples} for r in results],
        "summary": {outcome.value: [r.name for r in results if r.outcome is outcome] for outcome in Outcome},
        "passed": not failed,
        "software": {"pilotlab": __version__},
        "issued_at": issued_at,
    }


def sign_report(body: dict[str, Any], key: Ed25519PrivateKey) -> bytes:
    return sign(body, key)


@dataclass(frozen=True)
class VerifiedReport:
    report: dict[str, Any]
    leaf_index: int | None = None       # a bundle: the report's leaf in the log
    tree_head: TreeHead | None = None   # a bundle: the signed tree head it is proven against


def _canonical(value: Any, document: bytes, what: str) -> None:
    try:
        canonical = rfc8785.dumps(value)
    except Exception:  # noqa: BLE001 - any value RFC 8785 cannot encode
        canonical = b""
    if canonical != document:
        raise RecordInvalid(f"the {what} is not in RFC 8785 canonical form: it was altered after signing")


def _report(document: bytes, public: Ed25519PublicKey) -> dict[str, Any]:
    """The report of a signed report file; RecordInvalid(reason) otherwise."""
    try:
        envelope = json.loads(document)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordInvalid(f"not JSON: {exc}") from None
    if not isinstance(envelope, dict) or set(envelope) != {"record", "signature"}:
        raise RecordInvalid("not a signed report: expected exactly the keys 'record' and 'signature'")
    _canonical(envelope, document, "file")
    signature, report = envelope["signature"], envelope["record"]
    if not isinstance(signature, dict) or signature.get("alg") != "Ed25519":
        raise RecordInvalid("signature.alg must be 'Ed25519'")
    if signature.get("key_id") != key_id(public):
        raise RecordInvalid(f"signed by key {signature.get('key_id')!r}, not by the given key {key_id(public)!r}")
    try:
        public.verify(base64.b64decode(str(signature.get("value")), validate=True), rfc8785.dumps(report))
    except (ValueError, InvalidSignature):
        raise RecordInvalid("the signature does not match the report: it was altered or signed by another key") from None
    if not isinstance(report, dict) or report.get("format") != REPORT_FORMAT:
        raise RecordInvalid(f"record.format is not {REPORT_FORMAT!r}: not a conformance report")
    return report


def _bundle(document: bytes, public: Ed25519PublicKey, trusted: TreeHead | None) -> VerifiedReport:
    bundle = json.loads(document)
    if set(bundle) != {"format", "record", "inclusion", "tree_head"} or not isinstance(bundle["record"], str):
        raise RecordInvalid(f"not a bundle: expected {BUNDLE_FORMAT!r} with record, inclusion and tree_head")
    _canonical(bundle, document, "bundle")
    entry = bundle["record"].encode("utf-8")
    report = _report(entry, public)
    head = verify_tree_head(bundle["tree_head"], public)
    proof = bundle["inclusion"]
    if not isinstance(proof, dict) or set(proof) != {"leaf_index", "tree_size", "audit_path"} \
            or any(isinstance(proof[k], bool) or not isinstance(proof[k], int) for k in ("leaf_index", "tree_size")) \
            or not isinstance(proof["audit_path"], list):
        raise RecordInvalid("inclusion: expected whole numbers leaf_index and tree_size and a list audit_path")
    path = [hex_hash(h) for h in proof["audit_path"]]
    if any(h is None for h in path):
        raise RecordInvalid("inclusion: audit_path must hold hashes of 64 lower-case hex digits")
    if proof["tree_size"] != head.tree_size:
        raise RecordInvalid(f"the inclusion proof is for tree size {proof['tree_size']}, the tree head is of size "
                            f"{head.tree_size}")
    verify_inclusion(leaf_hash(entry), proof["leaf_index"], head.tree_size, [h for h in path if h], head.root_hash)
    if trusted is not None and (trusted.tree_size, trusted.root_hash) != (head.tree_size, head.root_hash):
        raise RecordInvalid(f"the bundle proves inclusion in the tree of size {head.tree_size}, not in the given tree "
                            f"head's (size {trusted.tree_size}): ask for the bundle at tree_size={trusted.tree_size}")
    return VerifiedReport(report, proof["leaf_index"], head)


def is_bundle(document: bytes) -> bool:
    try:
        parsed = json.loads(document)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(parsed, dict) and parsed.get("format") == BUNDLE_FORMAT


def verify_report(document: bytes, public: Ed25519PublicKey, trusted: TreeHead | None = None) -> VerifiedReport:
    """A signed report, or its bundle (then also its inclusion in the log, against `trusted` if
    given), checked with the signer's public key; RecordInvalid(reason) if any byte is wrong."""
    if is_bundle(document):
        return _bundle(document, public, trusted)
    if trusted is not None:
        raise InvalidRequest("a bare report carries no inclusion proof: verify its bundle against the tree head "
                             "(`pilotlab conformance report REPORT_ID --out FILE`)")
    return VerifiedReport(_report(document, public))
