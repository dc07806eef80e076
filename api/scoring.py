"""Scoring in the API: the rubric and signing key from settings, error mapping, daily rescoring.

`install(app, settings)` mounts api.routes.scores, api.routes.records and api.routes.transparency and, when
`daily_rescoring` is set, runs scoring.schedule.DailyRescoring for the app's lifetime. A rubric or
signing key that cannot be used is a ConfigError: a 503 naming the setting (api.errors).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from api.routes import records, scores, transparency
from pilotlab.settings import Settings
from scoring.rubric import LoadedRubric, load_rubric
from scoring.schedule import DailyRescoring
from scoring.signing import load_private_key
from store.connection import connect


class ScoringConfig:
    """Loaded on first use, so an API without a signing key still serves scores."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cache  # noqa: B019 - one per app, lives as long as the app
    def rubric(self) -> LoadedRubric:
        return load_rubric(self.settings.rubric)

    @cache  # noqa: B019
    def private_key(self) -> Ed25519PrivateKey:
        return load_private_key(self.settings.signing_key)


def install(app: FastAPI, settings: Settings) -> None:
    app.state.scoring = ScoringConfig(settings)
    app.include_router(scores.router)
    app.include_router(records.router)
    app.include_router(transparency.router)
    if not (settings.daily_rescoring and settings.database_url):
        return
    url = settings.database_url
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rescoring = DailyRescoring(lambda: connect(url, autocommit=True), app.state.scoring.rubric(),
                                   settings.feedback_client_retention_days)
        async with inner(app):
            rescoring.start()
            try:
                yield
            finally:
                rescoring.stop()

    app.router.lifespan_context = lifespan
