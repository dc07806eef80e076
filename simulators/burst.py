"""Bulk streams of contract messages, published as fast as paho allows: for ingest tests
(published = stored) and benchmarks. Not paced in real time; see fleet.py for that.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import datetime, timedelta

import orjson

from devices.contract import topic_for
from devices.kinds import Channel
from pilotlab.errors import ServiceUnavailable
from pilotlab.settings import MqttEndpoint
from simulators.device import SimulatedDevice, behaviour_for
from simulators.publisher import AckCounter, account_client_id, close_client, open_client

log = logging.getLogger(__name__)

DEFAULT_MAX_INFLIGHT = 200  # measured: larger windows were no faster and cost memory


def contract_messages(devices: Sequence[SimulatedDevice], count_per_device: int, start_time: datetime,
                      seed: int = 1, *, channels: Collection[Channel] = (Channel.TELEMETRY,)
                      ) -> Iterator[tuple[str, bytes]]:
    """Exactly `count_per_device` valid messages per device as (topic, JSON payload), devices
    interleaved in time order.

    Each device's seq runs 0, 1, 2, … over the messages yielded (by default telemetry only; pass
    `channels` to include status and events). Device k ticks every reporting interval from
    `start_time`, staggered by a fraction of its interval.
    """
    if start_time.tzinfo is None:
        raise ValueError("start_time must be timezone-aware")
    behaviours = [behaviour_for(d, seed=seed, channels=channels) for d in devices]
    sent = [0] * len(devices)
    tick = 0
    while any(n < count_per_device for n in sent):
        for k, (device, behaviour) in enumerate(zip(devices, behaviours, strict=True)):
            if sent[k] >= count_per_device:
                continue
            stagger = device.reporting_interval_s * k / max(1, len(devices))
            now = start_time + timedelta(seconds=tick * device.reporting_interval_s + stagger)
            for reading in behaviour.tick(now)[: count_per_device - sent[k]]:
                sent[k] += 1
                yield topic_for(device.pilot_id, device.id, reading.channel), orjson.dumps(reading.payload)
        tick += 1


def publish_burst(endpoint: MqttEndpoint, messages: Iterable[tuple[str, bytes]], qos: int = 1, *,
                  max_inflight: int = DEFAULT_MAX_INFLIGHT, client_id: str | None = None,
                  timeout_s: float = 60.0, username: str | None = None, password: str | None = None) -> int:
    """Publish every (topic, payload) as fast as possible, at most `max_inflight` unacknowledged,
    and wait for all PUBACKs. Returns how many the broker accepted (refusals are logged; a message
    answered "no matching subscribers" is published again until a subscriber takes it).

    Raises ServiceUnavailable if the broker is unreachable or acknowledgements stop for `timeout_s`.
    A dropped connection is survived: paho reconnects and resends what is unacknowledged.
    """
    if max_inflight < 1:
        raise ValueError("max_inflight must be at least 1")
    window = threading.Semaphore(max_inflight)
    acks = AckCounter(released=window)
    default_id = f"pilotlab-burst-{uuid.uuid4().hex[:12]}"
    client = open_client(endpoint, client_id or account_client_id(endpoint, username, default_id), acks,
                         clean_start=True, session_expiry_s=0, username=username, password=password)
    published = 0
    started = time.perf_counter()
    try:
        for topic, payload in messages:
            if not window.acquire(timeout=timeout_s):
                raise ServiceUnavailable(f"no PUBACK from {endpoint} for {timeout_s:.0f} s "
                                         f"({acks.settled_count} of {published} settled)")
            acks.publish(client, topic, payload, qos)
            published += 1
        if not acks.wait_for(published, timeout_s):
            raise ServiceUnavailable(f"{published - acks.settled_count} of {published} messages "
                                     f"unacknowledged by {endpoint} after {timeout_s:.0f} s")
    finally:
        close_client(client, acks)
    elapsed = time.perf_counter() - started
    log.info("burst: %d published, %d acknowledged, %d refused in %.2f s (%.0f msg/s)", published,
             acks.acknowledged, acks.refused, elapsed, published / elapsed if elapsed else 0.0)
    return acks.acknowledged
