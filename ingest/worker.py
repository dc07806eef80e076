"""One ingest worker: the loop that moves batches from the hand-off to the database and acks.

See ingest/__init__.py for the threading model. Shutdown on SIGTERM/SIGINT: stop taking new
batches, write and commit what was already handed over, ack it, disconnect (the session stays,
so anything the broker sent after that is redelivered when this worker id returns).

Start: the broker first, then the database. A worker whose database is down (or not yet up)
still connects and subscribes, so the broker queues its share in its session, and then waits for
the database with backoff, saying so in the log; a database that answers but has no pilotlab
schema is a ConfigError (exit 2).

Scale-down (`drain=True`): resume this worker id's sessions (the contract source's and every LPWA
source's that has one), leave every share group, store what the sessions held until none of them
has delivered anything for `DRAIN_IDLE_S` (after unsubscribing, only their backlog arrives; LPWA
sources without a session are not started), then disconnect each with session expiry 0 so nothing
is left stranded under an id that will not come back.
"""

from __future__ import annotations

import functools
import logging
import signal
import sys
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import FrameType
from typing import NamedTuple

import psycopg

from ingest.adapters import AdapterSet
from ingest.commands import CommandTraffic
from ingest.decode import Decoder
from ingest.directory import DeviceDirectory
from ingest.handoff import HandOff, Inbound
from ingest.metrics import IngestMetrics
from ingest.mqtt_source import MqttSource
from ingest.readings import configure_js_codecs
from ingest.refusal import connection_lost, describe, is_refusal
from ingest.rows import DecodedBatch, dead_letter
from ingest.sources import contract_source, network_server_source
from ingest.writer import BatchWriter, WriteResult
from pilotlab.errors import ConfigError, RejectReason, ServiceUnavailable
from pilotlab.settings import Settings
from store.connection import CONNECT_TIMEOUT_S, redact

log = logging.getLogger(__name__)

DRAIN_IDLE_S = 2.0
SUBSCRIBE_TIMEOUT_S = 10.0
STATS_EVERY_S = 30.0
RETRY_MIN_S, RETRY_MAX_S = 0.5, 10.0
# paho's thread, reading from a buffer (ingest.paho_client), seldom gives up the GIL by itself, so
# after each database round trip the writer waited for the interpreter's forced switch (default
# 5 ms) to get it back, several times per batch. Measured with bench/ingest_e2e.py's parts, one
# worker, 8 interleaved rounds: median 0.86 of the bare subscriber at 5 ms, 1.01 at 0.5 ms, 0.94
# at 1 ms (0.1 ms was worse again).
GIL_SWITCH_INTERVAL_S = 0.0005


@dataclass
class IngestStats:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_lettered: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    database_retries: int = 0
    last_commit_s: float = 0.0
    # The stall, gauge-ready: True while a batch is held unacked because the database is
    # unreachable (since `stalled_since`, time.time()); `last_commit_at` is time.time() of the
    # last commit, so a scraper can report its age (`last_commit_age_s`).
    database_stalled: bool = False
    stalled_since: float | None = None
    held_unacked: int = 0
    last_commit_at: float | None = None

    def add(self, batch_size: int, result: WriteResult, reasons: Counter[str], commit_s: float) -> None:
        self.received += batch_size
        self.stored += result.stored
        self.duplicates += result.duplicates
        self.dead_lettered.update(reasons)
        self.batches += 1
        self.last_commit_s = commit_s
        self.last_commit_at = time.time()
        self.database_stalled, self.stalled_since, self.held_unacked = False, None, 0

    def stall(self, held: int) -> None:
        """A batch of `held` messages waits, unacked, for the database to come back."""
        self.database_retries += 1
        if not self.database_stalled:
            self.database_stalled, self.stalled_since = True, time.time()
        self.held_unacked = held

    def last_commit_age_s(self, now: float | None = None) -> float | None:
        if self.last_commit_at is None:
            return None
        return (time.time() if now is None else now) - self.last_commit_at

    def summary(self) -> str:
        dead = sum(self.dead_lettered.values())
        return (f"received {self.received}, stored {self.stored}, duplicates {self.duplicates}, "
                f"dead letters {dead} {dict(self.dead_lettered) if dead else ''}".rstrip())


class InFlight(NamedTuple):
    """A decoded batch whose transaction runs on the write thread, not yet acknowledged."""

    batch: list[Inbound]
    reasons: Counter[str]
    written: Future[WriteResult]
    started: float


class IngestWorker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stats = IngestStats()
        # Twice the receive window: a broker resending a resumed session's in-flight messages may
        # briefly overshoot ReceiveMaximum, and a full hand-off stalls paho's network thread.
        self.handoff = HandOff(2 * settings.receive_maximum)
        self.metrics = IngestMetrics(self.handoff.__len__, self.handoff.capacity,
                                     handoff_refused=lambda: self.handoff.refused)
        self.metrics.watch_stats(self.stats)
        lpwa_sources = settings.network_server_sources()
        self.decoder = Decoder(settings.max_payload_bytes, settings.future_tolerance_s,
                               AdapterSet(settings.registry_refresh_s, settings.max_payload_bytes, lpwa_sources),
                               CommandTraffic(settings.max_payload_bytes))  # switches' acks (ingest.commands)
        self.directory = DeviceDirectory(settings.registry_refresh_s)
        configure_js_codecs(settings)  # vendor JavaScript codecs' limits (device profiles)
        # One MqttSource per source, all into the same hand-off (ingest.sources): the contract's
        # subscription, and the network-server streams (ChirpStack, The Things Stack)
        self.source = contract_source(settings, self.handoff)
        self.lpwa_sources = [network_server_source(settings, config, index, self.handoff)
                             for index, config in enumerate(lpwa_sources)]
        self.sources = [self.source, *self.lpwa_sources]
        self._database_url = settings.require_database_url()
        self._conn: psycopg.Connection | None = None  # the writer's: one transaction per batch
        self._registry: psycopg.Connection | None = None  # decoding's registry reads (autocommit)
        self._writer: BatchWriter | None = None
        # Write-behind: batch N's transaction runs here while the main thread decodes batch N+1
        # (the database's time overlapped with ours); at most one batch is ever in flight.
        self._write_thread = ThreadPoolExecutor(1, thread_name_prefix="pilotlab-writer")
        self._in_flight: InFlight | None = None
        self.ready = threading.Event()  # set once connected and subscribed (the database may still be down)

    def run(self, stop: threading.Event, *, drain: bool = False) -> IngestStats:
        if not self._try_database():  # a reachable database without the schema fails here, before the broker
            log.warning("starting without the database: subscribing, the broker keeps this worker's messages")
        self.metrics.serve(self.settings.metrics_port, self.settings.metrics_host)
        if drain:  # a source without a session has no share to drain, and its live traffic never ends
            self.lpwa_sources = [lpwa for lpwa in self.lpwa_sources if lpwa.has_session]
            self.sources = [self.source, *self.lpwa_sources]
        started: list[MqttSource] = []
        try:
            for source in self.sources:
                source.start()
                started.append(source)
            self._consume(stop, drain)
        finally:
            self._settle(None)
            self._write_thread.shutdown()
            self.handoff.close()
            for source in reversed(started):
                source.stop(end_session=drain and not stop.is_set())
            self._drop_database()
            self.metrics.close()
        log.info("ingest worker stopped: %s", self.stats.summary())
        return self.stats

    def _consume(self, stop: threading.Event, drain: bool) -> None:
        size, linger = self.settings.batch_size, self.settings.batch_linger_ms / 1000
        last_message = last_stats = started = time.monotonic()
        retry_at, delay = started, RETRY_MIN_S
        while not stop.is_set():
            if not self.ready.is_set():
                self._await_subscription(started, drain)
            now = time.monotonic()
            if self._conn is None:  # waiting for the database; subscribed, so the broker holds the rest
                if now < retry_at:
                    stop.wait(min(0.2, retry_at - now))
                    continue
                if not self._try_database(retry_in_s=delay):
                    retry_at, delay = now + delay, min(delay * 2, RETRY_MAX_S)
                    continue
                delay = RETRY_MIN_S
            # While a batch is in flight, take what is there now rather than linger for more.
            wait_s = 0.0 if self._in_flight is not None else 0.2
            batch = self.handoff.take(size, wait_s=wait_s, linger_s=0.0 if wait_s == 0 else linger)
            now = time.monotonic()
            if batch:
                self._pipeline(batch, stop)
                last_message = now
            else:
                if self._in_flight is not None:
                    self._settle(stop)
                    continue
                self._recover_refused()
                if drain and self.ready.is_set() and now - last_message >= DRAIN_IDLE_S:
                    return
            if now - last_stats >= STATS_EVERY_S:
                log.info("%s; hand-off %d/%d", self.stats.summary(), len(self.handoff), self.handoff.capacity)
                last_stats = now
        # Stopping: what paho had handed over by now is stored and acked; anything later stays
        # unacknowledged with the broker, which redelivers it to this worker id.
        if not self._settle(None):
            return
        remaining = len(self.handoff)
        while remaining > 0 and (batch := self.handoff.take(min(size, remaining), wait_s=0)):
            remaining -= len(batch)
            if not self._store_and_ack(batch, None):
                break

    def _await_subscription(self, started: float, drain: bool) -> None:
        waiting = [source for source in self.sources if not source.subscribed.is_set()]
        if not waiting:
            log.info("ingest worker %s consuming %s", self.settings.ingest_client_id, self.source.subscription)
            if drain:
                for source in self.sources:
                    source.unsubscribe()
            self.ready.set()
        elif time.monotonic() - started > SUBSCRIBE_TIMEOUT_S:
            raise ServiceUnavailable(f"the broker did not grant the subscription {waiting[0].subscription}")

    def _pipeline(self, batch: list[Inbound], stop: threading.Event) -> None:
        """Decode `batch` while the previous one's transaction runs, then hand it to the write thread.

        Anything unusual (the registry read fails, the previous write failed) goes the serial way,
        `_store_and_ack`, with nothing in flight."""
        started = time.perf_counter()
        decoded: DecodedBatch | None = None
        if self._conn is not None and self._registry is not None:
            try:
                decoded = self._decode(batch, self._registry)
            except psycopg.Error as exc:
                log.info("reading the registry failed (%s); writing this batch the careful way", describe(exc))
        if not self._settle(stop):
            return  # stopping during an outage: this batch stays unacknowledged, the broker redelivers it
        if decoded is None or self._writer is None:
            if self._store_and_ack(batch, stop):
                self._recover_refused()
            return
        reasons = Counter(d.reason.value for d in decoded.dead_letters)
        self._in_flight = InFlight(batch, reasons, self._write_thread.submit(self._writer.write, decoded), started)
        self._recover_refused()

    def _settle(self, stop: threading.Event | None) -> bool:
        """Wait for the batch in flight: ack it once committed, or write it again the serial way.

        Returns False as `_store_and_ack` does (stopping while the database is down)."""
        flight, self._in_flight = self._in_flight, None
        if flight is None:
            return True
        try:
            result = flight.written.result()
        except psycopg.Error as exc:  # nothing of it was committed
            log.info("a batch's write failed (%s); writing it again the careful way", describe(exc))
            self._rollback()
            return self._store_and_ack(flight.batch, stop)
        self._acked(flight.batch, result, flight.reasons, flight.started)
        return True

    def _store_and_ack(self, batch: list[Inbound], stop: threading.Event | None) -> bool:
        """Write one batch, retrying through database outages; ack only after the commit.

        Returns False if it gave up because the worker is stopping while the database is down
        (nothing acked: the broker redelivers those messages to this worker id later)."""
        delay = RETRY_MIN_S
        one_by_one = False
        while True:
            conn = self._conn
            try:
                started = time.perf_counter()
                conn, writer = self._database()
                if one_by_one:
                    reasons, result = self._write_each(batch, conn, writer)
                else:
                    reasons, result = self._write(batch, conn, writer)
                break
            except psycopg.Error as exc:
                if not one_by_one and is_refusal(exc, conn):
                    # Refused where the writer cannot isolate a row (a deferred constraint at the
                    # commit, a registry read): the batch again, one message per transaction.
                    log.warning("the database refused a batch (%s); writing its %d messages one by one",
                                describe(exc), len(batch))
                    self._rollback()
                    one_by_one = True
                    continue
                self.stats.stall(len(batch))
                self.metrics.observe_database_error()
                self._drop_database()
                log.warning("database unavailable (%s); retrying in %.1f s, %d messages held unacked",
                            describe(exc), delay, len(batch))
                if stop is None or stop.wait(delay):
                    return False
                delay = min(delay * 2, RETRY_MAX_S)
        self._acked(batch, result, reasons, started)
        return True

    def _acked(self, batch: list[Inbound], result: WriteResult, reasons: Counter[str], started: float) -> None:
        for source in self.sources:  # each acks only what came on its own connection
            source.ack(batch)
        commit_s = time.perf_counter() - started
        if result.poisoned:  # rows the database refused, dead-lettered by the writer
            reasons[RejectReason.STORE_REJECTED.value] += result.poisoned
        self.stats.add(len(batch), result, reasons, commit_s)
        self.metrics.observe_batch(len(batch), result.stored, result.duplicates, reasons, commit_s, batch[0].received_at)

    def _decode(self, batch: list[Inbound], registry: psycopg.Connection) -> DecodedBatch:
        self.directory.refresh_if_due(registry)
        if self.decoder.adapters is not None:
            self.decoder.adapters.prepare(registry)
        return self.decoder.decode(batch, functools.partial(self.directory.lookup, conn=registry))

    def _write(self, batch: list[Inbound], conn: psycopg.Connection, writer: BatchWriter) -> tuple[Counter[str], WriteResult]:
        assert self._registry is not None  # opened with the writer's connection (_database)
        decoded = self._decode(batch, self._registry)
        result = writer.write(decoded)
        return Counter(d.reason.value for d in decoded.dead_letters), result

    def _write_each(self, batch: list[Inbound], conn: psycopg.Connection,
                    writer: BatchWriter) -> tuple[Counter[str], WriteResult]:
        """Each message in its own transaction; one the database still refuses is dead-lettered."""
        reasons: Counter[str] = Counter()
        total = WriteResult()
        for message in batch:
            try:
                found, result = self._write([message], conn, writer)
            except psycopg.Error as exc:
                if not is_refusal(exc, conn):
                    raise
                self._rollback()
                refused = dead_letter(message, RejectReason.STORE_REJECTED, f"database refused it: {describe(exc)}")
                found, result = Counter(), writer.write(DecodedBatch([], [], [refused]))
                result.poisoned = 1
            reasons.update(found)
            for name in ("stored", "duplicates", "dead_lettered", "poisoned", "unkept"):
                setattr(total, name, getattr(total, name) + getattr(result, name))
        return reasons, total

    def _rollback(self) -> None:
        if self._conn is not None and not connection_lost(self._conn):
            self._conn.rollback()

    def _recover_refused(self) -> None:
        """Sources whose messages a full hand-off refused reconnect once the rest is stored (never
        while a batch of that connection is in flight: its acks would be stale, its messages resent)."""
        taken = self._in_flight.batch if self._in_flight is not None else []
        for source in self.sources:
            source.recover(taken)

    def _try_database(self, retry_in_s: float = RETRY_MIN_S) -> bool:
        """Connect if not connected; False (logged) while the database cannot be reached."""
        try:
            self._database()
            return True
        except psycopg.OperationalError as exc:
            self.stats.stall(0)
            self.metrics.observe_database_error()
            log.warning("database unavailable at %s (%s); waiting, next try in %.1f s",
                        redact(self._database_url), describe(exc), retry_in_s)
            return False

    def _database(self) -> tuple[psycopg.Connection, BatchWriter]:
        """The writer's connection and the registry's, opened (schema checked, registry loaded)
        if there are none."""
        if self._conn is None or self._writer is None or self._registry is None:
            self._drop_database()
            try:
                conn = psycopg.connect(self._database_url, connect_timeout=CONNECT_TIMEOUT_S)
            except psycopg.ProgrammingError as exc:
                raise ConfigError(f"bad database URL {redact(self._database_url)}: {exc}") from None
            registry = None
            try:
                if conn.execute("SELECT to_regclass('telemetry') IS NULL").fetchone() == (True,):
                    raise ConfigError("the database has no pilotlab schema: run `pilotlab db migrate` first")
                writer = BatchWriter(conn, dead_letter_prefix_bytes=self.settings.dead_letter_prefix_bytes)
                registry = psycopg.connect(self._database_url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True)
                self.directory.load(registry)
            except BaseException:
                conn.close()
                if registry is not None:
                    registry.close()
                raise
            self._conn, self._writer, self._registry = conn, writer, registry
        return self._conn, self._writer

    def _drop_database(self) -> None:
        for conn in (self._conn, self._registry):
            if conn is not None:
                try:
                    conn.close()
                except psycopg.Error:
                    pass
        self._conn = self._writer = self._registry = None


def run_worker(settings: Settings, *, drain: bool = False) -> int:
    """The `pilotlab ingest` command: run until SIGTERM/SIGINT (or, draining, until idle)."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: finishing the current batch and stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    previous_interval = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    try:
        IngestWorker(settings).run(stop, drain=drain)
    finally:
        sys.setswitchinterval(previous_interval)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
