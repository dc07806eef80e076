"""Link records go by binary COPY: a value out of its column's range is refused as before (binary
int2/int4 would wrap it silently), and the other rows of the batch are stored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from ingest.adapters.records import LinkRecords, write_link_records
from tests.lpwa.conftest import LpwaPilot


@pytest.mark.parametrize("radio", [(70_000, 125_000, 868_100_000), (7, 2**40, 868_100_000), (7, 125_000, 2**70)],
                         ids=["spreading_factor", "bandwidth", "frequency"])
def test_a_reception_with_radio_settings_out_of_range_is_refused_not_wrapped(
        database_url: str, lpwa: LpwaPilot, radio: tuple[Any, ...]) -> None:
    at = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    records = LinkRecords()
    records.frames.append((lpwa.env_id, 7, at, at, "chirpstack", 2, "00189440", 5, False))
    records.receptions += [
        (lpwa.env_id, 7, at, "gw-ok", -90.0, 7.5, 7, 125_000, 868_100_000, "SF7BW125", "0016c001ff10a235", 5),
        (lpwa.env_id, 7, at, "gw-bad", -91.0, 7.0, *radio, "SF7BW125", None, 5),
    ]
    with psycopg.connect(database_url) as conn:
        assert write_link_records(conn, records) == 1
        conn.commit()
        stored = conn.execute("SELECT gateway_id, spreading_factor, bandwidth_hz, frequency_hz, gateway_eui, "
                              "data_rate_index FROM uplink_reception WHERE device_id = %s", (lpwa.env_id,)).fetchall()
        frame = conn.execute("SELECT fcnt, f_port, dev_addr, data_rate_index, mac_only FROM uplink_frame "
                             "WHERE device_id = %s", (lpwa.env_id,)).fetchall()
    assert stored == [("gw-ok", 7, 125_000, 868_100_000, "0016c001ff10a235", 5)]
    assert frame == [(7, 2, "00189440", 5, False)]


def test_a_batch_repeating_stored_frames_adds_only_the_new_ones(database_url: str, lpwa: LpwaPilot) -> None:
    at = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def uplink(fcnt: int) -> LinkRecords:
        return LinkRecords([(lpwa.env_id, fcnt, at, at, "chirpstack", 2, None, 5, False)],
                           [(lpwa.env_id, fcnt, at, "gw-1", -90.0, 7.5, 7, 125_000, 868_100_000, "SF7BW125", None, 5)])

    with psycopg.connect(database_url) as conn:
        assert write_link_records(conn, uplink(1)) == 0
        conn.commit()
        redelivered = uplink(1)
        redelivered.frames += uplink(2).frames
        redelivered.receptions += uplink(2).receptions
        assert write_link_records(conn, redelivered) == 0
        conn.commit()
        frames = conn.execute("SELECT fcnt FROM uplink_frame WHERE device_id = %s ORDER BY fcnt", (lpwa.env_id,)).fetchall()
        receptions = conn.execute("SELECT fcnt, gateway_id FROM uplink_reception WHERE device_id = %s ORDER BY fcnt",
                                  (lpwa.env_id,)).fetchall()
    assert frames == [(1,), (2,)]
    assert receptions == [(1, "gw-1"), (2, "gw-1")]
