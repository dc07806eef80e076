"""Prometheus metrics of one ingest worker (prometheus-client), served on its own HTTP port.

Each worker has its own registry and, when `PILOTLAB_METRICS_PORT` is not 0, its own
`/metrics` listener (one port per process: compose replicas each expose the same container port;
on one host give each worker its own port). Prometheus sums over workers.

Cost on the hot path: nothing per message. The worker calls `observe_batch` once per committed
batch (a few counter increments and two histogram observations) and `observe_database_error`
once per failed attempt; the hand-off depth is read by Prometheus at scrape time.

| metric | type | meaning |
| --- | --- | --- |
| `pilotlab_ingest_messages_received_total` | counter | messages taken from the broker and committed (stored, duplicate or dead letter) |
| `pilotlab_ingest_messages_stored_total` | counter | new telemetry rows |
| `pilotlab_ingest_duplicates_total` | counter | redelivered messages that added nothing |
| `pilotlab_ingest_dead_letters_total{reason}` | counter | dead letters by reason code (README, *Dead letters*) |
| `pilotlab_ingest_batches_total` | counter | committed batches |
| `pilotlab_ingest_batch_commit_seconds` | histogram | taking a batch to its commit: decode, COPY, dead letters, commit |
| `pilotlab_ingest_ack_lag_seconds` | histogram | hand-off to PUBACK of the oldest message of each batch |
| `pilotlab_ingest_handoff_depth` / `_capacity` | gauge | messages waiting between paho and the writer, and the bound |
| `pilotlab_ingest_handoff_refused_total` | counter | messages left unacked by a full hand-off (resent after a reconnect) |
| `pilotlab_ingest_database_errors_total` | counter | batch attempts lost to a database connection failure (each is retried) |
| `pilotlab_ingest_database_stalled`, `_held_unacked`, `_last_commit_age_seconds` | gauge | the stall (ingest/worker.py) |
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from pilotlab.errors import ConfigError, RejectReason

log = logging.getLogger(__name__)

# Batches commit in ~2-100 ms when healthy; the upper buckets catch a slow or failing-over database.
COMMIT_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ACK_LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class IngestMetrics:
    """The metrics of one worker, in a registry of their own."""

    def __init__(self, handoff_depth: Callable[[], int], handoff_capacity: int, *,
                 handoff_refused: Callable[[], int] = lambda: 0, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.received = Counter("pilotlab_ingest_messages_received", "Messages taken from the broker and committed",
                                registry=r)
        self.stored = Counter("pilotlab_ingest_messages_stored", "Messages stored as new telemetry rows", registry=r)
        self.duplicates = Counter("pilotlab_ingest_duplicates", "Redelivered messages that added no row", registry=r)
        self.dead_letters = Counter("pilotlab_ingest_dead_letters", "Messages kept as dead letters, by reason",
                                    ["reason"], registry=r)
        for reason in RejectReason:  # every documented reason exists from the start, at 0
            self.dead_letters.labels(reason.value)
        self.batches = Counter("pilotlab_ingest_batches", "Committed batches", registry=r)
        self.commit_seconds = Histogram("pilotlab_ingest_batch_commit_seconds",
                                        "Taking a batch to its commit (decode, COPY, dead letters, commit)",
                                        buckets=COMMIT_BUCKETS, registry=r)
        self.ack_lag_seconds = Histogram("pilotlab_ingest_ack_lag_seconds",
                                         "Hand-off to acknowledgement of the oldest message of each batch",
                                         buckets=ACK_LAG_BUCKETS, registry=r)
        depth = Gauge("pilotlab_ingest_handoff_depth", "Messages waiting between the MQTT thread and the writer",
                      registry=r)
        depth.set_function(lambda: float(handoff_depth()))
        Gauge("pilotlab_ingest_handoff_capacity", "Bound of the hand-off", registry=r).set(handoff_capacity)
        r.register(_ReadCounter("pilotlab_ingest_handoff_refused",
                                "Messages left unacked because the hand-off stayed full (resent after a reconnect)",
                                handoff_refused))
        self.database_errors = Counter("pilotlab_ingest_database_errors",
                                       "Batch attempts lost to a database connection failure (retried)", registry=r)
        ProcessCollector(registry=r)
        self._server: WSGIServer | None = None
        self._thread: Thread | None = None

    def observe_batch(self, received: int, stored: int, duplicates: int, dead_letters: Mapping[str, int],
                      commit_s: float, oldest_received_at: float) -> None:
        """One committed and acknowledged batch. `oldest_received_at` is its first message's
        hand-off time (time.time())."""
        self.received.inc(received)
        self.stored.inc(stored)
        if duplicates:
            self.duplicates.inc(duplicates)
        for reason, count in dead_letters.items():
            self.dead_letters.labels(reason).inc(count)
        self.batches.inc()
        self.commit_seconds.observe(commit_s)
        self.ack_lag_seconds.observe(max(0.0, time.time() - oldest_received_at))

    def observe_database_error(self) -> None:
        self.database_errors.inc()

    def watch_stats(self, stats: object) -> None:
        """Gauges read at scrape time from the worker's stall state (IngestStats), where present."""
        stalled = Gauge("pilotlab_ingest_database_stalled", "1 while a batch waits, unacked, for the database",
                        registry=self.registry)
        stalled.set_function(lambda: float(bool(getattr(stats, "database_stalled", False))))
        held = Gauge("pilotlab_ingest_held_unacked", "Messages held unacked while the database is unreachable",
                     registry=self.registry)
        held.set_function(lambda: float(getattr(stats, "held_unacked", 0) or 0))
        age = Gauge("pilotlab_ingest_last_commit_age_seconds", "Seconds since the last commit (NaN before the first)",
                    registry=self.registry)

        def last_commit_age() -> float:
            at = getattr(stats, "last_commit_at", None)
            return time.time() - at if at is not None else float("nan")

        age.set_function(last_commit_age)

    def serve(self, port: int, host: str = "127.0.0.1") -> int | None:
        """Serve `/metrics` on host:port in a daemon thread; port 0 means off. Returns the port."""
        if port == 0:
            return None
        try:
            self._server, self._thread = start_http_server(port, host, registry=self.registry)
        except OSError as exc:
            raise ConfigError(f"cannot serve ingest metrics on {host}:{port}: {exc.strerror or exc}") from None
        log.info("ingest metrics on http://%s:%d/metrics", host, port)
        return port

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _ReadCounter(Collector):
    """A counter whose value the hand-off keeps itself (read at scrape time: paho's thread
    counts with a plain integer, no metrics call on its path)."""

    def __init__(self, name: str, documentation: str, read: Callable[[], int]) -> None:
        self._name, self._documentation, self._read = name, documentation, read

    def collect(self) -> list[CounterMetricFamily]:
        return [CounterMetricFamily(self._name, self._documentation, value=float(self._read()))]
