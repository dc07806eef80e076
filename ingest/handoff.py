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


class HandOff:
    """A FIFO with a capacity, built for one producer (paho) and one consumer (the writer).

    A deque plus an Event rather than queue.Queue: the producer pays one append and, when the
    consumer sleeps, one Event.set; queue.Queue takes a lock and notifies a condition per item,
    which measurably slows paho's thread at 10k msg/s. `put` blocks only when full, which with
    ReceiveMaximum ≤ capacity happens only if the broker ignores the limit; then blocking the
    network thread is the backpressure.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: deque[Inbound] = deque()
        self._arrived = threading.Event()
        self._closed = False
        self.times_full = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Inbound) -> None:
        if len(self._items) >= self.capacity:
            self.times_full += 1
            while len(self._items) >= self.capacity and not self._closed:
                time.sleep(0.001)
        if self._closed:
            return  # never acknowledged, so the broker redelivers it
        self._items.append(item)
        if not self._arrived.is_set():
            self._arrived.set()

    def close(self) -> None:
        """Stop accepting: a producer blocked on a full hand-off returns, its item unacknowledged."""
        self._closed = True

    def take(self, max_items: int, wait_s: float, linger_s: float = 0.0) -> list[Inbound]:
        """Up to max_items, waiting up to wait_s for the first and then up to linger_s for more."""
        items = self._items
        if not items:
            self._arrived.clear()
            if not items and not self._arrived.wait(wait_s):
                return []
        if linger_s > 0 and len(items) < max_items:
            deadline = time.monotonic() + linger_s
            while len(items) < max_items and time.monotonic() < deadline:
                time.sleep(0.001)
        batch = []
        popleft = items.popleft
        for _ in range(min(max_items, len(items))):
            batch.append(popleft())
        return batch
