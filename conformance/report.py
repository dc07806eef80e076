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

Verification is the records' own (scoring.records.verify, scoring.transparency.bundle.verify_bundle),
accepting this report format only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from conformance.checks import CheckResult, Outcome
from conformance.observations import Observations
from conformance.thresholds import LoadedThresholds
from pilotlab import __version__
from pilotlab.errors import InvalidRequest
from scoring.records import sign, verify
from scoring.transparency.bundle import is_bundle, verify_bundle
from scoring.transparency.tree_head import TreeHead

__all__ = ["REPORT_FORMAT", "VerifiedReport", "is_bundle", "report_body", "sign_report", "verify_report"]

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


def verify_report(document: bytes, public: Ed25519PublicKey, trusted: TreeHead | None = None) -> VerifiedReport:
    """A signed report, or its bundle (then also its inclusion in the log, against `trusted` if
    given), checked with the signer's public key; RecordInvalid(reason) if any byte is wrong."""
    if is_bundle(document):
        verified = verify_bundle(document, public, trusted, formats=(REPORT_FORMAT,))
        return VerifiedReport(verified.record, verified.leaf_index, verified.tree_head)
    if trusted is not None:
        raise InvalidRequest("a bare report carries no inclusion proof: verify its bundle against the tree head "
                             "(`pilotlab conformance report REPORT_ID --out FILE`)")
    return VerifiedReport(verify(document, public, formats=(REPORT_FORMAT,)))
