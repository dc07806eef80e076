"""The MQTT contract v1 as JSON Schema (devices.contract_schema), for firmware makers: public."""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from devices.contract_schema import contract_schema
from devices.kinds import Channel, DeviceKind

router = APIRouter(tags=["contract"])


@cache
def _schema() -> dict[str, Any]:
    return contract_schema()


@router.get("/contract/v1/schema", summary="The MQTT contract v1 payloads as JSON Schema (draft 2020-12)",
            response_class=JSONResponse, responses={200: {"content": {"application/schema+json": {}}}})
def contract_v1_schema() -> JSONResponse:
    """The same document as devices/contract-v1.schema.json and `pilotlab contract schema`: one
    `$defs` entry per payload model; `x-pilotlab-payloads` says which one a device of each kind
    sends on each channel. No key needed."""
    return JSONResponse(_schema(), media_type="application/schema+json")


@router.get("/contract/v1/schema/{kind}/{channel}", summary="The JSON Schema of one kind's payload on one channel",
            response_class=JSONResponse, responses={200: {"content": {"application/schema+json": {}}}})
def contract_v1_payload_schema(kind: DeviceKind, channel: Channel) -> JSONResponse:
    """A document of its own: `$ref` to the payload model that a device of `kind` sends on
    `channel`, with the `$defs` it needs. No key needed."""
    whole = _schema()
    ref = whole["x-pilotlab-payloads"][kind.value][channel.value]["$ref"]
    return JSONResponse({"$schema": whole["$schema"], "$id": f"{whole['$id']}:{kind.value}:{channel.value}",
                         "title": f"pilotlab MQTT contract v1: {kind.value} {channel.value}",
                         "$ref": ref, "$defs": whole["$defs"]}, media_type="application/schema+json")
