"""The API's docs, offline: Swagger UI at /docs, its script and style served by pilotlab from the
fastapi-offline package (which vendors the Swagger UI 5 build FastAPI's own page loads from a
CDN). Only its static files are used: its FastAPIOffline class would declare /docs as an API
route, under the app-wide API key check. No /redoc: ReDoc's page still fetches its logo from
its CDN."""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import HTMLResponse

ASSETS = "/docs/assets"


def install(app: FastAPI) -> None:
    app.mount(ASSETS, StaticFiles(directory=str(files("fastapi_offline") / "static")), name="docs-assets")
    title = f"{app.title} API"

    async def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(openapi_url=f"{root}{app.openapi_url}", title=title,
                                   swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{root}{ASSETS}/favicon.png")

    app.add_route("/docs", swagger, include_in_schema=False)
