"""ChirpStack v4 MQTT integration (JSON encoding).

    application/{application_id}/device/{dev_eui}/event/up      UplinkEvent
    application/{application_id}/device/{dev_eui}/event/join    JoinEvent (v4 default)
    application/{application_id}/device/{dev_eui}/state/join    JoinEvent (later v4, retained)

Read in ChirpStack's source (api/proto/integration, chirpstack/src/integration/mqtt.rs): the JSON
is the protobuf JSON mapping in camelCase; `fCnt` is a u32 full counter; `data` is base64;
`object` is set only when the device profile has a codec. ChirpStack deduplicates the copies
heard by several gateways into one event whose `rxInfo` lists every gateway. Top-level fields
are emitted even when zero in newer releases but were omitted in earlier v4 ones (the documented
example has no fCnt), and the gateway messages (`rxInfo`, `txInfo`) omit zeros (`snr` 0 is
absent): absent numbers are read as 0. The integration publishes at QoS 0 unless configured.

Every uplink is published, MAC-only ones too (chirpstack/src/uplink/data.rs, send_uplink_event):
a frame on FPort 0 (MAC commands in FRMPayload) or without FRMPayload comes with `fPort` 0 or
absent and no `data` (`data` is the application payload only), and with an `object` if the
device profile's codec made one of no bytes. `dr` is the data-rate index (absent: 0, as protobuf JSON omits it); `rxInfo[]
.gatewayId` is the gateway's EUI; `devAddr` is lower-case hex.
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

NETWORK_SERVER = "chirpstack"
TOPIC_PREFIX = "application/"
DEFAULT_TOPICS = ("application/+/device/+/event/up", "application/+/device/+/event/join",
                  "application/+/device/+/state/join")


def parse(topic: str, body: dict[str, Any]) -> Uplink | Join:
    parts = topic.split("/")
    if len(parts) != 6 or parts[0] != "application" or parts[2] != "device" or parts[4] not in ("event", "state"):
        raise MessageRejected(RejectReason.TOPIC_INVALID, "expected application/<id>/device/<DevEUI>/event/<up|join>")
    application_id, topic_eui, event = parts[1], parts[3], parts[5]
    info = body.get("deviceInfo") or {}
    if not isinstance(info, dict):
        raise MessageRejected(RejectReason.INVALID_PAYLOAD, "deviceInfo: expected an object")
    dev_eui = dev_eui_of(info.get("devEui"), "deviceInfo.devEui") or dev_eui_of(topic_eui, "topic DevEUI")
    if dev_eui != topic_eui.lower():
        raise MessageRejected(RejectReason.INVALID_PAYLOAD, f"deviceInfo.devEui {dev_eui} differs from the topic's {topic_eui}")
    if event == "join":
        return Join(NETWORK_SERVER, application_id, dev_eui, None, parse_time(body.get("time"), "time"),
                    dev_addr_of(body.get("devAddr")))
    if event != "up" or parts[4] != "event":
        raise MessageRejected(RejectReason.TOPIC_INVALID, f"ChirpStack event {event!r} is not an uplink or join")
    data = body.get("data", "")
    if not isinstance(data, str):
        raise MessageRejected(RejectReason.BAD_BASE64, "data: expected a base64 string")
    decoded = body.get("object")
    receptions = []
    for rx in as_list(body.get("rxInfo")):
        if isinstance(rx, dict) and isinstance(rx.get("gatewayId"), str):
            receptions.append(Reception(rx["gatewayId"], number(rx.get("rssi", 0)), number(rx.get("snr", 0)),
                                        gateway_eui_of(rx["gatewayId"])))
    tx = as_object(body.get("txInfo"))
    lora = as_object(as_object(tx.get("modulation")).get("lora"))
    radio = Radio(as_int(lora.get("spreadingFactor")), as_int(lora.get("bandwidth")), as_int(tx.get("frequency")),
                  index_of(body.get("dr", 0), 15))
    f_port = counter(body.get("fPort"), "fPort", 255)
    decoded = decoded if isinstance(decoded, dict) else None
    # ChirpStack never puts FPort 0's MAC commands in `data`, but runs the codec on the empty bytes:
    # whatever object that made is no reading
    mac_only = f_port == 0 or (not data and not decoded)
    return Uplink(NETWORK_SERVER, application_id, dev_eui, None, counter(body.get("fCnt"), "fCnt", 2**32 - 1), f_port,
                  parse_time(body.get("time"), "time"), data, decoded, receptions, radio,
                  dev_addr_of(body.get("devAddr")), mac_only)


PARSER = NetworkServerParser(NETWORK_SERVER, TOPIC_PREFIX, DEFAULT_TOPICS, parse)
