"""The API's docs work with no internet: Swagger UI loads every script and style from pilotlab
itself, while every request off 127.0.0.1 is aborted."""

from __future__ import annotations

from tests.web.conftest import Browser


def test_swagger_ui_renders_the_api_with_the_network_blocked(browser: Browser) -> None:
    assert browser.open("/docs").status == 200  # type: ignore[attr-defined]
    title = browser.page.locator(".swagger-ui .info .title")  # type: ignore[attr-defined]
    title.wait_for()
    assert title.inner_text().startswith("pilotlab")
    browser.page.locator(".opblock-summary-path", has_text="/pilots/{pilot_id}/score").first.wait_for()  # type: ignore[attr-defined]
    browser.snap("docs rendered")
    assert browser.blocked == []

