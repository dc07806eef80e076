"""`pilotlab profile`: create from YAML or JSON, list, show (any version), update into a new
version; a definition breaking a rule, an unreadable file or an unknown id is one line, exit 2."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import psycopg

from tests.cli.test_cli import assert_one_line_error, run

LPP_YAML = """\
id: {id}
vendor: {vendor}
model: AirSense LPP
firmware_version: "2.1"
kind: env_sensor
reporting_interval_s: 600
measurements: [temperature_c, humidity_pct]
uplinks:
  "1":
    codec: {{type: cayenne_lpp}}
    mapping:
      - {{from: temperature_1, to: temperature_c}}
      - {{from: humidity_2, to: humidity_pct}}
"""


def test_a_profile_is_created_listed_shown_and_updated_into_a_new_version(
        database_url: str, tmp_path: Path, unique_id: Callable[[str], str]) -> None:
    env = {"PILOTLAB_DATABASE_URL": database_url}
    profile, firm = unique_id("cli-lpp"), unique_id("cli-firm")
    vendor = unique_id("Acme")  # the session's database holds other tests' profiles: list only this one's vendor
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO firm (id, name) VALUES (%s, 'CLI firm')", (firm,))
    source = tmp_path / "lpp.yaml"
    source.write_text(LPP_YAML.format(id=profile, vendor=vendor), encoding="utf-8")
    created = run("profile", "create", str(source), "--firm", firm, env=env)
    assert created.returncode == 0, created.stderr
    assert f"{profile} v1 (firm {firm}): env_sensor, {vendor} AirSense LPP firmware 2.1" in created.stdout

    listed = run("profile", "list", "--vendor", vendor.lower(), "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert {"id": profile, "firm_id": firm, "kind": "env_sensor", "current_version": 1, "vendor": vendor,
            "model": "AirSense LPP", "firmware_version": "2.1"} in json.loads(listed.stdout)

    shown = json.loads(run("profile", "show", profile, env=env).stdout)
    changed = {**copy.deepcopy(shown["definition"]), "firmware_version": "2.2"}
    changed["uplinks"]["1"]["mapping"][0]["unit"] = "°F->°C"
    update = tmp_path / "v2.json"
    update.write_text(json.dumps(changed), encoding="utf-8")
    updated = run("profile", "update", profile, str(update), env=env)
    assert updated.returncode == 0 and f"{profile} v2" in updated.stdout, updated.stderr

    now = json.loads(run("profile", "show", profile, env=env).stdout)
    before = json.loads(run("profile", "show", profile, "--version", "1", env=env).stdout)
    assert (now["version"], now["versions"], now["definition"]["firmware_version"]) == (2, [1, 2], "2.2")
    assert before["definition"] == shown["definition"] and before["current_version"] == 2


def test_a_bad_definition_file_or_id_is_one_line_and_exit_2(
        database_url: str, tmp_path: Path, unique_id: Callable[[str], str]) -> None:
    env = {"PILOTLAB_DATABASE_URL": database_url}
    bad = tmp_path / "bad.yaml"
    bad.write_text(LPP_YAML.format(id=unique_id("bad"), vendor="Acme").replace("humidity_pct]", "ozone_ppb]"), encoding="utf-8")
    assert_one_line_error(run("profile", "create", str(bad), env=env), "invalid device profile", "ozone_ppb",
                          "not among the profile's measurements")
    unit = tmp_path / "unit.yaml"
    unit.write_text(LPP_YAML.format(id=unique_id("unit"), vendor="Acme").replace("to: temperature_c}", "to: temperature_c, unit: mV->%}"),
                    encoding="utf-8")
    assert_one_line_error(run("profile", "create", str(unit), env=env), "invalid device profile", "'mV->%'")
    enum = tmp_path / "enum.yaml"
    enum.write_text(LPP_YAML.format(id=unique_id("enum"), vendor="Acme").replace(
        "to: temperature_c}", "to: temperature_c, values: {HOT: 30, COLD: 5}}"), encoding="utf-8")
    assert_one_line_error(run("profile", "create", str(enum), env=env), "invalid device profile: uplinks['1'] "
                          "'temperature_1' -> 'temperature_c': a value map is for an enumeration")
    assert_one_line_error(run("profile", "create", str(tmp_path / "missing.json"), env=env), "cannot read")
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    assert_one_line_error(run("profile", "create", str(broken), env=env), "not valid JSON")
    assert_one_line_error(run("profile", "show", "no-such-profile", env=env), "no device profile with id 'no-such-profile'")
    assert_one_line_error(run("profile", "update", "no-such-profile", str(bad), env=env), "is for profile")


JS_YAML = LPP_YAML + """\
  "2":
    codec:
      type: javascript
      script: |
{script}
    mapping:
      - {{from: t, to: temperature_c}}
"""


def _js_profile(path: Path, profile: str, script: str) -> Path:
    indented = "\n".join("        " + line for line in script.splitlines())
    path.write_text(JS_YAML.format(id=profile, vendor="Acme", script=indented), encoding="utf-8")
    return path


def test_a_javascript_codec_that_does_not_load_is_one_line_and_exit_2_on_create_and_update(
        database_url: str, tmp_path: Path, unique_id: Callable[[str], str]) -> None:
    env = {"PILOTLAB_DATABASE_URL": database_url}
    profile = unique_id("cli-js")
    syntax = _js_profile(tmp_path / "syntax.yaml", profile, "function decodeUplink(input) {\n  return {data: {t: 1};\n}")
    assert_one_line_error(run("profile", "create", str(syntax), env=env), f"{syntax}: invalid device profile",
                          "fPort 2: the JavaScript codec does not load (codec_threw): SyntaxError: ")
    assert_one_line_error(run("profile", "show", profile, env=env), f"no device profile with id {profile!r}")

    good = _js_profile(tmp_path / "good.yaml", profile, "function Decoder(bytes, port) {\n  return {t: bytes[0]};\n}")
    created = run("profile", "create", str(good), env=env)
    assert created.returncode == 0, created.stderr
    no_entry = _js_profile(tmp_path / "no-entry.yaml", profile, "function decode(bytes) {\n  return {t: bytes[0]};\n}")
    assert_one_line_error(run("profile", "update", profile, str(no_entry), env=env),
                          "fPort 2: the JavaScript codec does not load (codec_missing_entry_point)")
    assert_one_line_error(run("profile", "update", profile, str(syntax), env=env), "SyntaxError: ")
    assert json.loads(run("profile", "show", profile, env=env).stdout)["versions"] == [1]
