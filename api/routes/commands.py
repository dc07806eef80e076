"""Commands to smart switches over HTTP: send one, follow it, list a device's.

A command is stored (state `sent`) before it is published, so an acknowledgement arriving within
milliseconds finds it; ingest applies acknowledgements, and every read first settles the device's
commands against its stored reports and the clock (store.commands.settle), so no process watches
expiries. Admin, pilot-manager and firm keys send to their own switches (access.policy).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api import command_sender
from api.database import Db
from api.routes import ListLimit, ListOffset
from api.schemas import Problem
from devices import commands as contract
from pilotlab.errors import ServiceUnavailable
from scoring.records import plain
from store import commands

router = APIRouter(tags=["commands"], responses={404: {"model": Problem}, 422: {"model": Problem}})


class SwitchCommandIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    relay_on: bool = Field(description="true closes the relay (the load is powered), false opens it")
    expiry_s: int = Field(default=contract.DEFAULT_EXPIRY_S, ge=1, le=contract.MAX_EXPIRY_S,
                          description="how long the command holds: unacknowledged by then, it is expired (and MQTT v5 "
                                      "brokers drop it undelivered)")


def _out(command: commands.Command) -> dict[str, Any]:
    return {**plain(command), "latency_s": plain(command.latency_s), "url": f"/commands/{command.id}"}


@router.post("/devices/{device_id}/commands", status_code=201, responses={409: {"model": Problem}, 503: {"model": Problem}},
             summary="Switch a smart switch on or off")
def send_command(device_id: str, body: SwitchCommandIn, conn: Db, request: Request) -> dict[str, Any]:
    """Publishes the command at QoS 1 with a correlation id and an expiry (see the README's *Commands
    to smart switches*): on the switch's contract topic, or as a LoRaWAN downlink through its network
    server. 201 once the broker took it (state `sent`); follow it at `url`. 409 for a device that is
    no switch, decommissioned, or whose downlink route is not registered; 503 (the command kept as
    `failed` by the broker, not counted against the device) if the broker did not take it."""
    settings = request.app.state.settings
    address = commands.switch_address(conn, device_id)
    command_id = contract.new_command_id()
    sent_at = datetime.now(UTC)
    expires_at = sent_at + timedelta(seconds=body.expiry_s)
    route, payload = command_sender.plan(settings, address, command_id, body.relay_on, sent_at, expires_at)
    principal = getattr(request.state, "principal", None)
    command = commands.create(conn, command_id=command_id, device_id=device_id, relay_on=body.relay_on,
                              transport=route.transport, topic=route.topic, sent_at=sent_at, expires_at=expires_at,
                              requested_by=principal.key_id if principal else "")
    try:
        note = command_sender.publish(route, payload, command_id=command_id, expiry_s=body.expiry_s,
                                      response_topic=command_sender.response_topic(route, address))
    except command_sender.NotSent as unsent:
        commands.mark_unsent(conn, command_id, unsent.detail)
        raise ServiceUnavailable(f"command {command_id} was not sent: {unsent.detail}") from None
    if note is not None:
        command = commands.note(conn, command_id, note)
    return _out(command)


@router.get("/commands/{command_id}", summary="A command: sent, acknowledged, failed or expired")
def get_command(command_id: str, conn: Db) -> dict[str, Any]:
    command = commands.get(conn, command_id)
    commands.settle(conn, [command.device_id])
    return _out(commands.get(conn, command_id))


@router.get("/devices/{device_id}/commands", summary="A switch's commands, newest first")
def device_commands(device_id: str, conn: Db, limit: ListLimit = 100, offset: ListOffset = 0,
                    state: Annotated[Literal["sent", "acknowledged", "failed", "expired"] | None,
                                     Query(description="only commands in this state")] = None) -> dict[str, Any]:
    commands.switch_address(conn, device_id)  # 404 for a device that does not exist
    commands.settle(conn, [device_id])
    return {"commands": [_out(c) for c in commands.for_device(conn, device_id, state=state, limit=limit, offset=offset)]}
