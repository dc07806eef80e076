"""Prometheus metrics of the API: request latency by route, served at `GET /metrics`.

The route label is the route's path template (`/devices/{device_id}/telemetry`), never the raw
path, so ids do not explode the label set; requests that match no route count as `unmatched`.
Each app has its own registry (several apps in one process, as in tests, never collide).
"""

from __future__ import annotations

import time

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.latency = Histogram("pilotlab_api_request_seconds", "HTTP request latency by route",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.responses = Counter("pilotlab_api_responses", "HTTP responses by route and status class",
                                 ["method", "route", "status"], registry=self.registry)
        ProcessCollector(registry=self.registry)


class _Timing:
    """Pure ASGI middleware: one histogram observation and one counter increment per request."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
            self.metrics.responses.labels(method, route, f"{status // 100}xx").inc()


def install(app: FastAPI) -> ApiMetrics:
    """Time every request of `app` and serve the registry at `GET /metrics` (not in the OpenAPI docs)."""
    metrics = ApiMetrics()
    app.state.metrics = metrics
    app.add_middleware(_Timing, metrics=metrics)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return metrics
