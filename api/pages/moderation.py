"""The moderation queue of residents' comments (/ui/moderation, admin): each waiting comment with its
pilot, device, rating and category, oldest first; approving shows it on its pilot's feedback page,
rejecting erases its text. Ratings count from the start, whatever their comment becomes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from starlette.responses import RedirectResponse, Response

from api.database import Db
from api.pages import feedback_words
from api.pages.guard import PREFIX
from api.pages.templates import render
from store import feedback

router = APIRouter()


@router.get("/moderation")
def moderation_queue(request: Request, conn: Db) -> Response:
    return render(request, "moderation.html", {"pending": feedback.pending_comments(conn),
                                               "categories": feedback_words.CATEGORY_LABELS})


@router.post("/moderation/{feedback_id}")
def moderate(request: Request, feedback_id: int, conn: Db, decision: Annotated[str, Form()] = "") -> Response:
    if decision not in ("approve", "reject"):
        raise HTTPException(422, "decision must be 'approve' or 'reject'")
    feedback.moderate(conn, feedback_id, decision == "approve", by=request.state.page_session.principal.key_id)
    return RedirectResponse(f"{PREFIX}/moderation", status_code=303)
