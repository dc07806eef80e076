"""Signed reference records: issue, fetch, verify, and the public key reviewers verify with."""

from __future__ import annotations

from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.database import Db, ScoringDb
from api.routes.scores import AsOf, rubric_of
from api.routes.transparency import TreeSize
from api.schemas import Problem
from pilotlab.errors import ConfigError, InvalidRequest, RecordInvalid
from scoring.issuing import IssuedRecord, get_record, issue_record, list_records
from scoring.records import plain, verify
from scoring.signing import public_key_from_pem, public_pem
from scoring.transparency.bundle import bundle_of

router = APIRouter(tags=["records"], responses={404: {"model": Problem}, 422: {"model": Problem}})


class VerifyIn(BaseModel):
    """The wrapped form: the file's text in a JSON string, and optionally the key to verify with."""

    model_config = ConfigDict(extra="forbid")

    document: str = Field(description="the signed record file's text, exactly as issued")
    public_key: str | None = Field(default=None, description="signer's Ed25519 public key (PEM); default: this server's")


class SignedRecordFile(BaseModel):
    """The record file itself, as issued (for the docs: it is verified byte for byte, never parsed
    into this model)."""

    record: dict[str, Any] = Field(description="pilot, window, metrics, gates, score, verdict, … in RFC 8785 form")
    signature: dict[str, str] = Field(description='{"alg": "Ed25519", "key_id": "…", "value": "<base64>"}')


class VerifyOut(BaseModel):
    valid: bool
    reason: str | None = Field(description="why the record is not valid; null when it is")
    pilot_id: str | None = Field(default=None, description="the record's (valid records only)")
    verdict: str | None = None
    score: float | None = None
    issued_at: str | None = None


# Either form, told apart by its keys: a body naming "document" is the wrapped form.
_VERIFY_BODY = {"required": True, "content": {"application/json": {"schema": {"oneOf": [
    SignedRecordFile.model_json_schema(), VerifyIn.model_json_schema()]}}}}


def _meta(r: IssuedRecord) -> dict[str, Any]:
    return plain({"id": r.id, "pilot_id": r.pilot_id, "issued_at": r.issued_at, "rubric_version": r.rubric_version,
                  "verdict": r.verdict, "score": r.score, "key_id": r.key_id, "url": f"/records/{r.id}"})


@router.post("/pilots/{pilot_id}/records", status_code=201, summary="Score the pilot and issue a signed reference record")
def issue(pilot_id: str, conn: ScoringDb, request: Request, as_of: AsOf = None) -> dict[str, Any]:
    key = request.app.state.scoring.private_key()
    return _meta(issue_record(conn, pilot_id, rubric_of(request), key, as_of=as_of))


@router.get("/pilots/{pilot_id}/records", summary="Records issued for a pilot (newest first)")
def records_of(pilot_id: str, conn: Db) -> list[dict[str, Any]]:
    return [_meta(r) for r in list_records(conn, pilot_id)]


@router.get("/records/public-key", summary="The public key records are signed with (PEM)")
def public_key(request: Request) -> Response:
    key = request.app.state.scoring.private_key()
    return Response(public_pem(key.public_key()), media_type="application/x-pem-file")


@router.get("/records/{record_id}", summary="A signed record, byte for byte as issued; or its bundle",
            description="With `bundle=true`: the record with its inclusion proof and the signed tree head it "
                        "proves against (`tree_size`, default the newest), verifiable offline with "
                        "`pilotlab record verify` (scoring/transparency/bundle.py).")
def fetch(record_id: str, conn: Db, request: Request, bundle: bool = False, tree_size: TreeSize = None) -> Response:
    if bundle:
        return Response(bundle_of(conn, record_id, request.app.state.scoring.private_key, tree_size),
                        media_type="application/json")
    return Response(get_record(conn, record_id).document, media_type="application/json")


@router.post("/records/verify", summary="Verify a signed record: valid, or the reason it is not",
             description="Post the record file itself as the body (`curl --data-binary @record.json`; any "
                         "content type, the bytes are checked as they are), verified with this server's key; or "
                         '`{"document": "<the file\'s text>", "public_key": "<PEM>"}` to name another key. '
                         "Needs no API key.",
             responses={200: {"model": VerifyOut}}, openapi_extra={"requestBody": _VERIFY_BODY})
async def verify_record(request: Request) -> dict[str, Any]:
    body = await request.body()
    wrapped = _wrapped(body)
    if wrapped is None:
        document, key = body, request.app.state.scoring.private_key().public_key()
    else:
        document = wrapped.document.encode()
        key = _given_key(wrapped.public_key) if wrapped.public_key is not None \
            else request.app.state.scoring.private_key().public_key()
    try:
        record = verify(document, key)
    except RecordInvalid as exc:
        return {"valid": False, "reason": str(exc)}
    return {"valid": True, "reason": None, "pilot_id": record["pilot"]["id"], "verdict": record["verdict"],
            "score": record["score"], "issued_at": record["issued_at"]}


def _wrapped(body: bytes) -> VerifyIn | None:
    """The wrapped form if the body is one (a JSON object naming "document"), else None: the body
    is then the record file itself."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(parsed, dict) or "document" not in parsed:
        return None
    try:
        return VerifyIn.model_validate(parsed)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]) from None


def _given_key(pem: str) -> Ed25519PublicKey:
    try:
        return public_key_from_pem(pem.encode())
    except ConfigError as exc:  # the caller's key, not the server's configuration
        raise InvalidRequest(f"public_key: {exc}") from None
