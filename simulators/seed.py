"""The demo firm, pilot and devices, registered idempotently (plain SQL, ON CONFLICT DO NOTHING).

Running it again changes nothing already there and adds devices if `devices_per_kind` grew.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from devices.kinds import Connectivity, DeviceKind
from store.connection import connect

DEMO_FIRM_ID = "demo-firm"
DEMO_PILOT_ID = "demo-pilot"

# kind → (id prefix, connectivity, reporting interval s, model)
DEMO_DEVICES = (
    (DeviceKind.SMART_SWITCH, "demo-switch", Connectivity.WIFI, 60, "SimSwitch 2"),
    (DeviceKind.LOCATION_TRACKER, "demo-tracker", Connectivity.CELLULAR, 30, "SimTrack 4"),
    (DeviceKind.ENV_SENSOR, "demo-env", Connectivity.LPWA, 60, "SimAir 1"),
)


@dataclass(frozen=True)
class DemoPilot:
    pilot_id: str
    device_ids: list[str]


def seed_demo_pilot(database_url: str, devices_per_kind: int = 3) -> DemoPilot:
    """Register firm `demo-firm`, running pilot `demo-pilot` (started an hour ago, 90 days long)
    and `devices_per_kind` devices of each kind, commissioned when the pilot started."""
    if devices_per_kind < 1:
        raise ValueError("devices_per_kind must be at least 1")
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    device_ids: list[str] = []
    with connect(database_url) as conn, conn.transaction():
        conn.execute(
            "INSERT INTO firm (id, name, contact) VALUES (%s, %s, %s) ON CONFLICT (id) DO NOTHING",
            (DEMO_FIRM_ID, "Demo Firm", "demo@example.org"))
        conn.execute(
            """INSERT INTO pilot (id, firm_id, name, site, stage, starts_at, ends_at, status)
               VALUES (%s, %s, %s, %s, 3, %s, %s, 'running') ON CONFLICT (id) DO NOTHING""",
            (DEMO_PILOT_ID, DEMO_FIRM_ID, "Demo pilot", "Demo living lab", started, started + timedelta(days=90)))
        # Devices join at the pilot's real start, which an earlier run may have set.
        row = conn.execute("SELECT starts_at FROM pilot WHERE id = %s", (DEMO_PILOT_ID,)).fetchone()
        commissioned = row[0] if row else started
        rows = []
        for kind, prefix, connectivity, interval, model in DEMO_DEVICES:
            for n in range(1, devices_per_kind + 1):
                device_id = f"{prefix}-{n}"
                device_ids.append(device_id)
                rows.append((device_id, DEMO_PILOT_ID, kind.value, connectivity.value, interval, model, commissioned))
        with conn.cursor() as cur:
            cur.executemany(
                """INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, model, commissioned_at)
                   VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING""", rows)
    return DemoPilot(DEMO_PILOT_ID, device_ids)


# LoRaWAN devices (through ChirpStack or The Things Stack) and a Wi-Fi gateway with switches behind it.
DEMO_LPWA_APPLICATION = "17c82e96-be03-4f38-aef3-f83d48582d97"
DEMO_GATEWAY_ID = "demo-wifi-gw-1"
DEMO_LORA_DEVICES = (("demo-lora-env-1", DeviceKind.ENV_SENSOR, "70b3d57ed0000001"),
                     ("demo-lora-env-2", DeviceKind.ENV_SENSOR, "70b3d57ed0000002"),
                     ("demo-lora-tracker-1", DeviceKind.LOCATION_TRACKER, "70b3d57ed0000003"))
DEMO_GATEWAY_DEVICES = ("demo-wifi-switch-1", "demo-wifi-switch-2", "demo-wifi-switch-3")


def seed_demo_links(database_url: str) -> None:
    """Register the demo pilot's LoRaWAN devices (with DevEUIs, reporting every 60 s), the ChirpStack
    application, and a Wi-Fi gateway with three switches attached. Idempotent; run after
    `seed_demo_pilot`."""
    with connect(database_url) as conn, conn.transaction():
        row = conn.execute("SELECT starts_at FROM pilot WHERE id = %s", (DEMO_PILOT_ID,)).fetchone()
        commissioned = row[0] if row else datetime.now(UTC)
        conn.execute("INSERT INTO network_server_application (network_server, application_id, pilot_id) "
                     "VALUES ('chirpstack', %s, %s) ON CONFLICT DO NOTHING", (DEMO_LPWA_APPLICATION, DEMO_PILOT_ID))
        conn.execute("INSERT INTO gateway (id, pilot_id, protocol, description) VALUES (%s, %s, 'wifi', %s) "
                     "ON CONFLICT (id) DO NOTHING", (DEMO_GATEWAY_ID, DEMO_PILOT_ID, "Demo Wi-Fi gateway"))
        for device_id, kind, dev_eui in DEMO_LORA_DEVICES:
            conn.execute("""INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, model,
                                                commissioned_at, dev_eui)
                            VALUES (%s, %s, %s, 'lpwa', 60, 'SimLoRa 1', %s, %s) ON CONFLICT (id) DO NOTHING""",
                         (device_id, DEMO_PILOT_ID, kind.value, commissioned, dev_eui))
        for device_id in DEMO_GATEWAY_DEVICES:
            conn.execute("""INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, model,
                                                commissioned_at, gateway_id)
                            VALUES (%s, %s, 'smart_switch', 'wifi', 60, 'SimSwitch 2', %s, %s)
                            ON CONFLICT (id) DO NOTHING""", (device_id, DEMO_PILOT_ID, commissioned, DEMO_GATEWAY_ID))
