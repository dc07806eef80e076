"""telemetry.profile_version (0012) on both servers: added to a database whose old chunks are
compressed, rows kept, and a reading stored into a compressed chunk records its profile version."""

from __future__ import annotations

import psycopg

from store.migrate import migrate
from tests.store.filling import fill_at, telemetry_rows


def test_readings_record_a_profile_version_after_an_upgrade_over_compressed_chunks(
        empty_database: str, database_server: str) -> None:
    url = empty_database
    migrate(url, target=11)
    fill = fill_at(url, 11)
    assert [name[:4] for name in migrate(url).applied] >= ["0012"]
    with psycopg.connect(url, autocommit=True) as conn:
        assert telemetry_rows(conn) == fill.telemetry
        column = conn.execute("SELECT is_nullable, column_default FROM information_schema.columns "
                              "WHERE table_name = 'telemetry' AND column_name = 'profile_version'").fetchone()
        assert column == ("YES", None)
        assert conn.execute("SELECT count(*) FROM telemetry WHERE profile_version IS NOT NULL").fetchone() == (0,)
        late = fill.compressed_time or fill.telemetry[0][2]
        conn.execute("INSERT INTO telemetry (device_id, seq, device_time, ingest_time, channel, size_bytes, "
                     "temperature_c, profile_version) VALUES (%s, 4242, %s, now(), 'telemetry', 12, 20.5, 3)",
                     (fill.device_id, late))
        assert conn.execute("SELECT profile_version, temperature_c FROM telemetry WHERE device_id = %s AND seq = 4242",
                            (fill.device_id,)).fetchone() == (3, 20.5)
        if database_server == "timescaledb":
            assert fill.compressed_time is not None
            compressed = conn.execute("SELECT count(*) FROM timescaledb_information.chunks "
                                      "WHERE hypertable_name = 'telemetry' AND is_compressed").fetchone()
            assert compressed is not None and compressed[0] > 0
