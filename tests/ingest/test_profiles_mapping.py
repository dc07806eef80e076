"""A profile's measurement mapping: paths into the codec's output, value maps and unit
conversions make the measurements; what it does not take is kept; what it cannot read is named."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from devices.profiles import MeasurementMapping
from ingest.readings import EXTRA_MAX_CHARS, apply_mapping, extra_json
from pilotlab.errors import MessageRejected
from store.migrate import migrate
from tests.store.filling import fill_at, telemetry_rows


def _mapping(*entries: dict[str, Any]) -> list[MeasurementMapping]:
    return [MeasurementMapping.model_validate(entry) for entry in entries]


def test_paths_value_maps_and_units_make_the_measurements_and_the_rest_is_kept() -> None:
    output = {"data": {"relay": "OFF", "meter": [{"kwh": 1.5}, {"kwh": 2.0}], "temp_f": 212},
              "speed_kmh": 36, "note": "hi", "absent": None}
    fields, extra = apply_mapping(_mapping(
        {"from": "data.relay", "to": "relay_on", "values": {"ON": True, "OFF": False}},
        {"from": "data.meter[1].kwh", "to": "energy_wh", "unit": "kWh->Wh"},
        {"from": "data.temp_f", "to": "temperature_c", "unit": "°F->°C"},
        {"from": "speed_kmh", "to": "speed_mps", "unit": "km/h->m/s"},
        {"from": "absent", "to": "power_w"},
        {"from": "nowhere.at_all", "to": "battery_pct"},
    ), output)
    assert fields == {"relay_on": False, "energy_wh": 2000.0, "temperature_c": 100.0, "speed_mps": 10.0}
    assert extra == {"data": {"meter": [{"kwh": 1.5}, None]}, "note": "hi", "absent": None}
    assert output["data"]["relay"] == "OFF"  # the codec's output itself is left as it was


def test_a_number_is_looked_up_in_a_value_map_by_its_json_text() -> None:
    fields, extra = apply_mapping(_mapping({"from": "s", "to": "relay_on", "values": {"1": True, "0": False}}), {"s": 1})
    assert (fields, extra) == ({"relay_on": True}, None)


@pytest.mark.parametrize(("entry", "output", "says"), [
    ({"from": "s", "to": "relay_on", "values": {"ON": True}}, {"s": "BLINK"}, "'BLINK' is not in the value map"),
    ({"from": "p", "to": "power_w", "unit": "kW->W"}, {"p": "12"}, "p is str, kW->W needs a number"),
])
def test_what_a_mapping_cannot_read_is_a_codec_error_naming_the_path(entry: dict[str, Any], output: dict[str, Any],
                                                                     says: str) -> None:
    with pytest.raises(MessageRejected, match=says) as caught:
        apply_mapping(_mapping(entry), output, "fPort 5")
    assert caught.value.reason.value == "codec_error" and caught.value.detail.startswith("fPort 5")


def test_the_kept_output_is_json_postgresql_accepts_and_bounded() -> None:
    assert extra_json(None) is None and extra_json({}) is None
    assert extra_json({"a\x00": "b\x00c"}) == '{"a":"bc"}'
    assert extra_json({"x": float("nan")}) == '{"x":null}'
    huge = extra_json({"blob": "x" * (EXTRA_MAX_CHARS + 1)})
    assert huge is not None and '"_truncated":true' in huge and len(huge) < 100


def test_telemetry_extra_is_added_and_holds_json(empty_database: str, database_server: str) -> None:
    _upgrade_keeps_rows_and_adds_extra(empty_database, database_server)


@pytest.mark.timescaledb
def test_telemetry_extra_is_added_over_compressed_chunks_and_holds_json(empty_database: str,
                                                                        database_server: str) -> None:
    _upgrade_keeps_rows_and_adds_extra(empty_database, database_server)


def _upgrade_keeps_rows_and_adds_extra(url: str, database_server: str) -> None:
    migrate(url, target=12)
    fill = fill_at(url, 12)
    applied = [name.removesuffix(".sql") for name in migrate(url).applied]
    assert "0014_telemetry_extra" in applied and "0015_tracker_altitude" in applied
    with psycopg.connect(url, autocommit=True) as conn:
        assert telemetry_rows(conn) == fill.telemetry
        column = conn.execute("SELECT data_type, is_nullable, column_default FROM information_schema.columns "
                              "WHERE table_name = 'telemetry' AND column_name = 'extra'").fetchone()
        assert column == ("jsonb", "YES", None)
        altitude = conn.execute("SELECT data_type, is_nullable, column_default FROM information_schema.columns "
                                "WHERE table_name = 'telemetry' AND column_name = 'altitude_m'").fetchone()
        assert altitude == ("double precision", "YES", None)
        late = fill.compressed_time or fill.telemetry[0][2]
        conn.execute("INSERT INTO telemetry (device_id, seq, device_time, ingest_time, channel, size_bytes, "
                     "temperature_c, profile_version, extra) VALUES (%s, 4343, %s, now(), 'telemetry', 9, 20.5, 2, "
                     "'{\"BatV\": 3.06}')", (fill.device_id, late))
        assert conn.execute("SELECT extra FROM telemetry WHERE device_id = %s AND seq = 4343",
                            (fill.device_id,)).fetchone() == ({"BatV": 3.06},)
        if database_server == "timescaledb":
            assert fill.compressed_time is not None
            compressed = conn.execute("SELECT count(*) FROM timescaledb_information.chunks "
                                      "WHERE hypertable_name = 'telemetry' AND is_compressed").fetchone()
            assert compressed is not None and compressed[0] > 0


def test_one_path_may_give_two_measurements_and_a_codecs_own_output_is_taken_apart_in_place() -> None:
    output = {"v": 1, "keep": [1, 2]}
    fields, extra = apply_mapping(_mapping({"from": "v", "to": "relay_on", "values": {"1": True}},
                                           {"from": "v", "to": "power_w"}), output, copy=False)
    assert (fields, extra) == ({"relay_on": True, "power_w": 1}, {"keep": [1, 2]})
