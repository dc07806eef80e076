"""Seven real device models end to end (issue 14): three environment sensors, two switches and two
trackers, each read by a device profile that uploads the vendor's codec unchanged
(tests/codecs/vendor_codecs) with a mapping suited to the model. Every one of the vendor's example
uplinks (tests/codecs/vendor_examples.yaml, from TTN's LoRaWAN Device Repository) is published over
the real broker as a ChirpStack v4 event and as a The Things Stack v3 uplink, and what it becomes
follows from the vendor's expected output alone: the mapped measurements (values mapped, units
converted) in the reading, the rest of the output unchanged in telemetry.extra, the profile
version recorded; an expected `errors` output is a codec_errors dead letter with the vendor's
message. A switch frame is a reading when it carries one of the switch's measurements (relay_on
null without the relay's state), a tracker frame without a position a no-fix report; where a model
sends device information on its readings' port (the AT101's power-on report, the R809A's start-up
report), its profile makes a frame without measurements an event, its output kept. Where the
vendor's examples lack a position, the trackers get frames built from their documented layouts
(as tests/codecs/test_vendor_codecs.py builds them)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from devices.kinds import DeviceKind
from devices.profiles import measurements
from tests.lpwa import messages as m
from tests.lpwa.conftest import LpwaPilot, profile_definition, use_profile
from tests.support import wait_until

CODECS = Path(__file__).parents[1] / "codecs"
VENDOR = {model["model"]: model for model in yaml.safe_load((CODECS / "vendor_examples.yaml").read_text())["models"]}

# The unit conversions these models need, stated here apart from devices.profiles.UNIT_CONVERSIONS.
FACTOR = {"km/h->m/s": 1000 / 3600}
# What a reading holds for a measurement its frame does not give.
UNSET: dict[DeviceKind, dict[str, Any]] = {DeviceKind.SMART_SWITCH: {"trigger": "heartbeat"}}


@dataclass(frozen=True)
class Frame:
    """An uplink and the codec output its vendor (or its documented layout) says it gives."""

    description: str
    f_port: int
    data: bytes
    output: dict[str, Any]  # {"data": {...}} or {"errors": [...]}


@dataclass(frozen=True)
class Refused:
    reason: str
    detail: str  # a text the dead letter's detail contains


@dataclass(frozen=True)
class Stored:
    channel: str
    columns: dict[str, Any]  # the kind's measurement columns (and an event's name)
    extra: dict[str, Any] | None


@dataclass(frozen=True)
class Model:
    """A device model as its profile reads it: the fPorts it gives the vendor's codec, the mapping,
    and frames of ours built from the vendor's layout where its examples lack one."""

    name: str
    ports: tuple[int, ...]
    mapping: tuple[dict[str, Any], ...]
    built: tuple[Frame, ...] = ()
    without_measurements: str | None = None  # the event a frame the mapping finds nothing in becomes

    def uplink(self) -> dict[str, Any]:
        """The profile's entry for each of its ports."""
        rule = {"without_measurements": {"event": self.without_measurements}} if self.without_measurements else {}
        return {"codec": {"type": "javascript", "script": self.script}, "mapping": list(self.mapping), **rule}

    @property
    def kind(self) -> DeviceKind:
        return DeviceKind(VENDOR[self.name]["kind"])

    @property
    def script(self) -> str:
        return (CODECS / "vendor_codecs" / VENDOR[self.name]["codec"]).read_text()

    def frames(self) -> list[Frame]:
        return [Frame(e["description"], e["fPort"], bytes(e["bytes"]), e["output"]) for e in VENDOR[self.name]["examples"]
                ] + list(self.built)


def _one_report(name: str) -> Frame:
    """The vendor's single-channel examples as one frame, as the device's periodic report carries
    its channels together: its output is their outputs together."""
    examples = VENDOR[name]["examples"]
    return Frame("the examples' channels in one report", examples[0]["fPort"], b"".join(bytes(e["bytes"]) for e in examples),
                 {"data": {key: value for e in examples for key, value in e["output"]["data"].items()}})


def _le32(value: int) -> bytes:
    return value.to_bytes(4, "little", signed=True)


# -33.8688°, 151.2093° in each tracker's own units (Oyster 1e-7°, AT101 1e-6°).
OYSTER_POSITION = {"latitudeDeg": -33.8688, "longitudeDeg": 151.2093, "headingDeg": 90, "speedKmph": 12}
OYSTER_RECORD = _le32(-338_688_000) + _le32(1_512_093_000)  # then flags | heading / 5.625 << 2, km/h, V / 0.025
OYSTER_BUILT = (
    Frame("in a trip at 12 km/h (ours)", 1, OYSTER_RECORD + bytes([0x01 | (16 << 2), 12, 160]),
          {"data": {"type": "position", "inTrip": True, "fixFailed": False, "batV": 4.0, "manDown": None, **OYSTER_POSITION}}),
    Frame("fix failed, the last position cached (ours)", 1, OYSTER_RECORD + bytes([0x02 | (16 << 2), 12, 160]),
          {"data": {"type": "position", "inTrip": False, "fixFailed": True, "batV": 4.0, "manDown": None,
                    "cached": OYSTER_POSITION}}),
)
AT101_BUILT = Frame("battery and location (ours)", 85,
                    bytes([0x01, 0x75, 87, 0x04, 0x88]) + _le32(-33_868_800) + _le32(151_209_300) + bytes([0x12]),
                    {"data": {"battery": 87, "latitude": -33.8688, "longitude": 151.2093, "motion_status": "moving",
                              "geofence_status": "outside"}})


def _to(source: str, target: str, **how: Any) -> dict[str, Any]:
    return {"from": source, "to": target, **how}


MODELS = [
    Model("Milesight EM300-TH", (1,), (_to("temperature", "temperature_c"), _to("humidity", "humidity_pct"),
                                       _to("battery", "battery_pct"))),
    # fPort 42 too: the vendor's codec answers it with its own error. The battery is in volts, not a charge: kept.
    Model("Browan TBHH100", (103, 42), (_to("temperature", "temperature_c"), _to("humidity", "humidity_pct"))),
    # BatV is volts and TempC_DS the external probe's: both kept.
    Model("Dragino LHT65", (2, 42), (_to("TempC_SHT", "temperature_c"), _to("Hum_SHT", "humidity_pct"))),
    # energy in Wh, power in W: pilotlab's units already.
    Model("Milesight WS52x", (85,), (_to("button", "relay_on", values={"open": True, "close": False}),
                                     _to("power", "power_w"), _to("energy", "energy_wh")),
          built=(_one_report("Milesight WS52x"),)),
    # fPort 7 carries configuration responses, not readings: the profile leaves it out. fPort 6 alternates
    # a relay-and-energy report with a power one, and carries the start-up version report.
    Model("Netvox R809A", (6,), (_to("OnOff", "relay_on", values={"ON": True, "OFF": False}), _to("Power", "power_w"),
                                 _to("Energy", "energy_wh")), without_measurements="startup"),
    Model("Digital Matter Oyster", (1,), (_to("latitudeDeg", "lat"), _to("longitudeDeg", "lon"),
                                          _to("speedKmph", "speed_mps", unit="km/h->m/s")), built=OYSTER_BUILT),
    # Everything on fPort 85, its power-on device information too: no no-fix report, an event.
    Model("Milesight AT101", (85,), (_to("latitude", "lat"), _to("longitude", "lon"), _to("battery", "battery_pct")),
          built=(AT101_BUILT,), without_measurements="device_info"),
]


SWITCH_MEASUREMENTS = ("relay_on", "power_w", "energy_wh")


def expected(model: Model, frame: Frame) -> Stored | Refused:
    """The row the vendor's output implies (a reading, or the port's event), or the refusal."""
    if "errors" in frame.output:
        return Refused("codec_errors", "; ".join(frame.output["errors"]))
    if frame.f_port not in model.ports:
        return Refused("unknown_fport", f"fPort {frame.f_port} is not in device profile")
    rest, mapped = dict(frame.output["data"]), {}
    for entry in model.mapping:
        if rest.get(entry["from"]) is None:  # absent or null: no measurement, the output keeps it
            continue
        value = rest.pop(entry["from"])
        value = entry["values"][value] if "values" in entry else value
        mapped[entry["to"]] = value * FACTOR[entry["unit"]] if "unit" in entry else value
    unset = dict.fromkeys(measurements(model.kind), None)
    if not mapped and model.without_measurements:
        return Stored("event", unset | {"event": model.without_measurements}, rest or None)
    if model.kind is DeviceKind.SMART_SWITCH and not set(SWITCH_MEASUREMENTS) & set(mapped):
        return Refused("invalid_payload", "relay_on, power_w or energy_wh")  # no switch measurement: no reading
    if model.kind is DeviceKind.LOCATION_TRACKER:
        mapped["fix_type"] = "3d" if "lat" in mapped else "none"
    return Stored("telemetry", unset | UNSET.get(model.kind, {}) | mapped, rest or None)


def test_the_models_are_every_vendor_examples_model_and_cover_the_three_kinds_with_readings() -> None:
    assert sorted(model.name for model in MODELS) == sorted(VENDOR)
    assert {model.kind for model in MODELS} == set(DeviceKind)
    for model in MODELS:
        assert any(isinstance(want := expected(model, frame), Stored) and want.channel == "telemetry"
                   for frame in model.frames()), model.name


def _outcome(model_name: str, description: str) -> Stored | Refused:
    model = next(model for model in MODELS if model.name == model_name)
    return expected(model, next(frame for frame in model.frames() if frame.description.startswith(description)))


def test_switch_frames_with_metering_only_are_readings_and_device_information_frames_are_events() -> None:
    """The issue's findings: each of the R809A's two alternating reports is a reading (its power
    readings too), the WS52x energy-only frame is one, the AT101's power-on and the R809A's
    start-up reports are events, the WS52x voltage-only frame (no measurement pilotlab has, no
    rule in its profile) is refused."""
    power = _outcome("Netvox R809A", "Status report - 2")
    assert isinstance(power, Stored) and (power.channel, power.columns["power_w"], power.columns["relay_on"]) == (
        "telemetry", 220, None)
    energy = _outcome("Milesight WS52x", "Portable Socket (example 2)")
    assert isinstance(energy, Stored) and (energy.channel, energy.columns["energy_wh"]) == ("telemetry", 1110)
    for model_name, description, event in (("Milesight AT101", "Initial Connection", "device_info"),
                                           ("Netvox R809A", "Startup version report", "startup")):
        info = _outcome(model_name, description)
        assert isinstance(info, Stored) and (info.channel, info.columns["event"]) == ("event", event), model_name
        assert info.extra == VENDOR[model_name]["examples"][0]["output"]["data"]
    assert isinstance(_outcome("Milesight WS52x", "Portable Socket (example 1)"), Refused)


def _outcomes(database_url: str, lpwa: LpwaPilot, device_id: str, seqs: list[int]) -> dict[int, Any] | None:
    """seq -> its telemetry row (column -> value) or its dead letter (reason, detail); None until
    every seq has one."""
    topics = [m.chirpstack_topic(lpwa.app, lpwa.eui[device_id]), m.tts_topic(lpwa.app, "tts-" + device_id)]
    with psycopg.connect(database_url) as conn:
        cur = conn.execute("SELECT * FROM telemetry WHERE device_id = %s AND seq = ANY(%s)", (device_id, seqs))
        names = [c.name for c in cur.description]
        found: dict[int, Any] = {reading["seq"]: reading for reading in (dict(zip(names, row, strict=True)) for row in cur)}
        for payload, reason, detail in conn.execute("SELECT payload, reason, detail FROM dead_letter WHERE topic = ANY(%s)",
                                                    (topics,)):
            body = json.loads(payload)
            found[body["fCnt"] if "fCnt" in body else body["uplink_message"]["f_cnt"]] = (reason, detail)
    return found if set(seqs) <= set(found) else None


@pytest.mark.parametrize("model", MODELS, ids=[model.name for model in MODELS])
def test_a_real_models_vendor_codec_in_its_profile_reads_the_vendors_examples_from_both_network_servers(
    database_url: str, mqtt_url: str, lpwa: LpwaPilot, lpwa_worker: Callable, model: Model,
) -> None:
    device_id = {DeviceKind.ENV_SENSOR: lpwa.env_id, DeviceKind.SMART_SWITCH: lpwa.switch_id,
                 DeviceKind.LOCATION_TRACKER: lpwa.tracker_id}[model.kind]
    use_profile(database_url, device_id, f"{lpwa.app}-vendor", profile_definition(
        model.kind.value, [entry["to"] for entry in model.mapping], {str(port): model.uplink() for port in model.ports}))
    frames = model.frames()
    lpwa_worker()
    for i, frame in enumerate(frames):  # frame i: ChirpStack's frame counter 10 + 2i, TTS's 11 + 2i
        m.publish_both(mqtt_url, lpwa, device_id, 10 + 2 * i, frame.f_port, frame.data)
    seqs = list(range(10, 10 + 2 * len(frames)))
    outcomes = wait_until(lambda: _outcomes(database_url, lpwa, device_id, seqs), 15, what="a reading or dead letter per frame")
    for i, frame in enumerate(frames):
        want = expected(model, frame)
        for server, seq in (("ChirpStack", 10 + 2 * i), ("The Things Stack", 11 + 2 * i)):
            got, where = outcomes[seq], f"{frame.description} via {server}"
            if isinstance(want, Refused):
                assert isinstance(got, tuple) and got[0] == want.reason and want.detail in got[1], (where, got)
            else:
                assert isinstance(got, dict), (where, got)
                assert {name: got[name] for name in want.columns} == pytest.approx(want.columns), where
                assert (got["channel"], got["profile_version"], got["extra"]) == (want.channel, 1, want.extra), where
