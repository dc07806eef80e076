"""Is each device reporting as declared? Per device and per pilot."""

from __future__ import annotations

from fastapi import APIRouter

from api.database import Db
from api.schemas import DeviceHealthOut, PilotHealthOut, Problem
from store import readings, registry

router = APIRouter(tags=["health"], responses={404: {"model": Problem}})

_ONLINE = (f"A device is **online** while it is in service and a message from it arrived within "
           f"{readings.ONLINE_FACTOR} × its declared `reporting_interval_s` (one or two lost reports "
           f"are radio loss; {readings.ONLINE_FACTOR} is an outage). Arrival decides (`last_seen`, the "
           f"server's clock), never the device's own time stamp. `messages_24h` counts messages "
           f"with device time in the last 24 h; `battery_pct` is the newest reported value.")


@router.get("/devices/{device_id}/health", response_model=DeviceHealthOut,
            summary="Last seen, online, battery and message count of one device", description=_ONLINE)
def device_health(device_id: str, conn: Db) -> readings.DeviceHealth:
    found = readings.device_health(conn, device_id=device_id)
    if not found:
        registry.get(conn, registry.DEVICES, device_id)  # raises NotFound
    return found[0]


@router.get("/pilots/{pilot_id}/health", response_model=PilotHealthOut,
            summary="Health of every device of a pilot, with online/offline counts",
            description=_ONLINE + " `offline` counts devices in service that are not online; "
                                  "decommissioned devices are counted apart.")
def pilot_health(pilot_id: str, conn: Db) -> PilotHealthOut:
    registry.get(conn, registry.PILOTS, pilot_id)
    found = readings.device_health(conn, pilot_id=pilot_id)
    online = sum(h.online for h in found)
    retired = sum(h.decommissioned for h in found)
    return PilotHealthOut(pilot_id=pilot_id, devices=len(found), online=online,
                          offline=len(found) - online - retired, decommissioned=retired,
                          device_health=[DeviceHealthOut.model_validate(h) for h in found])
