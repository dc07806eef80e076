"""Device profiles through the API against the real database: created, validated strictly,
versioned (old versions kept and immutable), owned by a firm or public, referenced by devices."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from access import api_keys

# A Cayenne LPP environment sensor, as the README's example.
LPP_SENSOR: dict[str, Any] = {
    "vendor": "Acme", "model": "AirSense LPP", "firmware_version": "2.1", "kind": "env_sensor",
    "reporting_interval_s": 600, "measurements": ["temperature_c", "humidity_pct", "battery_pct"],
    "lorawan": {"region": "EU868", "mac_version": "LORAWAN_1_0_3", "reg_params_revision": "A"},
    "uplinks": {"1": {"codec": {"type": "cayenne_lpp"},
                      "mapping": [{"from": "temperature_1", "to": "temperature_c"},
                                  {"from": "humidity_2", "to": "humidity_pct"},
                                  {"from": "analog_in_3", "to": "battery_pct"}]}},
}
SWITCH: dict[str, Any] = {
    "vendor": "Acme", "model": "Plug", "firmware_version": "1.0", "kind": "smart_switch", "reporting_interval_s": 60,
    "measurements": ["relay_on", "energy_wh", "power_w"],
    "uplinks": {"10": {"codec": {"type": "network_server_object"},
                       "mapping": [{"from": "relay", "to": "relay_on", "values": {"ON": True, "OFF": False}},
                                   {"from": "energy.total", "to": "energy_wh", "unit": "kWh->Wh"}]}},
    "native": {"telemetry": {"mapping": [{"from": "POWER", "to": "relay_on", "values": {"ON": True, "OFF": False}},
                                         {"from": "ENERGY.Power", "to": "power_w"},
                                         {"from": "Time", "to": "ts"}]}},
}


@pytest.fixture
def firm_of(db: psycopg.Connection) -> Callable[[str], str]:
    def firm(pilot_id: str) -> str:
        row = db.execute("SELECT firm_id FROM pilot WHERE id = %s", (pilot_id,)).fetchone()
        assert row is not None
        return str(row[0])
    return firm


def _key(db: psycopg.Connection, role: str, **scope: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_keys.create(db, role, **scope).token}"}


def test_a_profile_is_created_read_and_changed_into_versions_that_stay_as_they_were(
        client: TestClient, pilot_id: str, firm_of: Callable[[str], str], unique_id: Callable[[str], str]) -> None:
    profile = unique_id("lpp")
    created = client.post("/device-profiles", json={"id": profile, "firm_id": firm_of(pilot_id), **LPP_SENSOR})
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["version"], body["current_version"], body["kind"], body["firm_id"]) == (1, 1, "env_sensor", firm_of(pilot_id))
    assert body["definition"]["uplinks"]["1"]["mapping"][0] == {"from": "temperature_1", "to": "temperature_c"}

    changed = copy.deepcopy(LPP_SENSOR)
    changed["firmware_version"] = "2.2"
    changed["uplinks"]["1"]["mapping"][0]["unit"] = "°F->°C"
    answer = client.put(f"/device-profiles/{profile}", json=changed)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["version"], answer.json()["current_version"]) == (2, 2)

    first = client.get(f"/device-profiles/{profile}", params={"version": 1}).json()
    assert first["definition"]["firmware_version"] == "2.1" and "unit" not in first["definition"]["uplinks"]["1"]["mapping"][0]
    assert (first["version"], first["current_version"]) == (1, 2)
    current = client.get(f"/device-profiles/{profile}").json()
    assert current["definition"]["uplinks"]["1"]["mapping"][0]["unit"] == "°F->°C"
    versions = client.get(f"/device-profiles/{profile}/versions").json()
    assert [(v["version"], v["firmware_version"]) for v in versions] == [(1, "2.1"), (2, "2.2")]
    missing = client.get(f"/device-profiles/{profile}", params={"version": 3})
    assert missing.status_code == 404 and "no version 3" in missing.json()["detail"]
    assert client.post("/device-profiles", json={"id": profile, **LPP_SENSOR}).status_code == 409


def test_a_stored_version_cannot_be_changed_in_the_database(
        client: TestClient, db: psycopg.Connection, unique_id: Callable[[str], str]) -> None:
    profile = unique_id("frozen")
    assert client.post("/device-profiles", json={"id": profile, **LPP_SENSOR}).status_code == 201
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="immutable"):
        db.execute("UPDATE device_profile_version SET definition = '{}' WHERE profile_id = %s", (profile,))


def _with(base: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    change(out)
    return out


REFUSED: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("unknown measurement", lambda d: d["measurements"].append("ozone_ppb"), "ozone_ppb"),
    ("unknown unit", lambda d: d["uplinks"]["1"]["mapping"][0].update(unit="mV->%"), "mV->%"),
    ("unit of another quantity", lambda d: d["uplinks"]["1"]["mapping"][0].update(unit="kWh->Wh"), "gives Wh"),
    ("fPort 0", lambda d: d["uplinks"].update({"0": d["uplinks"]["1"]}), "1-223"),
    ("fPort 224", lambda d: d["uplinks"].update({"224": d["uplinks"]["1"]}), "1-223"),
    ("fPort with a leading zero", lambda d: d["uplinks"].update({"01": d["uplinks"]["1"]}), "1-223"),
    ("a value map for a number", lambda d: d["uplinks"]["1"]["mapping"][0].update(values={"HOT": 30, "COLD": 5}),
     "'temperature_1' -> 'temperature_c': a value map is for an enumeration"),
    ("path syntax", lambda d: d["uplinks"]["1"]["mapping"][0].update({"from": "data..t"}), "from"),
    ("undeclared target", lambda d: d["measurements"].remove("battery_pct"), "not among the profile's measurements"),
    ("a target mapped twice", lambda d: d["uplinks"]["1"]["mapping"][1].update(to="temperature_c"), "mapped twice"),
    ("unknown codec", lambda d: d["uplinks"]["1"].update(codec={"type": "protobuf"}), "codec"),
    ("javascript too large", lambda d: d["uplinks"]["1"].update(codec={"type": "javascript", "script": "x" * (256 * 1024 + 1)}),
     "262145 bytes"),
    ("javascript without mapping", lambda d: d["uplinks"]["1"].update(codec={"type": "javascript", "script": "function "
                                                                             "decodeUplink(i) {}"}, mapping=[]), "needs a mapping"),
    ("another kind's layout", lambda d: d["uplinks"]["1"].update(codec={"type": "pilotlab", "layout": "smart_switch"}),
     "layout 'smart_switch'"),
    ("an env sensor without a measurement of its own", lambda d: d.update(measurements=["battery_pct"]) or d["uplinks"].clear(),
     "must declare one of"),
    ("unknown field", lambda d: d.update(colour="red"), "colour"),
]


@pytest.mark.parametrize(("case", "change", "named"), REFUSED, ids=[c[0] for c in REFUSED])
def test_a_definition_that_breaks_a_rule_is_refused_naming_it(
        client: TestClient, unique_id: Callable[[str], str], case: str,
        change: Callable[[dict[str, Any]], None], named: str) -> None:
    profile = unique_id("bad")
    answer = client.post("/device-profiles", json={"id": profile, **_with(LPP_SENSOR, change)})
    assert answer.status_code == 422, answer.text
    assert named in answer.text
    detail = answer.json()["detail"]
    assert "\n" not in detail and "Value error" not in detail
    assert client.get(f"/device-profiles/{profile}").status_code == 404


def _javascript_on_port_2(script: str) -> dict[str, Any]:
    """LPP_SENSOR with a vendor JavaScript codec on fPort 2 besides its Cayenne LPP port."""
    return _with(LPP_SENSOR, lambda d: d["uplinks"].update(
        {"2": {"codec": {"type": "javascript", "script": script}, "mapping": [{"from": "t", "to": "temperature_c"}]}}))


GOOD_CODEC = "function decodeUplink(input) { return {data: {t: input.bytes[0]}}; }"
BROKEN_CODECS = [
    ("a syntax error", "function decodeUplink(input) {\n  return {data: {t: input.bytes[0]}; }\n",
     "(codec_threw): SyntaxError: "),
    ("no entry point", "function decode(input) { return {data: {}}; }",
     "(codec_missing_entry_point): the codec defines no function decodeUplink(input)"),
]


@pytest.mark.parametrize(("case", "script", "says"), BROKEN_CODECS, ids=[c[0] for c in BROKEN_CODECS])
def test_a_javascript_codec_that_does_not_load_is_refused_on_create_and_on_change(
        client: TestClient, unique_id: Callable[[str], str], case: str, script: str, says: str) -> None:
    profile = unique_id("js")
    refused = client.post("/device-profiles", json={"id": profile, **_javascript_on_port_2(script)})
    assert refused.status_code == 422, refused.text
    detail = refused.json()["detail"]
    assert detail.startswith("invalid device profile: fPort 2: the JavaScript codec does not load ") and says in detail
    assert "\n" not in detail
    assert client.get(f"/device-profiles/{profile}").status_code == 404

    created = client.post("/device-profiles", json={"id": profile, **_javascript_on_port_2(GOOD_CODEC)})
    assert created.status_code == 201, created.text
    changed = client.put(f"/device-profiles/{profile}", json=_javascript_on_port_2(script))
    assert changed.status_code == 422 and changed.json()["detail"] == detail
    assert [v["version"] for v in client.get(f"/device-profiles/{profile}/versions").json()] == [1]


def test_every_port_whose_codec_does_not_load_is_named(client: TestClient, unique_id: Callable[[str], str]) -> None:
    broken = _javascript_on_port_2("function Decoder(bytes, port) { return {t: bytes[0]} ")
    broken["uplinks"]["17"] = broken["uplinks"]["2"]
    broken["uplinks"]["9"] = copy.deepcopy(broken["uplinks"]["2"]) | {"codec": {"type": "javascript", "script": "var x = 1;"}}
    answer = client.post("/device-profiles", json={"id": unique_id("js"), **broken})
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert [part.split(":")[0] for part in detail.removeprefix("invalid device profile: ").split("; ")] == \
        ["fPort 2", "fPort 9", "fPort 17"]
    assert "fPort 9: the JavaScript codec does not load (codec_missing_entry_point)" in detail


def test_value_maps_must_give_values_the_measurement_takes(client: TestClient, unique_id: Callable[[str], str]) -> None:
    bad = _with(SWITCH, lambda d: d["uplinks"]["10"]["mapping"][0].update(values={"ON": "yes"}))
    answer = client.post("/device-profiles", json={"id": unique_id("sw"), **bad})
    assert answer.status_code == 422 and "values['ON'] = 'yes' is no valid relay_on" in answer.text
    good = client.post("/device-profiles", json={"id": unique_id("sw"), **SWITCH})
    assert good.status_code == 201, good.text
    assert good.json()["definition"]["native"]["telemetry"]["mapping"][2] == {"from": "Time", "to": "ts"}


def test_a_profile_keeps_its_kind(client: TestClient, unique_id: Callable[[str], str]) -> None:
    profile = unique_id("kind")
    assert client.post("/device-profiles", json={"id": profile, **LPP_SENSOR}).status_code == 201
    answer = client.put(f"/device-profiles/{profile}", json=SWITCH)
    assert answer.status_code == 422 and "kind cannot change" in answer.json()["detail"]
    assert client.get(f"/device-profiles/{profile}/versions").json()[-1]["version"] == 1


def test_a_firm_sees_and_changes_its_own_profiles_and_uses_public_ones(
        client: TestClient, db: psycopg.Connection, unique_id: Callable[[str], str]) -> None:
    firms = [unique_id("pfa"), unique_id("pfb")]
    for firm in firms:
        assert client.post("/firms", json={"id": firm, "name": firm}).status_code == 201
    mine, theirs = _key(db, "firm", firm_id=firms[0]), _key(db, "firm", firm_id=firms[1])
    own, public = unique_id("own"), unique_id("public")
    created = client.post("/device-profiles", json={"id": own, **LPP_SENSOR}, headers=mine)
    assert created.status_code == 201 and created.json()["firm_id"] == firms[0]  # a firm key's own by default
    assert client.post("/device-profiles", json={"id": public, **LPP_SENSOR}).status_code == 201  # admin: public
    assert client.get(f"/device-profiles/{public}").json()["firm_id"] is None

    assert client.get(f"/device-profiles/{own}", headers=theirs).status_code == 404
    assert client.get(f"/device-profiles/{own}", headers=theirs).json() == \
        client.get("/device-profiles/no-such-profile", headers=theirs).json() | {"detail": f"no device profile with id {own!r}"}
    assert client.put(f"/device-profiles/{own}", json=LPP_SENSOR, headers=theirs).status_code == 404
    assert client.get(f"/device-profiles/{public}", headers=theirs).status_code == 200
    refused = client.put(f"/device-profiles/{public}", json=LPP_SENSOR, headers=mine)
    assert refused.status_code == 403 and "admin" in refused.json()["detail"]
    assert client.put(f"/device-profiles/{own}", json=LPP_SENSOR, headers=mine).json()["version"] == 2
    assert client.post("/device-profiles", json={"id": unique_id("x"), "firm_id": firms[1], **LPP_SENSOR},
                       headers=mine).status_code == 422

    listed = client.get("/device-profiles", params={"firm_id": firms[1]}, headers=theirs).json()
    assert own not in {p["id"] for p in listed} and public in {p["id"] for p in listed}
    assert own in {p["id"] for p in client.get("/device-profiles", params={"firm_id": firms[0]}, headers=mine).json()}
    assert client.get("/device-profiles", headers=mine).status_code == 403  # a firm lists within its scope
    assert client.get("/device-profiles", params={"firm_id": firms[1]}, headers=mine).status_code == 404


def test_profiles_are_listed_by_vendor_and_kind(client: TestClient, unique_id: Callable[[str], str]) -> None:
    vendor = unique_id("Vendor")
    sensor, switch = unique_id("s"), unique_id("w")
    assert client.post("/device-profiles", json={"id": sensor, **LPP_SENSOR, "vendor": vendor}).status_code == 201
    assert client.post("/device-profiles", json={"id": switch, **SWITCH, "vendor": vendor}).status_code == 201
    both = client.get("/device-profiles", params={"vendor": vendor.upper()}).json()
    assert [p["id"] for p in both] == sorted([sensor, switch])
    switches = client.get("/device-profiles", params={"vendor": vendor, "kind": "smart_switch"}).json()
    assert [p["id"] for p in switches] == [switch]


def test_a_device_uses_its_firms_profile_or_a_public_one_of_its_kind(
        client: TestClient, pilot_id: str, make_device: Callable[..., str], firm_of: Callable[[str], str],
        unique_id: Callable[[str], str]) -> None:
    device = make_device("env_sensor")
    other_firm = unique_id("other")
    assert client.post("/firms", json={"id": other_firm, "name": "Other"}).status_code == 201
    own, public, foreign, switch = (unique_id(n) for n in ("own", "pub", "foreign", "switch"))
    assert client.post("/device-profiles", json={"id": own, "firm_id": firm_of(pilot_id), **LPP_SENSOR}).status_code == 201
    assert client.post("/device-profiles", json={"id": public, **LPP_SENSOR}).status_code == 201
    assert client.post("/device-profiles", json={"id": foreign, "firm_id": other_firm, **LPP_SENSOR}).status_code == 201
    assert client.post("/device-profiles", json={"id": switch, "firm_id": firm_of(pilot_id), **SWITCH}).status_code == 201

    answer = client.put(f"/devices/{device}/profile", json={"profile_id": own})
    assert answer.status_code == 200 and answer.json()["profile_id"] == own
    assert client.get(f"/devices/{device}").json()["profile_id"] == own
    assert client.put(f"/devices/{device}/profile", json={"profile_id": public}).json()["profile_id"] == public
    refused = client.put(f"/devices/{device}/profile", json={"profile_id": foreign})  # even for an admin key
    missing = client.put(f"/devices/{device}/profile", json={"profile_id": "no-such"})
    assert refused.status_code == missing.status_code == 422
    assert refused.json()["detail"] == missing.json()["detail"].replace("'no-such'", repr(foreign))
    wrong_kind = client.put(f"/devices/{device}/profile", json={"profile_id": switch})
    assert wrong_kind.status_code == 422 and "smart_switch" in wrong_kind.json()["detail"]
    assert client.put(f"/devices/{device}/profile", json={"profile_id": None}).json()["profile_id"] is None
    assert client.get(f"/devices/{device}").json()["profile_id"] is None


def test_a_firm_with_profiles_is_not_deleted(client: TestClient, unique_id: Callable[[str], str]) -> None:
    firm = unique_id("firm")
    assert client.post("/firms", json={"id": firm, "name": "Keeps profiles"}).status_code == 201
    assert client.post("/device-profiles", json={"id": unique_id("p"), "firm_id": firm, **LPP_SENSOR}).status_code == 201
    answer = client.delete(f"/firms/{firm}")
    assert answer.status_code == 409 and "1 device profiles" in answer.json()["detail"]


def test_the_readmes_example_profile_is_valid_and_the_one_tested_here() -> None:
    from pathlib import Path

    import yaml

    from devices.profiles import ProfileDefinition

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Device profiles", 1)[1].split("\n## ", 1)[0]
    example = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])
    assert example.pop("id") == "acme-airsense-lpp"
    assert example == LPP_SENSOR
    ProfileDefinition.model_validate(example)


def test_only_an_admin_makes_or_changes_a_public_profile(
        client: TestClient, db: psycopg.Connection, pilot_id: str, firm_of: Callable[[str], str],
        unique_id: Callable[[str], str]) -> None:
    provisioning, manager = _key(db, "provisioning"), _key(db, "pilot_manager", pilot_ids=[pilot_id])
    public = unique_id("pub")
    for headers in (provisioning, manager):
        answer = client.post("/device-profiles", json={"id": public, **LPP_SENSOR}, headers=headers)
        assert answer.status_code in (403, 422) and "admin" in answer.json()["detail"]
    owned = client.post("/device-profiles", json={"id": unique_id("mgr"), "firm_id": firm_of(pilot_id), **LPP_SENSOR},
                        headers=manager)
    assert owned.status_code == 201 and owned.json()["firm_id"] == firm_of(pilot_id)
    assert client.post("/device-profiles", json={"id": public, **LPP_SENSOR}).status_code == 201
    assert client.put(f"/device-profiles/{public}", json=LPP_SENSOR, headers=provisioning).status_code == 403
    assert client.put(f"/device-profiles/{public}", json=LPP_SENSOR).json()["version"] == 2
