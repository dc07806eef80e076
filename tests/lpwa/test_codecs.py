"""Binary layouts: what a firmware encodes, ingest decodes to the same values; anything that
breaks a layout is refused, never misread."""

from __future__ import annotations

from typing import Any

import pytest

from devices.codecs import FPORT_CAYENNE_LPP, UnknownPort, cayenne_lpp, decode_frame, encode_frame
from devices.kinds import Channel, DeviceKind
from devices.telemetry import payload_model
from ingest.directory import DeviceEntry
from ingest.readings import lorawan_reading
from pilotlab.errors import CodecError

TRUTH = {
    DeviceKind.ENV_SENSOR: {"temperature_c": 21.4, "humidity_pct": 44.5, "pm25_ugm3": 12.1, "pm10_ugm3": 20.3,
                            "co2_ppm": 640.0, "noise_dba": 48.5, "battery_pct": 93.0},
    DeviceKind.SMART_SWITCH: {"relay_on": True, "power_w": 41.5, "energy_wh": 12873.2, "trigger": "button"},
    DeviceKind.LOCATION_TRACKER: {"lat": 37.5665, "lon": 126.978, "accuracy_m": 4.2, "speed_mps": 1.3,
                                  "fix_type": "3d", "battery_pct": 87.0},
}


@pytest.mark.parametrize("kind", list(TRUTH))
def test_telemetry_of_each_kind_decodes_to_what_was_encoded(kind: DeviceKind) -> None:
    port, data = encode_frame(kind, Channel.TELEMETRY, TRUTH[kind])
    assert port == 1 and data[0] == 1 and len(data) <= 15
    assert decode_frame(kind, port, data) == (Channel.TELEMETRY, TRUTH[kind])


def test_the_readme_worked_example_is_the_env_sensor_layout() -> None:
    fields = {"temperature_c": 21.5, "humidity_pct": 44.0, "battery_pct": 93.0}
    port, data = encode_frame(DeviceKind.ENV_SENSOR, Channel.TELEMETRY, fields)
    assert data.hex(" ") == "01 43 08 66 58 5d"
    assert decode_frame(DeviceKind.ENV_SENSOR, port, data)[1] == fields


def test_a_partial_env_reading_and_a_tracker_without_fix_are_short() -> None:
    _, env = encode_frame(DeviceKind.ENV_SENSOR, Channel.TELEMETRY, {"co2_ppm": 900.0})
    _, tracker = encode_frame(DeviceKind.LOCATION_TRACKER, Channel.TELEMETRY, {"fix_type": "none", "battery_pct": 50.0})
    assert len(env) == 4 and len(tracker) == 3
    assert decode_frame(DeviceKind.LOCATION_TRACKER, 1, tracker)[1] == {"fix_type": "none", "battery_pct": 50.0}


def test_status_round_trips_with_and_without_battery() -> None:
    for fields in ({"state": "low_battery", "battery_pct": 9.0, "uptime_s": 86400}, {"state": "online", "uptime_s": 5}):
        port, data = encode_frame(DeviceKind.SMART_SWITCH, Channel.STATUS, fields)
        assert port == 2 and decode_frame(DeviceKind.SMART_SWITCH, port, data) == (Channel.STATUS, fields)


@pytest.mark.parametrize(("kind", "data", "says"), [
    (DeviceKind.ENV_SENSOR, b"", "ends"),
    (DeviceKind.ENV_SENSOR, bytes.fromhex("01 01 08"), "ends"),                  # temperature cut short
    (DeviceKind.ENV_SENSOR, bytes.fromhex("02 01 08 66"), "version 2"),          # a layout this decoder does not read
    (DeviceKind.ENV_SENSOR, bytes.fromhex("01 80"), "presence bits"),            # bit 7 is not defined
    (DeviceKind.ENV_SENSOR, bytes.fromhex("01 40 5d 00"), "trailing"),
    (DeviceKind.SMART_SWITCH, bytes.fromhex("01 0f 00 00 00 01 00 00 00 01"), "trigger code 7"),
    (DeviceKind.LOCATION_TRACKER, bytes.fromhex("01 07 50"), "flag bits"),
    (DeviceKind.ENV_SENSOR, bytes.fromhex("aa"), "version 170"),                 # ChirpStack's documented example "qg=="
])
def test_short_or_garbled_frames_are_refused(kind: DeviceKind, data: bytes, says: str) -> None:
    with pytest.raises(CodecError, match=says):
        decode_frame(kind, 1, data)


def test_a_port_without_a_layout_is_its_own_error() -> None:
    with pytest.raises(UnknownPort):
        decode_frame(DeviceKind.ENV_SENSOR, 99, b"\x01")


def test_cayenne_lpp_decodes_the_documented_examples() -> None:
    # Cayenne LPP documentation: two temperature sensors; a GPS fix.
    assert cayenne_lpp.decode(bytes.fromhex("03 67 01 10 05 67 00 ff")) == [
        (3, "temperature", 27.2), (5, "temperature", 25.5)]
    gps = cayenne_lpp.decode(bytes.fromhex("01 88 06 76 5f f2 96 0a 00 03 e8"))
    assert gps == [(1, "gps", (42.3519, -87.9094, 10.0))]
    assert cayenne_lpp.decode(bytes.fromhex("06 71 04 d2 fb 2e 00 00")) == [(6, "accelerometer", (1.234, -1.234, 0.0))]


def test_cayenne_lpp_maps_to_pilotlab_fields_and_round_trips() -> None:
    values = [cayenne_lpp.LppValue(1, "temperature", -4.1), cayenne_lpp.LppValue(2, "humidity", 55.5),
              cayenne_lpp.LppValue(3, "percentage", 80)]
    data = cayenne_lpp.encode(values)
    assert data.hex(" ") == "01 67 ff d7 02 68 6f 03 78 50"
    assert decode_frame(DeviceKind.ENV_SENSOR, FPORT_CAYENNE_LPP, data) == (
        Channel.TELEMETRY, {"temperature_c": -4.1, "humidity_pct": 55.5, "battery_pct": 80.0})


@pytest.mark.parametrize("data", ["", "01 67 01", "01 ee 00 00"])
def test_cayenne_lpp_refuses_empty_truncated_and_unknown_types(data: str) -> None:
    with pytest.raises(CodecError):
        cayenne_lpp.decode(bytes.fromhex(data))



# The Cayenne LPP documentation's GPS example (42.3519 N, 87.9094 W, 10 m), a battery on channel 2,
# and the objects the network servers' own LPP decoders make of it.
LPP_GPS = bytes.fromhex("01 88 06 76 5f f2 96 0a 00 03 e8 02 78 57")
LPP_GPS_OBJECTS = {
    "bytes only": None,
    "The Things Stack": {"gps_1": {"latitude": 42.3519, "longitude": -87.9094, "altitude": 10},
                         "percentage_2": 87},
    "ChirpStack": {"gpsLocation": {"1": {"latitude": 42.3519, "longitude": -87.9094, "altitude": 10}},
                   "percentage": {"2": 87}},
}


@pytest.mark.parametrize("decoded", list(LPP_GPS_OBJECTS.values()), ids=list(LPP_GPS_OBJECTS))
def test_a_cayenne_lpp_gps_value_without_a_profile_keeps_its_altitude(decoded: dict[str, Any] | None) -> None:
    tracker = DeviceEntry("pilot", DeviceKind.LOCATION_TRACKER, None)
    channel, fields = lorawan_reading(tracker, FPORT_CAYENNE_LPP, LPP_GPS, decoded)
    assert channel is Channel.TELEMETRY
    assert fields == {"lat": 42.3519, "lon": -87.9094, "altitude_m": 10.0, "fix_type": "3d", "battery_pct": 87.0}
    reading = payload_model(DeviceKind.LOCATION_TRACKER, channel).model_validate(
        {"ts": "2024-05-01T10:00:00Z", "seq": 0, **fields})
    assert reading.altitude_m == 10.0  # type: ignore[attr-defined]
