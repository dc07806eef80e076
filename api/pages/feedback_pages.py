"""A pilot's residents' feedback for signed-in users: what residents said (/ui/pilots/{id}/feedback:
ratings, categories, per device, approved comments), and the printable QR sticker sheet
(/ui/pilots/{id}/feedback/stickers: one sticker for the pilot and one per device in service, each
code rotatable, which retires the old sticker at once)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from api.database import Db
from api.pages import feedback_words, pilot_query, stickers
from api.pages.guard import PREFIX
from api.pages.templates import render
from store import feedback

router = APIRouter()
PILOT_CODE = "pilot"  # the rotate form's `target` for the pilot's own code (else a device id)


@router.get("/pilots/{pilot_id}/feedback")
def pilot_feedback(request: Request, pilot_id: str, conn: Db) -> Response:
    pilot = pilot_query.pilot(conn, pilot_id)
    found = feedback.tally(conn, pilot_id)
    return render(request, "feedback.html", {
        "pilot": pilot, "tally": found, "by_target": feedback.ratings_by_target(conn, pilot_id),
        "comments": feedback.approved_comments(conn, pilot_id), "ratings": feedback_words.RATINGS,
        "categories": feedback_words.CATEGORY_LABELS,
        "rubric": request.app.state.scoring.rubric().rubric})


@router.get("/pilots/{pilot_id}/feedback/stickers")
def sticker_sheet(request: Request, pilot_id: str, conn: Db) -> Response:
    pilot = pilot_query.pilot(conn, pilot_id)
    public_url = request.app.state.settings.public_url
    sheet = []
    for code in feedback.pilot_codes(conn, pilot_id):
        url = stickers.feedback_url(request, public_url, code.code)
        sheet.append({"target": code, "url": url, "qr": stickers.qr_svg_data_uri(url)})
    return render(request, "stickers.html", {"pilot": pilot, "stickers": sheet, "pilot_code": PILOT_CODE})


@router.post("/pilots/{pilot_id}/feedback/stickers")
def rotate_code(pilot_id: str, conn: Db, target: Annotated[str, Form()] = PILOT_CODE) -> Response:
    feedback.rotate(conn, pilot_id, None if target == PILOT_CODE else target)
    return RedirectResponse(f"{PREFIX}/pilots/{pilot_id}/feedback/stickers", status_code=303)
