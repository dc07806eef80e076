"""One fPort, two sorts of frame: a device that sends its readings and its device information
(start-up, version, power-on reports) on one port gives that port's profile entry
`without_measurements: {event: <name>}`. A frame whose mapping finds none of its measurements is
then stored as that event, the codec's output in telemetry.extra: the frame counts as a message,
not as a reading (no empty switch reading refused, no tracker no-fix report made of a version
report). Checked when the profile is made; published over the real broker."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from devices.profiles import ProfileDefinition
from tests.lpwa import messages as m
from tests.lpwa.conftest import LpwaPilot, profile_definition, stored_reading, use_profile
from tests.support import publish

SWITCH_PORT = {"codec": {"type": "network_server_object"}, "without_measurements": {"event": "device_info"},
               "mapping": [{"from": "relay", "to": "relay_on", "values": {"ON": True, "OFF": False}},
                           {"from": "power", "to": "power_w"}]}


def _switch(port: dict[str, Any]) -> dict[str, Any]:
    return profile_definition("smart_switch", ["relay_on", "power_w"], {"3": port})


def test_a_port_may_route_its_frames_without_measurements_to_an_event_for_any_codec_with_a_mapping() -> None:
    for codec in ({"type": "network_server_object"}, {"type": "cayenne_lpp"},
                  {"type": "javascript", "script": "function decodeUplink(input) { return {data: {}}; }"}):
        definition = ProfileDefinition.model_validate(_switch(SWITCH_PORT | {"codec": codec}))
        rule = definition.uplinks["3"].without_measurements
        assert rule is not None and rule.event == "device_info"


@pytest.mark.parametrize(("change", "says"), [
    (lambda port: port.update(codec={"type": "pilotlab", "layout": "smart_switch"}, mapping=[]),
     "uplinks['3']: without_measurements is for a codec with a mapping; a pilotlab layout gives its fields"),
    (lambda port: port["without_measurements"].update(event="Device Info"),
     "uplinks['3']: without_measurements.event 'Device Info' is no event name"),
    (lambda port: port.update(without_measurements={"event": ""}), "is no event name"),
    (lambda port: port.update(without_measurements={"channel": "status"}), "event"),
], ids=["a pilotlab layout", "an event name with capitals and a space", "an empty event name", "no event"])
def test_a_routing_rule_that_cannot_apply_is_refused_when_the_profile_is_made(
        change: Callable[[dict[str, Any]], None], says: str) -> None:
    port = copy.deepcopy(SWITCH_PORT)
    change(port)
    with pytest.raises(ValidationError) as refused:
        ProfileDefinition.model_validate(_switch(port))
    assert says in str(refused.value)


def test_a_frame_without_measurements_is_stored_as_the_ports_event_and_a_frame_with_one_as_a_reading(
    database_url: str, mqtt_url: str, lpwa: LpwaPilot, lpwa_worker: Callable,
) -> None:
    use_profile(database_url, lpwa.switch_id, f"{lpwa.app}-routed", _switch(SWITCH_PORT))
    eui = lpwa.eui[lpwa.switch_id]
    info = {"sn": "6745e27566240008", "firmware": "v1.2", "relay": None}
    lpwa_worker()
    publish(mqtt_url, [(m.chirpstack_topic(lpwa.app, eui), m.chirpstack_up(lpwa.app, eui, fcnt, 3, b"\x00", m.recent_time(),
                                                                            object=decoded))
                       for fcnt, decoded in ((40, info), (41, {"power": 12.0, "sn": "6745e27566240008"}))])
    event, reading = stored_reading(database_url, lpwa.switch_id, 40), stored_reading(database_url, lpwa.switch_id, 41)
    assert (event["channel"], event["event"], event["detail"], event["profile_version"]) == ("event", "device_info", None, 1)
    assert event["extra"] == info
    assert (event["relay_on"], event["power_w"], event["trigger"]) == (None, None, None)
    assert (reading["channel"], reading["power_w"], reading["event"], reading["extra"]) == (
        "telemetry", 12.0, None, {"sn": "6745e27566240008"})
