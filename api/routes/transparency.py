"""The transparency log of reference records: signed tree heads, inclusion and consistency proofs.

Public, like POST /records/verify: what they show is hashes and sizes (and how many records were
issued), never a record's content, and a city must be able to audit the log without an API key.
A record's bundle (the record with its proof) is the record itself, so it stays under the
record's own rule: GET /records/{id}?bundle=true (api.routes.records).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from api.database import Db
from api.schemas import Problem
from scoring.transparency.log import consistency, current_tree_head, inclusion, tree_head_at

router = APIRouter(tags=["records"], responses={404: {"model": Problem}, 422: {"model": Problem}})

MAX_SIZE = 2**62
TreeSize = Annotated[int | None, Query(ge=0, le=MAX_SIZE, description="a tree size; default: the newest signed tree head's")]


@router.get("/log/tree-head", summary="The log's newest signed tree head, or the one of ?tree_size=N",
            description="The signed tree head file (scoring/transparency/tree_head.py): RFC 8785 JSON "
                        '`{"tree_head": {"format", "log_id", "tree_size", "root_hash", "timestamp"}, "signature"}`, '
                        "signed with the records' key (GET /records/public-key). Needs no API key.")
def tree_head(conn: Db, request: Request, tree_size: TreeSize = None) -> Response:
    head = current_tree_head(conn, request.app.state.scoring.private_key) if tree_size is None \
        else tree_head_at(conn, tree_size)
    return Response(head.document, media_type="application/json")


@router.get("/log/consistency", summary="RFC 9162 consistency proof between two tree sizes",
            description="The hashes (hex, RFC 9162 §2.1.4 order) proving the tree of `first` leaves is a prefix "
                        "of the tree of `second`. Needs no API key.")
def consistency_proof(conn: Db, first: Annotated[int, Query(ge=0, le=MAX_SIZE)],
                      second: Annotated[int, Query(ge=0, le=MAX_SIZE)]) -> dict[str, Any]:
    return {"first": first, "second": second, "proof": [h.hex() for h in consistency(conn, first, second)]}


@router.get("/records/{record_id}/inclusion", summary="RFC 9162 inclusion proof of a record in the log",
            description="The record's leaf index, leaf hash and audit path (hex) in the tree of `tree_size` leaves. "
                        "Needs no API key.")
def inclusion_proof(record_id: str, conn: Db, request: Request, tree_size: TreeSize = None) -> dict[str, Any]:
    if tree_size is None:
        tree_size = current_tree_head(conn, request.app.state.scoring.private_key).tree_size
    return inclusion(conn, record_id, tree_size).as_json()
