"""The bounded hand-off between paho's network thread and the writer."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import NamedTuple


class Inbound(NamedTuple):
    """One message as it came off the broker, not yet decoded."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: float  # time.time() when paho handed it over
    connection: int  # which connection it arrived on: a packet id is only valid on that one


_NOBODY_WAITS = float("inf")
_SPACE_RECHECK_S = 0.1  # a blocked producer looks again at least this often (close() also wakes it)
# How long a full hand-off holds paho's network thread. At full rate the writer takes a batch
# within milliseconds; a hand-off full for this long means the writer is stalled (the database is
# down), and a network thread held longer could not answer pings, see its broker restart or
# resubscribe, so the broker would forget the worker's shared subscription (issue 12).
FULL_HOLD_S = 2.0


class HandOff:
    """A FIFO with a capacity, built for one producer (paho) and one consumer (the writer).

    A deque plus an Event rather than queue.Queue: the producer pays one append and one
    comparison, and an Event.set only when the consumer waits for exactly that; queue.Queue takes
    a lock and notifies a condition per item, and a consumer polling with short sleeps (measured:
    7 % of the worker's samples in py-spy) takes the GIL from paho's thread a thousand times a
    second. `put` blocks only when full, which happens when the broker overshoots ReceiveMaximum
    (Mosquitto does, routinely at full rate, see deploy/README.md); then blocking the network
    thread is the backpressure, and the consumer wakes it (`_space`) once per batch it takes.
    A hand-off still full after `full_hold_s` refuses the item (`put` returns False), and every
    later one at once until the consumer takes again, so the network thread goes on serving its
    connection; the source leaves refused messages unacknowledged and gets them back by
    reconnecting (ingest.mqtt_source).
    """

    def __init__(self, capacity: int, full_hold_s: float = FULL_HOLD_S) -> None:
        self.capacity = capacity
        self.full_hold_s = full_hold_s
        self._refusing = False  # set by the producer after a hold ran out, cleared by the next take
        self.refused = 0
        self._items: deque[Inbound] = deque()
        # The consumer says how many items it waits for (`_wanted`); the producer sets `_ready`
        # only when that many are there. Outside a wait `_wanted` is unreachable, so a busy
        # producer pays one comparison per item and never wakes anyone.
        self._ready = threading.Event()
        self._wanted: float = _NOBODY_WAITS
        # The same the other way round: a producer blocked on a full hand-off waits on `_space`,
        # which the consumer sets after a take only while `_producer_waits`.
        self._space = threading.Event()
        self._producer_waits = False
        self._closed = False
        self.times_full = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Inbound) -> bool:
        """Append `item`; False if it was not taken (closed, or full for `full_hold_s`)."""
        if len(self._items) >= self.capacity:
            self.times_full += 1
            if self._refusing or not self._wait_for_space(self.full_hold_s):
                self._refusing = True
                self.refused += 1
                return False
        if self._closed:
            return False  # never acknowledged, so the broker redelivers it
        self._items.append(item)
        if len(self._items) >= self._wanted:
            self._ready.set()
        return True

    @property
    def closed(self) -> bool:
        return self._closed

    def holds(self, connection: int) -> bool:
        """Whether any waiting item came on `connection` (a scan: for the rare recovery, not per item)."""
        return any(item.connection == connection for item in list(self._items))

    def close(self) -> None:
        """Stop accepting: a producer blocked on a full hand-off returns, its item unacknowledged."""
        self._closed = True
        self._space.set()

    def take(self, max_items: int, wait_s: float, linger_s: float = 0.0) -> list[Inbound]:
        """Up to max_items, waiting up to wait_s for the first and then up to linger_s for more."""
        items = self._items
        if not items and not self._wait_for(1, wait_s):
            return []
        if linger_s > 0 and len(items) < max_items:
            self._wait_for(max_items, linger_s)
        batch = []
        popleft = items.popleft
        for _ in range(min(max_items, len(items))):
            batch.append(popleft())
        if batch:
            self._refusing = False
        if self._producer_waits:
            self._space.set()
        return batch

    def _wait_for_space(self, timeout_s: float) -> bool:
        """Block while full, up to `timeout_s`; True if there is room (or the hand-off closed)."""
        deadline = time.monotonic() + timeout_s
        try:
            while len(self._items) >= self.capacity and not self._closed:
                self._space.clear()
                self._producer_waits = True  # before the re-check: a take from now on sets `_space`
                if len(self._items) < self.capacity:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._space.wait(min(left, _SPACE_RECHECK_S))
            return True
        finally:
            self._producer_waits = False

    def _wait_for(self, count: int, timeout_s: float) -> bool:
        """Block until `count` items are there or `timeout_s` passes; True if they are."""
        self._ready.clear()
        self._wanted = count  # after clear(): a producer that reaches `count` from now on wakes us
        try:
            return len(self._items) >= count or self._ready.wait(timeout_s)
        finally:
            self._wanted = _NOBODY_WAITS
