"""A Wi-Fi gateway that forwards the readings of the devices behind it in batches.

Each `tick` collects what every attached device's behaviour reports at that moment and returns
one batch message (`pilotlab/v1/{pilot}/{gateway}/batch`), plus a heartbeat
(`…/gateway_status`) every `status_every` ticks. Entries are contract payloads with `device_id`
(and `channel` when not telemetry); see ingest.adapters.wifi_gateway.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson

from devices.kinds import Channel
from pilotlab.settings import MqttEndpoint
from simulators.device import SimulatedDevice, behaviour_for
from simulators.publisher import AckCounter, account_client_id, close_client, open_client


class WifiGateway:
    def __init__(self, gateway_id: str, pilot_id: str, devices: Sequence[SimulatedDevice], *, seed: int = 1,
                 status_every: int = 5, firmware: str = "gw-1.2.0") -> None:
        self.gateway_id, self.pilot_id = gateway_id, pilot_id
        self.status_every, self.firmware = status_every, firmware
        self._behaviours = [(d.id, behaviour_for(d, seed=seed)) for d in devices]
        self.seq = 0
        self.ticks = 0
        self._started = time.monotonic()

    def tick(self, now: datetime) -> list[tuple[str, bytes]]:
        readings = []
        for device_id, behaviour in self._behaviours:
            for reading in behaviour.tick(now):
                entry = {"device_id": device_id, **reading.payload}
                if reading.channel is not Channel.TELEMETRY:
                    entry["channel"] = reading.channel.value
                readings.append(entry)
        base = f"pilotlab/v1/{self.pilot_id}/{self.gateway_id}"
        out = []
        ts = now.isoformat(timespec="milliseconds")
        if readings:
            out.append((f"{base}/batch", orjson.dumps({"ts": ts, "seq": self._next(), "readings": readings})))
        if self.status_every and self.ticks % self.status_every == 0:
            out.append((f"{base}/gateway_status", orjson.dumps({
                "ts": ts, "seq": self._next(), "state": "online", "firmware": self.firmware,
                "uptime_s": int(time.monotonic() - self._started)})))
        self.ticks += 1
        return out

    def _next(self) -> int:
        self.seq += 1
        return self.seq


def run_gateway(endpoint: MqttEndpoint, gateway: WifiGateway, interval_s: float, stop: threading.Event, *,
                username: str | None = None, password: str | None = None) -> AckCounter:
    """Publish a batch every `interval_s` until `stop` (QoS 1), connected as the gateway: client id
    its account's username (the gateway id, which the broker binds it to), or without an account
    the gateway id as the contract asks. Returns what the broker answered."""
    acks = AckCounter()
    client = open_client(endpoint, account_client_id(endpoint, username, gateway.gateway_id), acks,
                         clean_start=True, session_expiry_s=0, username=username, password=password)
    try:
        while not stop.is_set():
            for topic, body in gateway.tick(datetime.now(UTC)):
                acks.publish(client, topic, body)
            stop.wait(interval_s)
    finally:
        close_client(client, acks)
    return acks
