"""Web pages for reviewers, pilot managers and city departments, served by the API process.

Server-rendered (Jinja2, templates/), every asset served by pilotlab itself (static/; the API
docs' from the fastapi-offline package): the pages work with no internet. `install(app)` mounts

    /ui/...        the pages, a sub-application of their own (so the API's Bearer check, its
                   role matrix and its OpenAPI stay the API's): sign-in (signin.py), the pilots
                   overview (overview.py), a pilot (pilot_page.py), a device (device_page.py) and its
                   conformance runs (conformance_page.py), record files
                   (record_files.py), the public verification page (verify.py), residents'
                   feedback (feedback_form.py: public, a QR sticker's form; feedback_pages.py:
                   a pilot's feedback and sticker sheet; moderation.py), the program's rolling plan
                   (plan_page.py), static files;
    /docs          the API's docs (Swagger UI), offline (docs.py);
    /              a redirect to the overview.

Who sees what: access.policy.PAGES, checked by guard.authorize_page before every page, with the
session a sign-in made from an API key (sessions.py), so the pages keep the API's roles and
scopes. Every form carries a CSRF token (csrf.py).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import RedirectResponse, Response

from api.pages import (
    conformance_page,
    device_page,
    docs,
    feedback_form,
    feedback_pages,
    matching_page,
    moderation,
    overview,
    page_errors,
    pilot_page,
    plan_page,
    record_files,
    signin,
    verify,
)
from api.pages.guard import PREFIX, authorize_page


def install(app: FastAPI) -> None:
    pages = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, dependencies=[Depends(authorize_page)])
    pages.state = app.state  # the API's pool, settings and scoring keys, as its lifespan sets them
    page_errors.install(pages)
    for routes in (signin, overview, pilot_page, device_page, conformance_page, record_files, matching_page,
                   plan_page, verify, feedback_form, feedback_pages, moderation):
        pages.include_router(routes.router)
    pages.mount("/static", StaticFiles(directory=Path(__file__).with_name("static")), name="static")
    app.mount(PREFIX, pages)
    docs.install(app)

    async def root(_: object) -> Response:
        return RedirectResponse(f"{PREFIX}/pilots", status_code=303)

    app.add_route("/", root, include_in_schema=False)
