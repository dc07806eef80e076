"""Network-server messages as ChirpStack v4 and The Things Stack v3 publish them: their own
documented examples (chirpstack-docs events.md; TTS docs integrations/data-formats), builders
for messages their code would emit for pilotlab devices, and publishing a frame as both."""

from __future__ import annotations

import base64
import copy
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from tests.support import publish

if TYPE_CHECKING:
    from tests.lpwa.conftest import LpwaPilot

# ChirpStack v4 docs, "up - Uplink event" (no fCnt: protobuf JSON omitted the zero counter).
CHIRPSTACK_UP_EXAMPLE: dict[str, Any] = {
    "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
    "time": "2022-07-18T09:34:15.775023242+00:00",
    "deviceInfo": {
        "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242", "tenantName": "ChirpStack",
        "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97", "applicationName": "Test application",
        "deviceProfileId": "14855bf7-d10d-4aee-b618-ebfcb64dc7ad", "deviceProfileName": "Test device-profile",
        "deviceName": "Test device", "devEui": "0101010101010101", "tags": {"key": "value"},
    },
    "devAddr": "00189440", "dr": 1, "fPort": 1, "data": "qg==",
    "rxInfo": [{"gatewayId": "0016c001f153a14c", "uplinkId": 4217106255, "rssi": -36, "snr": 10.5,
                "context": "E3OWOQ==", "metadata": {"region_name": "eu868", "region_common_name": "EU868"}}],
    "txInfo": {"frequency": 867100000,
               "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 11, "codeRate": "CR_4_5"}}},
}

# ChirpStack v4 docs, "join - Device join event".
CHIRPSTACK_JOIN_EXAMPLE: dict[str, Any] = {
    "deduplicationId": "c9dbe358-2578-4fb7-b295-66b44edc45a6",
    "time": "2022-07-18T09:33:28.823500726+00:00",
    "deviceInfo": copy.deepcopy(CHIRPSTACK_UP_EXAMPLE["deviceInfo"]),
    "devAddr": "00189440",
}

# The Things Stack docs, "Uplink message example" (no f_port: omitted as empty).
TTS_UP_EXAMPLE: dict[str, Any] = {
    "end_device_ids": {"device_id": "dev1", "application_ids": {"application_id": "app1"},
                       "dev_eui": "0004A30B001C0530", "join_eui": "800000000000000C", "dev_addr": "00BCB929"},
    "correlation_ids": ["as:up:01E0WZGT6Y7657CPFPE5WEYDSQ", "gs:conn:01E0WDEC6T5T4XXBAX7S1VMFKE"],
    "received_at": "2020-02-12T15:15:46.014773143Z",
    "uplink_message": {
        "session_key_id": "AXA50tHUGUucuzS/bCGMNw==", "f_cnt": 1, "frm_payload": "gkHe",
        "decoded_payload": {"temperature": 1.0, "luminosity": 0.64},
        "rx_metadata": [{"gateway_ids": {"gateway_id": "gtw1", "eui": "9C5C8E00001A05C4"},
                         "time": "2020-02-12T15:15:45.787Z", "timestamp": 2463457000, "rssi": -35,
                         "channel_rssi": -35, "snr": 5, "uplink_token": "ChIKEAoEZ3R3MRIInFyOAAAaBcQQ6L3Vlgk=",
                         "channel_index": 2}],
        "settings": {"data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 7}}, "data_rate_index": 5,
                     "coding_rate": "4/6", "frequency": "868300000", "timestamp": 2463457000,
                     "time": "2020-02-12T15:15:45.787Z"},
        "consumed_airtime": "0.056576s",
        "received_at": "2020-02-12T15:15:45.789585559Z",
    },
}

# The Things Stack docs, "Join message example".
TTS_JOIN_EXAMPLE: dict[str, Any] = {
    "end_device_ids": {"device_id": "dev1", "application_ids": {"application_id": "app1"},
                       "dev_eui": "0004A30B001C0530", "join_eui": "800000000000000C", "dev_addr": "01497ECC"},
    "correlation_ids": ["as:up:01E191YN5F2HMBQCBCVRF731VY"],
    "received_at": "2020-02-17T07:49:09.935284891Z",
    "join_accept": {"session_key_id": "AXBSH1Pk6Z0G166RlH16CQ==", "received_at": "2020-02-17T07:49:09.736532315Z"},
}


def chirpstack_topic(app: str, dev_eui: str, event: str = "up") -> str:
    return f"application/{app}/device/{dev_eui}/event/{event}"


def tts_topic(app: str, device: str, event: str = "up") -> str:
    return f"v3/{app}@ttn/devices/{device}/{event}"


def chirpstack_up(app: str, dev_eui: str, fcnt: int, f_port: int, data: bytes, time: str,
                  gateways: list[tuple[str, int, float]] = (("0016c001f153a14c", -36, 10.5),), **extra: Any) -> bytes:
    body = copy.deepcopy(CHIRPSTACK_UP_EXAMPLE)
    body["deviceInfo"].update(applicationId=app, devEui=dev_eui)
    body.update(time=time, fCnt=fcnt, fPort=f_port, data=base64.b64encode(data).decode(),
                rxInfo=[{"gatewayId": g, "uplinkId": 1 + i, "rssi": r, "snr": s, "context": "E3OWOQ=="}
                        for i, (g, r, s) in enumerate(gateways)], **extra)
    return orjson.dumps(body)


def tts_up(dev_eui: str, device: str, fcnt: int, f_port: int, data: bytes, time: str,
           gateways: list[tuple[str, int, float]] = (("gtw1", -35, 5.0),), **extra: Any) -> bytes:
    body = copy.deepcopy(TTS_UP_EXAMPLE)
    body["end_device_ids"].update(device_id=device, dev_eui=dev_eui.upper())
    up = body["uplink_message"]
    del up["decoded_payload"]
    up.update(f_cnt=fcnt, f_port=f_port, frm_payload=base64.b64encode(data).decode(), received_at=time,
              rx_metadata=[{"gateway_ids": {"gateway_id": g}, "rssi": r, "channel_rssi": r, "snr": s}
                           for g, r, s in gateways], **extra)
    if fcnt == 0:
        del up["f_cnt"]  # as TTS emits it
    return orjson.dumps(body)


def chirpstack_mac_only(app: str, dev_eui: str, fcnt: int, time: str, *, dr: int = 5, dev_addr: str = "00189440",
                        **extra: Any) -> bytes:
    """An UplinkEvent as ChirpStack v4 publishes a frame with no application payload (FPort 0 with
    MAC commands, or an empty frame; chirpstack/src/uplink/data.rs send_uplink_event): `f_port` 0
    and `data` empty, so both absent in its JSON; `object` is whatever the profile's codec made of
    no bytes, if anything."""
    body = copy.deepcopy(CHIRPSTACK_UP_EXAMPLE)
    body["deviceInfo"].update(applicationId=app, devEui=dev_eui)
    for key in ("fPort", "data"):
        del body[key]
    body.update(time=time, fCnt=fcnt, dr=dr, devAddr=dev_addr, adr=True, regionConfigId="eu868", **extra)
    return orjson.dumps(body)


def tts_mac_only(dev_eui: str, device: str, fcnt: int, time: str, *, dev_addr: str = "00BCB929", **extra: Any) -> bytes:
    """An ApplicationUp as The Things Stack v3 publishes an uplink without FRMPayload: no `f_port`,
    `frm_payload` or `decoded_payload`; newer releases write no `settings.data_rate_index`."""
    body = copy.deepcopy(TTS_UP_EXAMPLE)
    body["end_device_ids"].update(device_id=device, dev_eui=dev_eui.upper(), dev_addr=dev_addr)
    up = body["uplink_message"]
    for key in ("frm_payload", "decoded_payload"):
        del up[key]
    del up["settings"]["data_rate_index"]
    up.update(f_cnt=fcnt, received_at=time, **extra)
    return orjson.dumps(body)


def recent_time(offset_s: float = 0) -> str:
    """A network server's receive time: a minute ago, `offset_s` later."""
    return (datetime.now(UTC) - timedelta(seconds=60 - offset_s)).isoformat()


def publish_both(mqtt_url: str, lpwa: LpwaPilot, device_id: str, fcnt: int, port: int, data: bytes,
                 cs_extra: dict[str, Any] | None = None, tts_extra: dict[str, Any] | None = None) -> None:
    """The same frame as a ChirpStack uplink (frame counter `fcnt`) and a TTS one (`fcnt` + 1, as
    TTS device `tts-<device id>`), over the broker."""
    eui = lpwa.eui[device_id]
    publish(mqtt_url, [(chirpstack_topic(lpwa.app, eui),
                        chirpstack_up(lpwa.app, eui, fcnt, port, data, recent_time(), **(cs_extra or {})))])
    publish(mqtt_url, [(tts_topic(lpwa.app, "tts-" + device_id),
                        tts_up(eui, "tts-" + device_id, fcnt + 1, port, data, recent_time(1), **(tts_extra or {})))],
            qos=0)
