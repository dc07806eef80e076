"""The residents' feedback form (/ui/feedback/{code}), public: what a QR sticker opens. No sign-in
and no personal data: a rating, a category and an optional short comment, sent with the anonymous
CSRF token (api.pages.csrf: a double-submit cookie); the sender's address reaches store.feedback
only to be hashed with the period's salt (store.client_hashes). A response that is accepted is
answered by a redirect to the thanks (so reloading sends nothing); a duplicate is thanked without
being stored again; a response over a limit gets 429 and the form back as typed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from pydantic import BaseModel, Field, ValidationError, field_validator
from starlette.responses import RedirectResponse, Response

from api.database import Db
from api.pages import feedback_words
from api.pages.guard import PREFIX
from api.pages.templates import render
from pilotlab.settings import Settings
from store import feedback
from store.feedback import COMMENT_MAX_CHARS, FeedbackLimits, FeedbackTarget, Outcome

router = APIRouter()


class FeedbackIn(BaseModel):
    rating: int = Field(ge=1, le=5)
    category: str
    comment: str = Field(default="", max_length=COMMENT_MAX_CHARS)

    @field_validator("category")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in feedback.CATEGORIES:
            raise ValueError(f"must be one of {', '.join(feedback.CATEGORIES)}")
        return value


def limits(settings: Settings) -> FeedbackLimits:
    return FeedbackLimits(settings.feedback_per_client_per_hour, settings.feedback_per_code_per_hour,
                          settings.feedback_duplicate_window_h, settings.feedback_client_retention_days)


def _form(request: Request, to: FeedbackTarget, *, message: str | None = None, problem: str | None = None,
          values: dict[str, str] | None = None, sent: bool = False, status_code: int = 200) -> Response:
    return render(request, "feedback_form.html", {
        "to": to, "ratings": feedback_words.RATINGS, "categories": feedback_words.CATEGORY_LABELS,
        "comment_max": COMMENT_MAX_CHARS, "message": message, "problem": problem, "values": values or {}, "sent": sent,
        "retention_days": request.app.state.settings.feedback_client_retention_days}, status_code=status_code)


@router.get("/feedback/{code}")
def feedback_form(request: Request, code: str, conn: Db, sent: bool = False) -> Response:
    to = feedback.target(conn, code)
    return _form(request, to, message=feedback_words.ANSWERS[Outcome.ACCEPTED] if sent else None, sent=sent)


@router.post("/feedback/{code}")
def send_feedback(request: Request, code: str, conn: Db, rating: Annotated[str, Form()] = "",
                  category: Annotated[str, Form()] = "", comment: Annotated[str, Form()] = "") -> Response:
    to = feedback.target(conn, code)
    values = {"rating": rating, "category": category, "comment": comment}
    try:
        given = FeedbackIn.model_validate({"rating": rating or None, "category": category, "comment": comment.strip()})
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][0])
        return _form(request, to, problem=feedback_words.INVALID.get(field, str(exc)), values=values, status_code=422)
    client = request.client.host if request.client else "unknown"
    outcome = feedback.submit(conn, to, given.rating, given.category, given.comment, client,
                              limits(request.app.state.settings))
    if outcome is Outcome.ACCEPTED:
        return RedirectResponse(f"{PREFIX}/feedback/{code}?sent=1", status_code=303)
    if outcome is Outcome.DUPLICATE:
        return _form(request, to, message=feedback_words.ANSWERS[outcome], sent=True)
    return _form(request, to, problem=feedback_words.ANSWERS[outcome], values=values, status_code=429)
