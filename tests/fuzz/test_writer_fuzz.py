"""A hypothesis-generated batch goes through decode and `BatchWriter` into a real database:
nothing raises out, and every message ends as exactly one telemetry row or one dead letter."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.contract import topic_for
from ingest.decode import Decoder
from ingest.directory import DeviceDirectory
from ingest.handoff import Inbound
from ingest.writer import BatchWriter
from tests.fuzz.conftest import FUZZ
from tests.fuzz.hostile import PAYLOADS
from tests.ingest import payloads
from tests.support import RegisteredPilot, register_pilot


@pytest.fixture(scope="module")
def fuzz_database(make_database: Callable[[], str]) -> Iterator[tuple[psycopg.Connection, RegisteredPilot]]:
    url = make_database()
    pilot = register_pilot(url, "fuzz")
    with psycopg.connect(url) as conn:
        yield conn, pilot


GOOD = st.builds(lambda seq, kind: (kind, seq), st.integers(min_value=0, max_value=2**32 - 1),
                 st.sampled_from(["switch", "tracker", "environment", "status", "event"]))


@FUZZ
@given(st.lists(st.one_of(st.tuples(st.sampled_from(["sw", "tr", "env"]), st.sampled_from(["telemetry", "status", "event"]),
                                    PAYLOADS),
                          GOOD), min_size=1, max_size=30))
def test_a_hostile_batch_is_written_without_raising_and_each_message_is_one_row_or_one_dead_letter(
    fuzz_database: tuple[psycopg.Connection, RegisteredPilot], drawn: list[tuple],
) -> None:
    conn, pilot = fuzz_database
    devices = {"sw": pilot.switch_id, "tr": pilot.tracker_id, "env": pilot.env_id}
    now = time.time()
    batch = []
    for mid, item in enumerate(drawn, start=1):
        if len(item) == 3:
            device, channel, body = item
            batch.append(Inbound(topic_for(pilot.pilot_id, devices[device], channel), body, mid, 1, now, 1))
        else:
            kind, seq = item
            device_id = {"switch": pilot.switch_id, "tracker": pilot.tracker_id}.get(kind, pilot.env_id)
            channel = kind if kind in ("status", "event") else "telemetry"
            body = payloads.encode(getattr(payloads, kind)(seq))
            batch.append(Inbound(topic_for(pilot.pilot_id, device_id, channel), body, mid, 1, now, 1))

    directory = DeviceDirectory(3600)
    directory.load(conn)
    decoded = Decoder(16_384, 86_400).decode(batch, lambda device_id: directory.lookup(device_id, conn))
    result = BatchWriter(conn).write(decoded)  # must not raise

    assert result.stored + result.duplicates + result.poisoned == len(decoded.rows)
    assert result.dead_lettered == len(decoded.dead_letters) + result.poisoned
    for row, source in zip(decoded.rows, decoded.sources, strict=True):
        found = conn.execute("SELECT count(*) FROM telemetry WHERE device_id = %s AND seq = %s AND device_time = %s",
                             row[:3]).fetchone()
        kept = conn.execute("SELECT count(*) FROM dead_letter WHERE topic = %s AND payload_sha256 = %s",
                            (source.topic, hashlib.sha256(source.payload).digest())).fetchone()
        assert found is not None and kept is not None and found[0] + kept[0] >= 1
        assert found[0] <= 1
    for dead in decoded.dead_letters:
        kept = conn.execute("SELECT reason FROM dead_letter WHERE topic = %s AND payload_sha256 = %s",
                            (dead.topic, hashlib.sha256(dead.payload).digest())).fetchone()
        assert kept is not None, f"dead letter {dead.reason} was not kept"
    conn.commit()
