"""An outdoor environment sensor (LPWA, battery powered) on a city street.

Temperature follows a diurnal curve (coolest before dawn, warmest mid-afternoon) plus a slowly
wandering weather term and sensor noise; relative humidity mirrors it. Traffic drives PM2.5,
PM10, CO2 and noise, with rush-hour peaks on weekdays. A PM2.5 reading crossing the alert level
sends a "pm25_alert" event.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from devices.kinds import Channel, DeviceKind
from simulators.firmware import Firmware, Sensed

WARMEST_HOUR = 15.0
PM25_ALERT_UGM3 = 35.0
DRAIN_PCT_PER_H = 0.004  # years on a battery


def rush(hour: float, weekday: bool) -> float:
    """Traffic intensity 0…~1: morning and evening peaks, damped at weekends."""
    peaks = math.exp(-((hour - 8.0) / 1.2) ** 2) + 0.8 * math.exp(-((hour - 17.5) / 1.5) ** 2)
    return peaks if weekday else 0.35 * peaks


def daylight(hour: float) -> float:
    """City activity 0 (03:00) … 1 (15:00)."""
    return 0.5 * (1 - math.cos(2 * math.pi * (hour - 3.0) / 24))


class EnvSensor(Firmware):
    kind = DeviceKind.ENV_SENSOR
    firmware_version = "0.9.4"
    rssi_range_dbm = (-125.0, -95.0)

    def __init__(self, device_id: str, **kwargs: Any) -> None:
        super().__init__(device_id, **kwargs)
        r = self.rng
        self.mean_c = r.uniform(8, 18)
        self.swing_c = r.uniform(4, 7)
        self.humidity_mean = r.uniform(60, 75)
        self.pm25_background = r.uniform(5, 12)
        self.pm10_ratio = r.uniform(1.4, 1.9)
        self.battery = r.uniform(60, 100)
        self._weather_c = 0.0
        self._alert = False

    def battery_pct(self) -> float:
        return self.battery

    def _sense(self, now: datetime) -> list[Sensed]:
        r = self.rng
        local = now.astimezone(self.tz)
        hour = self.local_hour(now)
        traffic = rush(hour, local.weekday() < 5)
        self.battery = max(0.0, self.battery - DRAIN_PCT_PER_H * self.elapsed_s(now) / 3600)
        self._weather_c = 0.98 * self._weather_c + r.gauss(0, 0.1)  # AR(1): fronts, clouds

        diurnal = math.cos(2 * math.pi * (hour - WARMEST_HOUR) / 24)
        temperature = self.mean_c + self.swing_c * diurnal + self._weather_c + r.gauss(0, 0.15)
        humidity = self.humidity_mean - 12 * diurnal - 2 * self._weather_c + r.gauss(0, 1.5)
        pm25 = self.pm25_background * (1 + 1.5 * traffic) * r.lognormvariate(0, 0.2)
        pm10 = pm25 * self.pm10_ratio + abs(r.gauss(0, 1.5))
        co2 = 415 + 70 * traffic + 15 * daylight(hour) + r.gauss(0, 6)
        noise = 38 + 20 * daylight(hour) + 8 * traffic + r.gauss(0, 2)

        out = [Sensed(now, Channel.TELEMETRY, {
            "temperature_c": round(temperature, 2),
            "humidity_pct": round(min(100.0, max(5.0, humidity)), 1),
            "pm25_ugm3": round(pm25, 1),
            "pm10_ugm3": round(pm10, 1),
            "co2_ppm": round(max(300.0, co2)),
            "noise_dba": round(max(20.0, noise), 1),
            "battery_pct": round(self.battery, 1),
        })]
        alert = pm25 >= PM25_ALERT_UGM3
        if alert and not self._alert:
            out.append(Sensed(now, Channel.EVENT, {
                "event": "pm25_alert", "detail": {"pm25_ugm3": round(pm25, 1), "threshold": PM25_ALERT_UGM3}}))
        self._alert = alert
        return out
