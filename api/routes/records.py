"""Signed reference records: issue, fetch, verify, and the public key reviewers verify with."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from api.database import Db, ScoringDb
from api.routes.scores import AsOf, rubric_of
from api.schemas import Problem
from pilotlab.errors import RecordInvalid
from scoring.issuing import IssuedRecord, get_record, issue_record, list_records
from scoring.records import plain, verify
from scoring.signing import public_key_from_pem, public_pem

router = APIRouter(tags=["records"], responses={404: {"model": Problem}, 422: {"model": Problem}})


class VerifyIn(BaseModel):
    document: str = Field(description="the signed record file, exactly as issued")
    public_key: str | None = Field(default=None, description="signer's Ed25519 public key (PEM); default: this server's")


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


@router.get("/records/{record_id}", summary="A signed record, byte for byte as issued")
def fetch(record_id: str, conn: Db) -> Response:
    return Response(get_record(conn, record_id).document, media_type="application/json")


@router.post("/records/verify", summary="Verify a signed record: valid, or the reason it is not")
def verify_record(body: VerifyIn, request: Request) -> dict[str, Any]:
    if body.public_key is not None:
        key = public_key_from_pem(body.public_key.encode())
    else:
        key = request.app.state.scoring.private_key().public_key()
    try:
        record = verify(body.document.encode(), key)
    except RecordInvalid as exc:
        return {"valid": False, "reason": str(exc)}
    return {"valid": True, "reason": None, "pilot_id": record["pilot"]["id"], "verdict": record["verdict"],
            "score": record["score"], "issued_at": record["issued_at"]}
