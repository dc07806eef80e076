"""A location tracker (child, dementia patient, vehicle) moving along a route in a city.

The true position is interpolated along a closed polyline of waypoints at walking or vehicle
speed, with pauses. Reported positions carry GPS noise matching the reported accuracy (metres
converted to degrees at the route's latitude); now and then the fix is lost for a few minutes
(fix_type "none", no lat/lon). The battery drains with time and movement until the carer
recharges it. Crossing the route's geofence sends "geofence_exit" / "geofence_enter" events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from devices.kinds import Channel, DeviceKind
from simulators.firmware import Firmware, Sensed

METRES_PER_DEG_LAT = 111_320.0
Point = tuple[float, float]  # (lat, lon) in degrees


@dataclass(frozen=True)
class Route:
    """A closed loop of waypoints (the last joins the first) with a circular geofence."""

    name: str
    waypoints: tuple[Point, ...]
    speed_mps: float
    geofence_center: Point
    geofence_radius_m: float

    @cached_property
    def _xy(self) -> list[tuple[float, float]]:
        return [self.to_metres(p) for p in self.waypoints]

    @cached_property
    def _cumulative_m(self) -> list[float]:
        total, out = 0.0, [0.0]
        pts = self._xy
        for i in range(len(pts)):
            a, b = pts[i], pts[(i + 1) % len(pts)]
            total += math.dist(a, b)
            out.append(total)
        return out

    @property
    def length_m(self) -> float:
        return self._cumulative_m[-1]

    def to_metres(self, p: Point) -> tuple[float, float]:
        """Local equirectangular projection around the first waypoint: (east, north) metres."""
        lat0, lon0 = self.waypoints[0]
        return ((p[1] - lon0) * METRES_PER_DEG_LAT * math.cos(math.radians(lat0)),
                (p[0] - lat0) * METRES_PER_DEG_LAT)

    def offset(self, p: Point, north_m: float, east_m: float) -> Point:
        """`p` moved by metres, converted to degrees at the route's latitude."""
        lat0 = self.waypoints[0][0]
        return (p[0] + north_m / METRES_PER_DEG_LAT,
                p[1] + east_m / (METRES_PER_DEG_LAT * math.cos(math.radians(lat0))))

    def position_at(self, distance_m: float) -> Point:
        d = distance_m % self.length_m
        cum = self._cumulative_m
        n = len(self.waypoints)
        for i in range(n):
            if d <= cum[i + 1]:
                a, b = self.waypoints[i], self.waypoints[(i + 1) % n]
                seg = cum[i + 1] - cum[i]
                f = 0.0 if seg == 0 else (d - cum[i]) / seg
                return (a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]))
        return self.waypoints[0]

    def distance_from_route_m(self, p: Point) -> float:
        x, y = self.to_metres(p)
        pts = self._xy
        best = math.inf
        for i in range(len(pts)):
            (ax, ay), (bx, by) = pts[i], pts[(i + 1) % len(pts)]
            dx, dy = bx - ax, by - ay
            seg2 = dx * dx + dy * dy
            f = 0.0 if seg2 == 0 else max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / seg2))
            best = min(best, math.hypot(x - (ax + f * dx), y - (ay + f * dy)))
        return best

    def inside_geofence(self, p: Point) -> bool:
        return math.dist(self.to_metres(p), self.to_metres(self.geofence_center)) <= self.geofence_radius_m


# A walk around Vondelpark, Amsterdam, leaving the park by its east gate (outside the geofence).
PARK_LOOP = Route(
    name="vondelpark-loop",
    waypoints=((52.3612, 4.8784), (52.3600, 4.8730), (52.3590, 4.8690), (52.3580, 4.8640),
               (52.3575, 4.8600), (52.3566, 4.8575), (52.3560, 4.8600), (52.3567, 4.8650),
               (52.3578, 4.8700), (52.3590, 4.8750), (52.3602, 4.8790), (52.3620, 4.8810)),
    speed_mps=1.3, geofence_center=(52.3586, 4.8680), geofence_radius_m=850.0)

# A delivery-van loop around the canal belt; its southern stretch leaves the centre zone.
CANAL_LOOP = Route(
    name="canal-belt-loop",
    waypoints=((52.3663, 4.8829), (52.3731, 4.8830), (52.3790, 4.8850), (52.3790, 4.8990),
               (52.3720, 4.9050), (52.3640, 4.9000), (52.3600, 4.8900)),
    speed_mps=7.0, geofence_center=(52.3731, 4.8922), geofence_radius_m=1000.0)

ROUTES = (PARK_LOOP, CANAL_LOOP)

# fix type → (probability, accuracy range in metres)
FIXES = {"3d": (0.80, (3.0, 12.0)), "2d": (0.10, (8.0, 25.0)), "wifi": (0.08, (20.0, 60.0)),
         "cell": (0.02, (300.0, 1500.0))}
NO_FIX_PER_TICK = 0.02
DRAIN_PCT_PER_H = 1.2            # idle: ~3 days from full
DRAIN_MOVING_PCT_PER_H = 0.8     # extra while moving (GNSS and modem busier)
RECHARGE_AT_PCT = 5.0


class LocationTracker(Firmware):
    kind = DeviceKind.LOCATION_TRACKER
    firmware_version = "4.1.0"
    rssi_range_dbm = (-110.0, -65.0)

    def __init__(self, device_id: str, *, route: Route | None = None, **kwargs: Any) -> None:
        super().__init__(device_id, **kwargs)
        self.route = route or self.rng.choice(ROUTES)
        self.distance_m = self.rng.uniform(0, self.route.length_m)
        self.speed_mps = self.route.speed_mps * self.rng.uniform(0.85, 1.15)
        self.battery = self.rng.uniform(60, 100)
        self.position = self.route.position_at(self.distance_m)
        self._paused_until: datetime | None = None
        self._no_fix_until: datetime | None = None
        self._inside: bool | None = None

    def battery_pct(self) -> float:
        return self.battery

    def _sense(self, now: datetime) -> list[Sensed]:
        out: list[Sensed] = []
        dt = self.elapsed_s(now)
        moving_s = dt
        if self._paused_until is not None:  # moves only for the part of the interval after the pause
            moving_s = min(dt, max(0.0, (now - self._paused_until).total_seconds()))
            if now >= self._paused_until:
                self._paused_until = None
        if self._paused_until is None and self.rng.random() < 0.03:  # a bench, a shop, a delivery
            self._paused_until = now + timedelta(seconds=self.rng.uniform(60, 600))
        self.distance_m += self.speed_mps * moving_s
        self.position = self.route.position_at(self.distance_m)
        moving = self._paused_until is None

        self.battery -= (DRAIN_PCT_PER_H + (DRAIN_MOVING_PCT_PER_H if moving_s > 0 else 0)) * dt / 3600
        if self.battery <= RECHARGE_AT_PCT:
            out.append(Sensed(now, Channel.EVENT, {"event": "charging", "detail": {"battery_pct": round(self.battery, 1)}}))
            self.battery = 100.0
        self.battery = max(0.0, self.battery)

        inside = self.route.inside_geofence(self.position)
        if self._inside is not None and inside != self._inside:
            out.append(Sensed(now, Channel.EVENT, {
                "event": "geofence_enter" if inside else "geofence_exit",
                "detail": {"geofence": self.route.name, "lat": round(self.position[0], 6),
                           "lon": round(self.position[1], 6)}}))
        self._inside = inside

        out.insert(0, Sensed(now, Channel.TELEMETRY, self._fix(now, moving)))
        return out

    def _fix(self, now: datetime, moving: bool) -> dict[str, Any]:
        fields: dict[str, Any] = {"battery_pct": round(self.battery, 1)}
        if self._no_fix_until is not None and now < self._no_fix_until:
            return {"fix_type": "none", **fields}
        self._no_fix_until = None
        if self.rng.random() < NO_FIX_PER_TICK:  # tunnel, underground car park, indoors
            self._no_fix_until = now + timedelta(seconds=self.rng.uniform(60, 300))
            return {"fix_type": "none", **fields}
        fix_type = self.rng.choices(list(FIXES), [p for p, _ in FIXES.values()])[0]
        low, high = FIXES[fix_type][1]
        accuracy = self.rng.uniform(low, high)
        sigma = accuracy / 2  # accuracy ≈ 95 % radius → per-axis σ about half of it
        north = max(-3 * accuracy, min(3 * accuracy, self.rng.gauss(0, sigma)))
        east = max(-3 * accuracy, min(3 * accuracy, self.rng.gauss(0, sigma)))
        lat, lon = self.route.offset(self.position, north, east)
        fields.update(lat=round(lat, 6), lon=round(lon, 6), accuracy_m=round(accuracy, 1), fix_type=fix_type)
        if fix_type in ("3d", "2d"):
            speed = self.speed_mps if moving else 0.0
            fields["speed_mps"] = round(max(0.0, speed + self.rng.gauss(0, 0.2)), 2)
        return fields
