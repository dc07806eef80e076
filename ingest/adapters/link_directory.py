"""The ingest's view of the registry's link side: DevEUI → device, gateways and the devices
attached to them, network-server applications → pilot.

Reloaded whole every `refresh_s`, and at most once a second when a DevEUI, gateway or device
is not found, so a device registered a moment ago is accepted at once while a flood of unknown
ones costs one query a second.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import NamedTuple

import psycopg

MISS_RELOAD_S = 1.0


class GatewayEntry(NamedTuple):
    pilot_id: str
    decommissioned_at: datetime | None


class LinkDirectory:
    def __init__(self, refresh_s: float) -> None:
        self._refresh_s = refresh_s
        self._loaded_at = float("-inf")
        self._conn: psycopg.Connection | None = None
        self.device_by_eui: dict[str, str] = {}
        self.gateway_of: dict[str, str] = {}  # device id → gateway id it is attached to
        self.gateways: dict[str, GatewayEntry] = {}
        self.application_pilot: dict[tuple[str, str], str] = {}

    def prepare(self, conn: psycopg.Connection) -> None:
        """Called once per batch with the writer's connection (never from paho's thread)."""
        self._conn = conn
        if time.monotonic() - self._loaded_at >= self._refresh_s:
            self._load()

    def _load(self) -> None:
        conn = self._conn
        if conn is None:
            return
        devices = conn.execute(
            "SELECT id, dev_eui, gateway_id FROM device WHERE dev_eui IS NOT NULL OR gateway_id IS NOT NULL").fetchall()
        gateways = conn.execute("SELECT id, pilot_id, decommissioned_at FROM gateway").fetchall()
        apps = conn.execute("SELECT network_server, application_id, pilot_id FROM network_server_application").fetchall()
        conn.commit()
        self.device_by_eui = {eui: device_id for device_id, eui, _ in devices if eui}
        self.gateway_of = {device_id: gw for device_id, _, gw in devices if gw}
        self.gateways = {gw: GatewayEntry(pilot, dec) for gw, pilot, dec in gateways}
        self.application_pilot = {(ns, app): pilot for ns, app, pilot in apps}
        self._loaded_at = time.monotonic()

    def _reload_after_miss(self) -> bool:
        if time.monotonic() - self._loaded_at < MISS_RELOAD_S:
            return False
        self._load()
        return True

    def device_for_eui(self, dev_eui: str) -> str | None:
        found = self.device_by_eui.get(dev_eui)
        if found is None and self._reload_after_miss():
            found = self.device_by_eui.get(dev_eui)
        return found

    def gateway(self, gateway_id: str) -> GatewayEntry | None:
        found = self.gateways.get(gateway_id)
        if found is None and self._reload_after_miss():
            found = self.gateways.get(gateway_id)
        return found

    def attached_gateway(self, device_id: str, expected: str) -> str | None:
        found = self.gateway_of.get(device_id)
        if found != expected and self._reload_after_miss():
            found = self.gateway_of.get(device_id)
        return found

    def pilot_of_application(self, network_server: str, application_id: str) -> str | None:
        return self.application_pilot.get((network_server, application_id))

    def last_fcnt(self, device_id: str) -> int | None:
        """The counter of the device's latest stored frame (seeds 16-bit widening)."""
        if self._conn is None:
            return None
        row = self._conn.execute("SELECT fcnt FROM uplink_frame WHERE device_id = %s "
                                 "ORDER BY uplink_time DESC LIMIT 1", (device_id,)).fetchone()
        return int(row[0]) if row else None
