"""Typed frames: what a client may send, and builders for what we send."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.protocol.errors import INVALID_REQUEST, RpcError

PRE_CONNECT_MAX_BYTES = 64 * 1024
MAX_PAYLOAD_BYTES = 26_214_400
MAX_BUFFERED_BYTES = 52_428_800
TICK_INTERVAL_MS = 30_000


class RequestFrame(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["req"]
    id: str = Field(min_length=1, max_length=256)
    method: str = Field(min_length=1, max_length=256)
    params: Any = None


class ClientInfo(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, max_length=128)
    version: str = Field("", max_length=128)
    platform: str = Field("", max_length=128)
    mode: str = Field("", max_length=64)
    display_name: str | None = Field(None, alias="displayName", max_length=256)
    device_family: str | None = Field(None, alias="deviceFamily", max_length=128)
    instance_id: str | None = Field(None, alias="instanceId", max_length=256)


class ConnectAuth(BaseModel):
    model_config = ConfigDict(extra="allow")

    token: str | None = Field(None, max_length=4096)
    password: str | None = Field(None, max_length=4096)


class ConnectParams(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    min_protocol: int = Field(alias="minProtocol", ge=1)
    max_protocol: int = Field(alias="maxProtocol", ge=1)
    client: ClientInfo
    caps: list[str] = Field(default_factory=list)
    auth: ConnectAuth | None = None
    role: str = "operator"
    scopes: list[str] = Field(default_factory=list)


def parse_request(text: str) -> RequestFrame:
    """Parse one text frame into a request; raises RpcError or ValueError (not JSON)."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise RpcError(INVALID_REQUEST, "invalid frame: expected a JSON object")
    try:
        return RequestFrame.model_validate(data)
    except ValidationError as exc:
        raise RpcError(INVALID_REQUEST, f"invalid frame: {describe(exc)}") from exc


def describe(exc: ValidationError) -> str:
    """One line naming each bad field, for `invalid <method> params: ...` messages."""
    parts = []
    for err in exc.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "<params>"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def response_ok(req_id: str, payload: Any) -> dict[str, Any]:
    return {"type": "res", "id": req_id, "ok": True, "payload": payload}


def response_error(req_id: str, error: RpcError) -> dict[str, Any]:
    return {"type": "res", "id": req_id, "ok": False, "error": error.shape()}


def event(name: str, payload: Any, seq: int | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "event", "event": name, "payload": payload}
    if seq is not None:
        frame["seq"] = seq
    return frame
