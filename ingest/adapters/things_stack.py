"""The Things Stack v3 MQTT server (JSON).

    v3/{application}@{tenant}/devices/{device}/up      ApplicationUp with uplink_message
    v3/{application}@{tenant}/devices/{device}/join    ApplicationUp with join_accept
    (The Things Stack Open Source: v3/{application}/devices/{device}/…)

Read in its docs and API: snake_case protobuf JSON that omits empty fields ("", 0, false): the
documented uplink example has no `f_port`, a first uplink has no `f_cnt`; absent means 0.
`f_cnt` is the full 32-bit counter; `dev_eui` is upper-case hex; `settings.frequency` a string.
`uplink_message.received_at` is the Network Server's time (used as the uplink's time; the
top-level `received_at` is the Application Server's, the fallback). The MQTT server speaks
3.1.1 at QoS 0 only, so whatever it drops is seen only as a frame-counter gap.

An uplink without application payload has no `f_port` (FPort 0: its `frm_payload`, if any, is
MAC commands, as older Network Servers forwarded them) or no `frm_payload`, and no
`decoded_payload`: it is counted as a frame, without a reading. The data rate is
`settings.data_rate.lora.{spreading_factor,bandwidth}`; older releases added
`settings.data_rate_index`, newer ones have no index (then it is unknown, not 0).
`rx_metadata[].gateway_ids` has the gateway's `gateway_id` and, for a gateway with an EUI,
`eui` (upper-case hex, kept lower-case as ChirpStack's); `end_device_ids.dev_addr` is upper-case.
"""

from __future__ import annotations

from typing import Any

from ingest.adapters.events import Join, NetworkServerParser, Radio, Reception, Uplink
from ingest.adapters.fields import (
    as_int,
    as_list,
    as_object,
    counter,
    dev_addr_of,
    dev_eui_of,
    gateway_eui_of,
    index_of,
    number,
    parse_time,
)
from pilotlab.errors import MessageRejected, RejectReason

NETWORK_SERVER = "tts"
TOPIC_PREFIX = "v3/"
DEFAULT_TOPICS = ("v3/+/devices/+/up", "v3/+/devices/+/join")


def parse(topic: str, body: dict[str, Any]) -> Uplink | Join:
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != "v3" or parts[2] != "devices" or parts[4] not in ("up", "join"):
        raise MessageRejected(RejectReason.TOPIC_INVALID, "expected v3/<application>@<tenant>/devices/<device>/<up|join>")
    application_id, device_id = parts[1], parts[3]
    ids = body.get("end_device_ids") or {}
    if not isinstance(ids, dict):
        raise MessageRejected(RejectReason.INVALID_PAYLOAD, "end_device_ids: expected an object")
    dev_eui = dev_eui_of(ids.get("dev_eui"), "end_device_ids.dev_eui")
    if parts[4] == "join":
        accept = body.get("join_accept") or {}
        when = accept.get("received_at") if isinstance(accept, dict) and accept.get("received_at") else body.get("received_at")
        return Join(NETWORK_SERVER, application_id, dev_eui, device_id, parse_time(when, "join_accept.received_at"),
                    dev_addr_of(ids.get("dev_addr")))
    up = body.get("uplink_message")
    if not isinstance(up, dict):
        raise MessageRejected(RejectReason.INVALID_PAYLOAD, "uplink_message: expected an object")
    data = up.get("frm_payload", "")
    if not isinstance(data, str):
        raise MessageRejected(RejectReason.BAD_BASE64, "uplink_message.frm_payload: expected a base64 string")
    receptions = []
    for rx in as_list(up.get("rx_metadata")):
        gateway_ids = as_object(as_object(rx).get("gateway_ids"))
        gateway = gateway_ids.get("gateway_id")
        if isinstance(gateway, str):
            receptions.append(Reception(gateway, number(rx.get("rssi", rx.get("channel_rssi", 0))),
                                        number(rx.get("snr", 0)), gateway_eui_of(gateway_ids.get("eui"))))
    settings = as_object(up.get("settings"))
    lora = as_object(as_object(settings.get("data_rate")).get("lora"))
    frequency = settings.get("frequency")
    radio = Radio(as_int(lora.get("spreading_factor")), as_int(lora.get("bandwidth")), as_int(frequency),
                  index_of(settings.get("data_rate_index"), 15))
    decoded = up.get("decoded_payload")
    decoded = decoded if isinstance(decoded, dict) else None
    f_port = counter(up.get("f_port"), "uplink_message.f_port", 255)
    when = up.get("received_at") or body.get("received_at")
    # FPort 0 (absent) with FRMPayload is MAC commands, unless the payload formatter made something of
    # it: the documented example omits f_port beside a decoded_payload
    mac_only = not decoded and (f_port == 0 or not data)
    return Uplink(NETWORK_SERVER, application_id, dev_eui, device_id,
                  counter(up.get("f_cnt"), "uplink_message.f_cnt", 2**32 - 1), f_port,
                  parse_time(when, "uplink_message.received_at"), data, decoded, receptions, radio,
                  dev_addr_of(ids.get("dev_addr")), mac_only)


PARSER = NetworkServerParser(NETWORK_SERVER, TOPIC_PREFIX, DEFAULT_TOPICS, parse)
