"""Binary codecs (devices.codecs) and network-server formats (ingest.adapters), fed arbitrary
bytes, garbled JSON and wrong base64: each yields fields or raises its documented rejection
(CodecError, MessageRejected), never anything else."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.kinds import DeviceKind
from pilotlab.errors import CodecError, MessageRejected
from tests.fuzz.conftest import FUZZ, FUZZ_EXAMPLES
from tests.fuzz.hostile import JSON_VALUES, SCALARS, TEXT

codecs = pytest.importorskip("devices.codecs")
chirpstack = pytest.importorskip("ingest.adapters.chirpstack")
things_stack = pytest.importorskip("ingest.adapters.things_stack")


@FUZZ
@given(st.sampled_from(list(DeviceKind)), st.sampled_from([0, 1, 2, 3, 10, 255]), st.binary(max_size=64))
def test_a_binary_frame_decodes_to_fields_or_a_codec_error(kind: DeviceKind, f_port: int, data: bytes) -> None:
    try:
        channel, fields = codecs.decode_frame(kind, f_port, data)
    except CodecError:
        return
    assert isinstance(fields, dict)


_B64 = st.one_of(st.binary(max_size=40).map(lambda b: __import__("base64").b64encode(b).decode()), TEXT, SCALARS)
_EUI = st.one_of(st.sampled_from(["0011223344556677", "00112233445566ZZ", "", "0011"]), TEXT)


@st.composite
def _uplink_body(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    eui = draw(_EUI)
    body: dict[str, Any] = {
        "deviceInfo": draw(st.one_of(st.fixed_dictionaries({"devEui": st.just(eui)}), JSON_VALUES)),
        "end_device_ids": draw(st.one_of(st.fixed_dictionaries({"dev_eui": st.just(eui)}), JSON_VALUES)),
        "data": draw(_B64), "fCnt": draw(SCALARS), "fPort": draw(SCALARS),
        "time": draw(st.one_of(st.just("2026-11-25T09:30:00Z"), SCALARS)),
        "rxInfo": draw(JSON_VALUES), "txInfo": draw(JSON_VALUES), "object": draw(JSON_VALUES),
        "uplink_message": draw(st.one_of(st.fixed_dictionaries({"frm_payload": _B64, "f_cnt": SCALARS, "f_port": SCALARS,
                                                               "rx_metadata": JSON_VALUES, "settings": JSON_VALUES}),
                                         JSON_VALUES)),
        "received_at": draw(st.one_of(st.just("2026-11-25T09:30:00Z"), SCALARS)),
    }
    for key in draw(st.lists(st.sampled_from(sorted(body)), max_size=5)):
        body.pop(key, None)
    topic = draw(st.sampled_from([f"application/app/device/{eui}/event/up", f"application/app/device/{eui}/event/join",
                                  "v3/app@ttn/devices/dev/up", "v3/app@ttn/devices/dev/join", "x"]))
    return topic, body


@settings(FUZZ, max_examples=max(1, FUZZ_EXAMPLES // 2))
@given(_uplink_body())
def test_a_chirpstack_event_parses_or_is_rejected_with_a_reason(case: tuple[str, dict[str, Any]]) -> None:
    try:
        chirpstack.parse(*case)
    except MessageRejected as rejected:
        assert rejected.detail


@settings(FUZZ, max_examples=max(1, FUZZ_EXAMPLES // 2))
@given(_uplink_body())
def test_a_things_stack_event_parses_or_is_rejected_with_a_reason(case: tuple[str, dict[str, Any]]) -> None:
    try:
        things_stack.parse(*case)
    except MessageRejected as rejected:
        assert rejected.detail
