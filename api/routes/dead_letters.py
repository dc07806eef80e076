"""Messages the ingest refused, newest first, with the reason code and detail."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from api.database import Db
from api.schemas import DeadLetterOut, DeadLetterPage, Problem
from pilotlab.errors import RejectReason
from store import readings

router = APIRouter(tags=["dead letters"], responses={422: {"model": Problem}})

PREVIEW_CHARS = 200


def preview(payload: bytes) -> str:
    """The payload as UTF-8 text (bad bytes as U+FFFD), cut to PREVIEW_CHARS with a trailing '…'."""
    text = payload.decode("utf-8", errors="replace")
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + "…"


def _out(letter: readings.DeadLetter) -> DeadLetterOut:
    return DeadLetterOut(id=letter.id, received_at=letter.received_at, topic=letter.topic, reason=letter.reason,
                         detail=letter.detail, pilot_id=letter.pilot_id, device_id=letter.device_id,
                         size_bytes=letter.payload_size, payload_truncated=letter.payload_truncated,
                         payload_base64=base64.b64encode(letter.payload).decode("ascii"),
                         payload_preview=preview(letter.payload))


@router.get("/dead-letters", response_model=DeadLetterPage, summary="List refused messages")
def list_dead_letters(
    conn: Db,
    reason: Annotated[RejectReason | None, Query(description="only this reason code")] = None,
    pilot_id: Annotated[str | None, Query(description="only messages whose topic named this pilot")] = None,
    device_id: Annotated[str | None, Query(description="only messages whose topic named this device")] = None,
    since: Annotated[AwareDatetime | None, Query(description="only those received at or after this time")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="at most this many (1-1000)")] = 100,
) -> DeadLetterPage:
    """Each has the raw payload as base64 (a payload over `dead_letter_prefix_bytes` only its first
    bytes: `payload_truncated`, with the true `size_bytes`) and a UTF-8 preview; `truncated` says
    more matched."""
    letters, truncated = readings.list_dead_letters(
        conn, reason=reason.value if reason else None, pilot_id=pilot_id, device_id=device_id,
        since=since, limit=limit)
    return DeadLetterPage(limit=limit, truncated=truncated, dead_letters=[_out(x) for x in letters])
