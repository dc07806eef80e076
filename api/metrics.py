"""Prometheus metrics of the API: request latency by route, served at `GET /metrics`, and, on
TimescaleDB, its background jobs and chunk compression.

The route label is the route's path template (`/devices/{device_id}/telemetry`), never the raw
path, so ids do not explode the label set; requests that match no route count as `unmatched`.
Each app has its own registry (several apps in one process, as in tests, never collide).

TimescaleDB's state is read at scrape time through the /health probe's connection (never the
request pool), as `GET /health` reports it:

| metric | type | meaning |
| --- | --- | --- |
| `pilotlab_timescaledb_job_runs_total{job_id,job,target}` | counter | runs of each background job |
| `pilotlab_timescaledb_job_failures_total{job_id,job,target}` | counter | failed runs (PostgreSQL 15.20: every scheduled run; deploy/README) |
| `pilotlab_timescaledb_job_last_run_ok{job_id,job,target}` | gauge | 1 if its last run succeeded, 0 if it failed (absent before the first) |
| `pilotlab_timescaledb_job_last_success_timestamp_seconds{...}` | gauge | when a run of it last succeeded |
| `pilotlab_timescaledb_chunks{hypertable,state}` | gauge | chunks `compressed`, `uncompressed`, `overdue` (past the policy's age) |
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import psycopg
from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
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


log = logging.getLogger(__name__)


class _TimescaleState(Collector):
    """TimescaleDB's jobs and compression, read when Prometheus scrapes (nothing on plain
    PostgreSQL, nothing while the database is down: /health says so)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def describe(self) -> list[Metric]:
        return []  # names vary with the database: never collect at registration

    def collect(self) -> Iterator[Metric]:
        probe = getattr(self.app.state, "health_probe", None)
        if probe is None:
            return
        try:
            health = probe.check()[2]
        except psycopg.Error as exc:
            log.warning("metrics: cannot read TimescaleDB's state: %s", exc)
            return
        if health is None:
            return
        labels = ["job_id", "job", "target"]
        runs = CounterMetricFamily("pilotlab_timescaledb_job_runs", "Runs of each TimescaleDB background job", labels=labels)
        failures = CounterMetricFamily("pilotlab_timescaledb_job_failures", "Failed runs of each TimescaleDB background job",
                                       labels=labels)
        last_ok = GaugeMetricFamily("pilotlab_timescaledb_job_last_run_ok", "1 if the job's last run succeeded, 0 if it failed",
                                    labels=labels)
        last_success = GaugeMetricFamily("pilotlab_timescaledb_job_last_success_timestamp_seconds",
                                         "When a run of the job last succeeded", labels=labels)
        for job in health.jobs:
            values = [str(job.job_id), job.proc_name, job.target or ""]
            runs.add_metric(values, job.total_runs)
            failures.add_metric(values, job.total_failures)
            if job.last_run_status is not None:
                last_ok.add_metric(values, 0.0 if job.failing else 1.0)
            if job.last_successful_finish is not None:
                last_success.add_metric(values, job.last_successful_finish.timestamp())
        chunks = GaugeMetricFamily("pilotlab_timescaledb_chunks", "Chunks of each hypertable with compression, by state",
                                   labels=["hypertable", "state"])
        for c in health.compression:
            chunks.add_metric([c.hypertable, "compressed"], c.compressed_chunks)
            chunks.add_metric([c.hypertable, "uncompressed"], c.chunks - c.compressed_chunks)
            chunks.add_metric([c.hypertable, "overdue"], c.overdue_chunks)
        yield from (runs, failures, last_ok, last_success, chunks)


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
        root_path = scope.get("root_path", "")

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = getattr(scope.get("route"), "path", None)
            # a mounted app's (the pages under /ui) routes are relative to its mount: prefix it
            route = scope.get("root_path", "")[len(root_path):] + route if route else "unmatched"
            method = scope.get("method", "")
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
            self.metrics.responses.labels(method, route, f"{status // 100}xx").inc()


def install(app: FastAPI) -> ApiMetrics:
    """Time every request of `app` and serve the registry at `GET /metrics` (not in the OpenAPI docs)."""
    metrics = ApiMetrics()
    metrics.registry.register(_TimescaleState(app))
    app.state.metrics = metrics
    app.add_middleware(_Timing, metrics=metrics)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return metrics
