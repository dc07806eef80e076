"""Record files to download from the pages (/ui/records/{record_id}): the signed record as issued,
or with ?bundle=1 its bundle (record, inclusion proof, signed tree head), which the verification
page checks offline. Under the record's rule, as GET /records/{id}."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from api.database import Db
from scoring.issuing import get_record
from scoring.transparency.bundle import bundle_of

router = APIRouter()


@router.get("/records/{record_id}")
def record_file(request: Request, record_id: str, conn: Db, bundle: Annotated[bool, Query()] = False) -> Response:
    if bundle:
        document = bundle_of(conn, record_id, request.app.state.scoring.private_key)
        name = f"pilotlab-record-{record_id[:16]}.bundle.json"
    else:
        document = get_record(conn, record_id).document
        name = f"pilotlab-record-{record_id[:16]}.json"
    return Response(document, media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})
