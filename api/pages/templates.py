"""Rendering the pages: the Jinja2 environment (autoescaped), its filters, and `render`, which
gives every template the signed-in session and the form CSRF token.

Times are shown in the pilot's time zone (pilot.timezone, IANA; UTC by default), labelled with
the zone's abbreviation and named in full on hover; a time with no pilot to follow is UTC,
labelled so.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from api.pages import csrf
from api.pages.sessions import PageSession

TEMPLATES = Jinja2Templates(directory=Path(__file__).with_name("templates"))


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_time(moment: datetime | str | None, zone: str | None = None) -> Markup:
    """`<time>` of a moment in a time zone, e.g. "2026-12-01 09:00 KST"; "–" for none."""
    if moment is None or moment == "":
        return Markup("–")
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    tz = _zone(zone)
    shown = moment.astimezone(tz)
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        moment.isoformat(), tz.key, shown.strftime("%Y-%m-%d %H:%M ") + (shown.tzname() or tz.key))


def local_date(day: date | None) -> str:
    return "–" if day is None else day.isoformat()


def number(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def share(value: float | None) -> str:
    """A ratio as a percentage: 0.9512 → "95.1 %"."""
    return "–" if value is None else f"{100 * value:.1f} %"


TEMPLATES.env.filters.update(local_time=local_time, local_date=local_date, number=number, share=share)


def render(request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
    session: PageSession | None = getattr(request.state, "page_session", None)
    values = {"session": session, "csrf_token": csrf.form_token(request, session), **(context or {})}
    response = TEMPLATES.TemplateResponse(request, template, values, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    csrf.remember(request, response)
    return response
