"""LPWA and gateway links: DevEUIs, network-server applications, gateway health, and per device
uplink loss, receptions, frames, joins and a LoRaWAN summary. (Registry CRUD of gateways and devices stays in gateways.py / devices.py.)"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import psycopg
from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from api.database import Db
from api.routes import ListLimit, ListOffset
from api.routes.telemetry import MAX_SPAN
from api.schemas import Problem
from pilotlab.errors import Conflict, NotFound
from store import registry
from store.readings import ARRIVAL_LOOKBACK

router = APIRouter(tags=["links"], responses={404: {"model": Problem}, 422: {"model": Problem}})


class DevEui(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dev_eui: str | None = Field(pattern=r"^[0-9A-Fa-f]{16}$", description="16 hex digits; null removes it")


class NetworkServerApplication(BaseModel):
    model_config = ConfigDict(extra="forbid")
    network_server: Literal["chirpstack", "tts"]
    application_id: str = Field(min_length=1, max_length=200,
                                description="ChirpStack application UUID, or TTS '{application}@{tenant}'")
    pilot_id: str


class GatewayStatusOut(BaseModel):
    at: datetime
    state: str | None
    uptime_s: int | None
    firmware: str | None


class GatewayHealthOut(BaseModel):
    gateway_id: str
    pilot_id: str
    protocol: str
    in_service: bool
    last_seen: datetime | None = Field(description="when pilotlab last received a batch or status from it")
    last_status: GatewayStatusOut | None
    devices_attached: list[str]
    devices_reporting_1h: int = Field(description="attached devices with a stored message in the last hour")
    batches_24h: int
    readings_24h: int
    refused_24h: int = Field(description="batch entries dead-lettered (e.g. a device not attached to it)")


class UplinkLossOut(BaseModel):
    hour: datetime
    received: int
    lost: int
    expected: int
    counter_resets: int


class ReceptionOut(BaseModel):
    fcnt: int
    uplink_time: datetime
    gateway_id: str
    rssi_dbm: float | None
    snr_db: float | None
    data_rate: str | None
    frequency_hz: int | None
    gateway_eui: str | None = None
    data_rate_index: int | None = None


class GatewayHeardOut(BaseModel):
    gateway_id: str
    gateway_eui: str | None = Field(description="16 lower-case hex digits, from either network server")
    rssi_dbm: float | None
    snr_db: float | None


class FrameOut(BaseModel):
    fcnt: int = Field(description="the full 32-bit uplink frame counter")
    uplink_time: datetime = Field(description="the network server's time of the uplink")
    received_at: datetime
    network_server: str
    f_port: int | None
    mac_only: bool | None = Field(description="FPort 0 or no application payload: counted, no reading")
    dev_addr: str | None = Field(description="8 lower-case hex digits")
    data_rate_index: int | None = Field(description="ChirpStack `dr`; The Things Stack's index where it sends one")
    spreading_factor: int | None
    bandwidth_hz: int | None
    frequency_hz: int | None
    gateways: list[GatewayHeardOut]


class JoinOut(BaseModel):
    joined_at: datetime
    network_server: str
    dev_addr: str | None


class LorawanSummaryOut(BaseModel):
    device_id: str
    dev_eui: str | None
    dev_addr: str | None = Field(description="from the latest frame or join")
    last_fcnt: int | None = Field(description="frame counter of the latest frame (network-server time)")
    last_frame_at: datetime | None
    last_join_at: datetime | None
    frames_24h: int
    lost_24h: int = Field(description="from frame-counter gaps (uplink_loss_hourly)")


@router.put("/devices/{device_id}/dev-eui", summary="Set or clear a LoRaWAN device's DevEUI",
            responses={409: {"model": Problem}})
def set_dev_eui(device_id: str, body: DevEui, conn: Db) -> dict[str, str | None]:
    registry.get(conn, registry.DEVICES, device_id)
    eui = body.dev_eui.lower() if body.dev_eui else None
    try:
        with conn.transaction():
            conn.execute("UPDATE device SET dev_eui = %s WHERE id = %s", (eui, device_id))
    except psycopg.errors.UniqueViolation:
        raise Conflict(f"DevEUI {eui} is already another device's") from None
    return {"device_id": device_id, "dev_eui": eui}


@router.post("/network-server-applications", status_code=201, response_model=NetworkServerApplication,
             summary="Register a network-server application to a pilot", responses={409: {"model": Problem}})
def add_application(body: NetworkServerApplication, conn: Db) -> NetworkServerApplication:
    """422 if `pilot_id` names no pilot (or one the key may not see); 409 if the application is registered."""
    if registry.find(conn, registry.PILOTS, body.pilot_id) is None:
        raise registry.unknown_reference("pilot_id", body.pilot_id, "pilot")
    try:
        with conn.transaction():
            conn.execute("INSERT INTO network_server_application (network_server, application_id, pilot_id) "
                         "VALUES (%s, %s, %s)", (body.network_server, body.application_id, body.pilot_id))
    except psycopg.errors.UniqueViolation:
        raise Conflict(f"{body.network_server} application {body.application_id!r} is already registered") from None
    return body


class NetworkServerApplicationOut(NetworkServerApplication):
    created_at: datetime


@router.get("/network-server-applications", response_model=list[NetworkServerApplicationOut],
            summary="List registered network-server applications, optionally of one pilot or network server")
def list_applications(conn: Db, pilot_id: Annotated[str | None, Query()] = None,
                      network_server: Annotated[Literal["chirpstack", "tts"] | None, Query()] = None,
                      limit: ListLimit = 100, offset: ListOffset = 0) -> list[NetworkServerApplicationOut]:
    """In (network server, application id) order. A firm or pilot_manager key lists one of its pilots'."""
    rows = conn.execute(
        "SELECT network_server, application_id, pilot_id, created_at FROM network_server_application "
        "WHERE (%(pilot)s::text IS NULL OR pilot_id = %(pilot)s) AND (%(ns)s::text IS NULL OR network_server = %(ns)s) "
        "ORDER BY network_server, application_id LIMIT %(limit)s OFFSET %(offset)s",
        {"pilot": pilot_id, "ns": network_server, "limit": limit, "offset": offset}).fetchall()
    return [NetworkServerApplicationOut(network_server=ns, application_id=app, pilot_id=pilot, created_at=at)
            for ns, app, pilot, at in rows]


@router.get("/gateways/{gateway_id}/health", response_model=GatewayHealthOut,
            summary="Last seen, last status and the devices behind a gateway")
def gateway_health(gateway_id: str, conn: Db) -> GatewayHealthOut:
    row = conn.execute("SELECT pilot_id, protocol, decommissioned_at FROM gateway WHERE id = %s", (gateway_id,)).fetchone()
    if row is None:
        raise NotFound(f"gateway {gateway_id!r} is not registered")
    pilot_id, protocol, decommissioned = row
    devices = [d for (d,) in conn.execute("SELECT id FROM device WHERE gateway_id = %s ORDER BY id", (gateway_id,))]
    # arrivals in the last hour, looked up among readings stamped since (store.readings.ARRIVAL_LOOKBACK)
    reporting = conn.execute(
        "SELECT count(DISTINCT device_id) FROM telemetry WHERE device_id = ANY(%s) AND ingest_time > now() - interval '1 hour' "
        "AND device_time >= now() - interval '1 hour' - %s", (devices, ARRIVAL_LOOKBACK)).fetchone()
    seen, batches, readings, refused = conn.execute(
        "SELECT max(received_at), count(*) FILTER (WHERE kind = 'batch' AND received_at > now() - interval '24 hours'), "
        "coalesce(sum(readings) FILTER (WHERE received_at > now() - interval '24 hours'), 0), "
        "coalesce(sum(refused) FILTER (WHERE received_at > now() - interval '24 hours'), 0) "
        "FROM gateway_message WHERE gateway_id = %s", (gateway_id,)).fetchone() or (None, 0, 0, 0)
    status = conn.execute("SELECT gateway_time, state, uptime_s, firmware FROM gateway_message "
                          "WHERE gateway_id = %s AND kind = 'status' ORDER BY gateway_time DESC LIMIT 1",
                          (gateway_id,)).fetchone()
    return GatewayHealthOut(
        gateway_id=gateway_id, pilot_id=pilot_id, protocol=protocol, in_service=decommissioned is None,
        last_seen=seen, last_status=GatewayStatusOut(at=status[0], state=status[1], uptime_s=status[2],
                                                     firmware=status[3]) if status else None,
        devices_attached=devices, devices_reporting_1h=int(reporting[0]) if reporting else 0,
        batches_24h=batches, readings_24h=int(readings), refused_24h=int(refused))


Since = Annotated[datetime | None, Query(alias="from", description=f"first hour (default: 24 h ago; at most {MAX_SPAN.days} days ago)")]


@router.get("/devices/{device_id}/uplink-loss", response_model=list[UplinkLossOut],
            summary="LoRaWAN uplinks received and lost per hour, from frame counters")
def uplink_loss(device_id: str, conn: Db, since: Since = None) -> list[UplinkLossOut]:
    registry.get(conn, registry.DEVICES, device_id)
    if since is not None and datetime.now(UTC) - (since if since.tzinfo else since.replace(tzinfo=UTC)) > MAX_SPAN:
        raise HTTPException(422, f"from ({since.isoformat()}) is more than {MAX_SPAN.days} days ago")
    rows = conn.execute("SELECT hour, received, lost, expected, counter_resets FROM uplink_loss_hourly "
                        "WHERE device_id = %s AND hour >= coalesce(%s, now() - interval '24 hours') ORDER BY hour",
                        (device_id, since)).fetchall()
    return [UplinkLossOut(hour=h, received=r, lost=lost, expected=e, counter_resets=c) for h, r, lost, e, c in rows]


@router.get("/devices/{device_id}/receptions", response_model=list[ReceptionOut],
            summary="Link metadata of a LoRaWAN device's latest uplinks: every gateway that heard each")
def receptions(device_id: str, conn: Db, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[ReceptionOut]:
    registry.get(conn, registry.DEVICES, device_id)
    rows = conn.execute("SELECT fcnt, uplink_time, gateway_id, rssi_dbm, snr_db, data_rate, frequency_hz, gateway_eui, "
                        "data_rate_index FROM uplink_reception WHERE device_id = %s "
                        "ORDER BY uplink_time DESC, gateway_id LIMIT %s", (device_id, limit)).fetchall()
    return [ReceptionOut(fcnt=f, uplink_time=t, gateway_id=g, rssi_dbm=r, snr_db=s, data_rate=d, frequency_hz=fr,
                         gateway_eui=eui, data_rate_index=dr)
            for f, t, g, r, s, d, fr, eui, dr in rows]


@router.get("/devices/{device_id}/frames", response_model=list[FrameOut],
            summary="A LoRaWAN device's uplink frames, newest first, with the gateways that heard each")
def frames(device_id: str, conn: Db, limit: ListLimit = 100, offset: ListOffset = 0) -> list[FrameOut]:
    """Every frame pilotlab heard, whether its payload became a reading, a dead letter or was MAC-only."""
    registry.get(conn, registry.DEVICES, device_id)
    rows = conn.execute(
        "SELECT f.fcnt, f.uplink_time, f.received_at, f.network_server, f.f_port, f.mac_only, f.dev_addr, "
        "coalesce(f.data_rate_index, r.data_rate_index), r.spreading_factor, r.bandwidth_hz, r.frequency_hz, "
        "coalesce(r.heard, '[]') "
        "FROM (SELECT * FROM uplink_frame WHERE device_id = %(d)s ORDER BY uplink_time DESC, fcnt DESC "
        "      LIMIT %(limit)s OFFSET %(offset)s) f "
        "LEFT JOIN LATERAL (SELECT min(data_rate_index) AS data_rate_index, min(spreading_factor) AS spreading_factor, "
        "   min(bandwidth_hz) AS bandwidth_hz, min(frequency_hz) AS frequency_hz, "
        "   jsonb_agg(jsonb_build_object('gateway_id', gateway_id, 'gateway_eui', gateway_eui, "
        "             'rssi_dbm', rssi_dbm, 'snr_db', snr_db) ORDER BY gateway_id) AS heard "
        "   FROM uplink_reception WHERE device_id = f.device_id AND fcnt = f.fcnt AND uplink_time = f.uplink_time) r ON true "
        "ORDER BY f.uplink_time DESC, f.fcnt DESC",
        {"d": device_id, "limit": limit, "offset": offset}).fetchall()
    return [FrameOut(fcnt=fcnt, uplink_time=t, received_at=rec, network_server=ns, f_port=port, mac_only=mac,
                     dev_addr=addr, data_rate_index=dr, spreading_factor=sf, bandwidth_hz=bw, frequency_hz=freq,
                     gateways=[GatewayHeardOut(**g) for g in heard])
            for fcnt, t, rec, ns, port, mac, addr, dr, sf, bw, freq, heard in rows]


@router.get("/devices/{device_id}/joins", response_model=list[JoinOut],
            summary="A LoRaWAN device's (re)joins, newest first")
def joins(device_id: str, conn: Db, limit: ListLimit = 100, offset: ListOffset = 0) -> list[JoinOut]:
    registry.get(conn, registry.DEVICES, device_id)
    rows = conn.execute("SELECT joined_at, network_server, dev_addr FROM lorawan_join WHERE device_id = %s "
                        "ORDER BY joined_at DESC LIMIT %s OFFSET %s", (device_id, limit, offset)).fetchall()
    return [JoinOut(joined_at=at, network_server=ns, dev_addr=addr) for at, ns, addr in rows]


@router.get("/devices/{device_id}/lorawan", response_model=LorawanSummaryOut,
            summary="A LoRaWAN device's link in short: DevEUI, DevAddr, last frame counter, joins, 24 h frames and loss")
def lorawan_summary(device_id: str, conn: Db) -> LorawanSummaryOut:
    registry.get(conn, registry.DEVICES, device_id)
    (dev_eui,) = conn.execute("SELECT dev_eui FROM device WHERE id = %s", (device_id,)).fetchone() or (None,)
    last = conn.execute("SELECT fcnt, uplink_time, dev_addr FROM uplink_frame WHERE device_id = %s "
                        "ORDER BY uplink_time DESC, fcnt DESC LIMIT 1", (device_id,)).fetchone()
    join = conn.execute("SELECT joined_at, dev_addr FROM lorawan_join WHERE device_id = %s "
                        "ORDER BY joined_at DESC LIMIT 1", (device_id,)).fetchone()
    frames_24h, lost_24h = conn.execute(
        "SELECT coalesce(sum(received), 0), coalesce(sum(lost), 0) FROM uplink_loss_hourly "
        "WHERE device_id = %s AND hour >= date_trunc('hour', now() - interval '24 hours', 'UTC')",
        (device_id,)).fetchone() or (0, 0)
    dev_addr = None
    if last is not None and (join is None or last[1] >= join[0]):
        dev_addr = last[2]
    dev_addr = dev_addr or (join[1] if join else None)
    return LorawanSummaryOut(device_id=device_id, dev_eui=dev_eui, dev_addr=dev_addr,
                             last_fcnt=last[0] if last else None, last_frame_at=last[1] if last else None,
                             last_join_at=join[0] if join else None, frames_24h=int(frames_24h), lost_24h=int(lost_24h))
