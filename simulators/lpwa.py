"""LoRaWAN devices as their network server publishes them: ChirpStack v4 and The Things Stack v3
uplink and join events, with the radio's and the integration's imperfections.

Each device's behaviour (simulators.firmware) produces readings; telemetry and status are
encoded with the devices.codecs layouts (events have no binary layout and are not sent); every
uplink increments the frame counter, whether or not it gets through. `RadioConditions` says:

- `loss`: the share of uplinks lost before pilotlab (radio, or a QoS 0 hop): a counter gap;
- `gateways`: how many gateways hear each uplink (the network server's one event lists them all);
- `duplicates`: the share of events published twice (a redelivery), stored once;
- `max_delay_s`: events are delivered up to this late, so they arrive out of order;
- `rejoin_every`: after this many uplinks the device rejoins (join event, counter back to 0).

`LpwaStream.events(now)` is pure (topic, payload, deliver_at) generation, used by tests and the
benchmark; `run_lpwa` publishes in real time. `sent`/`lost` per device are the truth to compare
with `uplink_loss_hourly`.
"""

from __future__ import annotations

import base64
import heapq
import logging
import random
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson

from devices.codecs import encode_frame
from devices.kinds import Channel, DeviceKind
from pilotlab.settings import MqttEndpoint
from simulators.device import SimulatedDevice, behaviour_for
from simulators.publisher import AckCounter, account_client_id, close_client, open_client

log = logging.getLogger(__name__)

NetworkServer = Literal["chirpstack", "tts"]


@dataclass(frozen=True)
class LpwaDevice:
    device: SimulatedDevice
    dev_eui: str
    network_server: NetworkServer
    application: str  # ChirpStack application UUID, or TTS "{application}@{tenant}"


@dataclass(frozen=True)
class RadioConditions:
    loss: float = 0.0
    gateways: int = 1
    duplicates: float = 0.0
    max_delay_s: float = 0.0
    rejoin_every: int | None = None


@dataclass
class _State:
    fcnt: int = 0
    uplinks: int = 0
    session: int = 0


@dataclass
class LpwaStream:
    devices: Sequence[LpwaDevice]
    conditions: RadioConditions = RadioConditions()
    seed: int = 1
    sent: dict[str, int] = field(default_factory=dict)   # uplinks transmitted per device
    lost: dict[str, int] = field(default_factory=dict)   # of which lost before pilotlab
    frames: dict[str, list[tuple[int, int, bool]]] = field(default_factory=dict)  # (session, fcnt, heard)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._behaviours = {d.device.id: behaviour_for(d.device, seed=self.seed,
                                                       channels=(Channel.TELEMETRY, Channel.STATUS))
                            for d in self.devices}
        self._state = {d.device.id: _State() for d in self.devices}

    def tick(self, lpwa: LpwaDevice, now: datetime) -> list[tuple[str, bytes, datetime]]:
        """(topic, payload, deliver_at) of everything `lpwa` sends at `now`."""
        state, out = self._state[lpwa.device.id], []
        cond, rng = self.conditions, self._rng
        for reading in self._behaviours[lpwa.device.id].tick(now):
            fields = {k: v for k, v in reading.payload.items() if k not in ("ts", "seq", "rssi_dbm", "firmware")}
            port, data = encode_frame(lpwa.device.kind, reading.channel, fields)
            if cond.rejoin_every and state.uplinks and state.uplinks % cond.rejoin_every == 0:
                state.fcnt = 0
                state.session += 1
                out.append((*join_event(lpwa, now), now))
            at = now + timedelta(milliseconds=len(out))
            self.sent[lpwa.device.id] = self.sent.get(lpwa.device.id, 0) + 1
            state.uplinks += 1
            fcnt, state.fcnt = state.fcnt, state.fcnt + 1
            heard = rng.random() >= cond.loss
            self.frames.setdefault(lpwa.device.id, []).append((state.session, fcnt, heard))
            if not heard:
                self.lost[lpwa.device.id] = self.lost.get(lpwa.device.id, 0) + 1
                continue
            gateways = [(f"gw-{lpwa.device.pilot_id}-{g}", rng.randint(-125, -70), round(rng.uniform(-15, 10), 1))
                        for g in rng.sample(range(1, 6), max(1, min(cond.gateways, 5)))]
            topic, body = uplink_event(lpwa, fcnt, port, data, at, gateways)
            deliver = at + timedelta(seconds=rng.uniform(0, cond.max_delay_s))
            out.append((topic, body, deliver))
            if rng.random() < cond.duplicates:
                out.append((topic, body, deliver + timedelta(seconds=rng.uniform(0, 1))))
        return out


def knowable_loss(frames: list[tuple[int, int, bool]]) -> int:
    """Lost uplinks a frame-counter count can see: those followed by a heard frame of the same
    session (a loss after the last heard frame shows only when the next one arrives, and one just
    before a rejoin never does), except, in the first session, those before the first heard frame
    (no join was seen, so where the counter started is unknown)."""
    first_heard: dict[int, int] = {}
    last_heard: dict[int, int] = {}
    for session, fcnt, heard in frames:
        if heard:
            first_heard.setdefault(session, fcnt)
            last_heard[session] = max(fcnt, last_heard.get(session, -1))
    return sum(1 for session, fcnt, heard in frames
               if not heard and fcnt < last_heard.get(session, -1) and (session > 0 or fcnt > first_heard[0]))


def uplink_event(lpwa: LpwaDevice, fcnt: int, f_port: int, data: bytes, at: datetime,
                 gateways: list[tuple[str, int, float]]) -> tuple[str, bytes]:
    """The (topic, JSON) the device's network server publishes for one uplink."""
    payload = base64.b64encode(data).decode()
    bandwidth, sf, frequency = 125000, 7 + fcnt % 6, 868100000 + 200000 * (fcnt % 3)
    if lpwa.network_server == "chirpstack":
        body: dict[str, Any] = {
            "deduplicationId": str(uuid.UUID(int=random.Random(f"{lpwa.dev_eui}:{fcnt}:{at}").getrandbits(128))),
            "time": at.isoformat(), "deviceInfo": {"applicationId": lpwa.application, "devEui": lpwa.dev_eui,
                                                   "deviceName": lpwa.device.id, "tenantName": "ChirpStack"},
            "devAddr": "00189440", "dr": 12 - sf, "fCnt": fcnt, "fPort": f_port, "data": payload,
            "rxInfo": [{"gatewayId": g, "uplinkId": i + 1, "rssi": r, "snr": s} for i, (g, r, s) in enumerate(gateways)],
            "txInfo": {"frequency": frequency, "modulation": {"lora": {"bandwidth": bandwidth, "spreadingFactor": sf,
                                                                       "codeRate": "CR_4_5"}}},
        }
        return f"application/{lpwa.application}/device/{lpwa.dev_eui}/event/up", orjson.dumps(body)
    up: dict[str, Any] = {"f_port": f_port, "f_cnt": fcnt, "frm_payload": payload,
                          "rx_metadata": [{"gateway_ids": {"gateway_id": g}, "rssi": r, "channel_rssi": r, "snr": s}
                                          for g, r, s in gateways],
                          "settings": {"data_rate": {"lora": {"bandwidth": bandwidth, "spreading_factor": sf}},
                                       "frequency": str(frequency)},
                          "received_at": at.isoformat().replace("+00:00", "Z")}
    if fcnt == 0:
        del up["f_cnt"]  # TTS omits empty fields
    body = {"end_device_ids": {"device_id": lpwa.device.id, "application_ids": {"application_id": lpwa.application},
                               "dev_eui": lpwa.dev_eui.upper()},
            "received_at": (at + timedelta(milliseconds=40)).isoformat().replace("+00:00", "Z"), "uplink_message": up}
    return f"v3/{lpwa.application}/devices/{lpwa.device.id}/up", orjson.dumps(body)


def join_event(lpwa: LpwaDevice, at: datetime) -> tuple[str, bytes]:
    if lpwa.network_server == "chirpstack":
        body = {"time": at.isoformat(), "devAddr": "00189440",
                "deviceInfo": {"applicationId": lpwa.application, "devEui": lpwa.dev_eui}}
        return f"application/{lpwa.application}/device/{lpwa.dev_eui}/event/join", orjson.dumps(body)
    tts = {"end_device_ids": {"device_id": lpwa.device.id, "dev_eui": lpwa.dev_eui.upper()},
           "received_at": at.isoformat().replace("+00:00", "Z"),
           "join_accept": {"received_at": at.isoformat().replace("+00:00", "Z")}}
    return f"v3/{lpwa.application}/devices/{lpwa.device.id}/join", orjson.dumps(tts)


def run_lpwa(endpoint: MqttEndpoint, devices: Sequence[LpwaDevice], conditions: RadioConditions, *,
             speed: float = 1.0, stop: threading.Event, qos: int = 1, seed: int = 1,
             username: str | None = None, password: str | None = None) -> LpwaStream:
    """Publish every device's events in real time (reporting intervals divided by `speed`),
    each at its delivery time, until `stop` is set. Connected as a network server: with an account
    (a `network_server` service account), its username is the client id."""
    stream = LpwaStream(devices, conditions, seed)
    acks = AckCounter()
    client_id = account_client_id(endpoint, username, f"pilotlab-lpwa-sim-{uuid.uuid4().hex[:8]}")
    client = open_client(endpoint, client_id, acks, clean_start=True, session_expiry_s=0, username=username,
                         password=password)
    due: list[tuple[float, int, str, bytes]] = []
    ticks = [(time.monotonic() + i * 0.2, i) for i in range(len(devices))]
    heapq.heapify(ticks)
    serial = 0
    try:
        while not stop.is_set():
            now_mono = time.monotonic()
            while ticks and ticks[0][0] <= now_mono:
                _, index = heapq.heappop(ticks)
                lpwa = devices[index]
                for topic, body, deliver_at in stream.tick(lpwa, datetime.now(UTC)):
                    serial += 1
                    heapq.heappush(due, (now_mono + (deliver_at - datetime.now(UTC)).total_seconds(), serial, topic, body))
                heapq.heappush(ticks, (now_mono + lpwa.device.reporting_interval_s / speed, index))
            while due and due[0][0] <= now_mono:
                _, _, topic, body = heapq.heappop(due)
                acks.publish(client, topic, body, qos)
            nxt = min([ticks[0][0]] + ([due[0][0]] if due else []))
            stop.wait(max(0.0, min(0.5, nxt - time.monotonic())))
    finally:
        close_client(client, acks)
    return stream


def lpwa_devices(devices: Sequence[SimulatedDevice], dev_euis: dict[str, str], application: str,
                 network_servers: Sequence[NetworkServer] = ("chirpstack", "tts")) -> list[LpwaDevice]:
    """Alternate the devices between the network servers."""
    return [LpwaDevice(d, dev_euis[d.id], network_servers[i % len(network_servers)],
                       application if network_servers[i % len(network_servers)] == "chirpstack" else f"{application}@ttn")
            for i, d in enumerate(devices)]


__all__ = ["DeviceKind", "LpwaDevice", "LpwaStream", "RadioConditions", "join_event", "lpwa_devices", "run_lpwa",
           "uplink_event"]
