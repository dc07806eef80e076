"""Valid contract payloads, one per kind and channel, to start tests from."""

from __future__ import annotations

import time
from typing import Any

import orjson


def now_ms() -> int:
    return int(time.time() * 1000)


def switch(seq: int, **fields: Any) -> dict[str, Any]:
    return {"ts": now_ms(), "seq": seq, "relay_on": True, "power_w": 41.5, "energy_wh": 1200.0,
            "trigger": "button", **fields}


def tracker(seq: int, **fields: Any) -> dict[str, Any]:
    return {"ts": now_ms(), "seq": seq, "lat": 37.5665, "lon": 126.978, "accuracy_m": 4.0,
            "speed_mps": 1.4, "fix_type": "3d", "battery_pct": 87.0, **fields}


def environment(seq: int, **fields: Any) -> dict[str, Any]:
    return {"ts": now_ms(), "seq": seq, "temperature_c": 21.5, "humidity_pct": 44.0, "pm25_ugm3": 12.0,
            "pm10_ugm3": 20.0, "co2_ppm": 640.0, "noise_dba": 48.0, "battery_pct": 93.0, **fields}


def status(seq: int, **fields: Any) -> dict[str, Any]:
    return {"ts": now_ms(), "seq": seq, "state": "online", "battery_pct": 80.0, "rssi_dbm": -67.0,
            "uptime_s": 3600, "firmware": "1.4.2", **fields}


def event(seq: int, **fields: Any) -> dict[str, Any]:
    return {"ts": now_ms(), "seq": seq, "event": "geofence_exit", "detail": {"zone": "park"}, **fields}


def encode(payload: dict[str, Any]) -> bytes:
    return orjson.dumps(payload)
