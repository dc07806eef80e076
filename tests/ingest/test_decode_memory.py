"""Rejected messages leave nothing behind: every network-server and gateway message is first
refused as a contract topic, so whatever that refusal keeps is kept once per message."""

from __future__ import annotations

import gc
import time
import tracemalloc

from ingest.decode import Decoder
from ingest.handoff import Inbound

BATCHES, PER_BATCH, PAYLOAD_BYTES = 3_000, 4, 1_500


def test_thousands_of_rejected_batches_retain_no_memory_once_decoded() -> None:
    decoder = Decoder(16_384, 86_400)
    topics = [f"pilotlab/v1/p1/gw-{n}/batch" for n in range(PER_BATCH)]  # not contract topics: refused

    def decode_batches(count: int) -> None:
        for number in range(count):
            batch = [Inbound(topic, bytes([number % 251]) * PAYLOAD_BYTES, number * PER_BATCH + i + 1, 1,
                             time.time(), 1) for i, topic in enumerate(topics)]
            decoded = decoder.decode(batch, lambda device_id: None)
            assert len(decoded.dead_letters) == PER_BATCH

    decode_batches(10)  # the topic cache fills here: what follows should add nothing
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        decode_batches(BATCHES)
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    handled = BATCHES * PER_BATCH * PAYLOAD_BYTES  # 18 MB of payloads went through
    assert retained < 256 * 1024, f"{retained} bytes retained after decoding {handled} bytes of rejected batches"
