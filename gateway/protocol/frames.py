"""Typed frames: what a client may send, and builders for what we send."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.protocol.errors import INVALID_REQUEST, RpcError

PRE_CONNECT_MAX_BYTES = 64 * 1024
MAX_PAYLOAD_BYTES = 26_214_400
MAX_BUFFERED_BYTES = 52_428_800
TICK_INTERVAL_MS = 30_000
# Beyond these a frame is refused with INVALID_REQUEST naming the limit (never left unanswered).
MAX_NESTING_DEPTH = 64
MAX_NUMBER_DIGITS = 100
# Connect caps the gateway honours: `tool-events` gets a run's `agent` tool stream (tools.md
# §5.1); `model-catalog-snapshot` gets `models.snapshot` after hello (official-clients §3).
TOOL_EVENTS_CAP = "tool-events"
MODEL_CATALOG_SNAPSHOT = "model-catalog-snapshot"


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
    """Parse one text frame into a request; raises RpcError (naming the limit or the field)
    or ValueError (not JSON)."""
    try:
        data = json.loads(text, parse_int=_bounded_int)
    except RecursionError:
        raise _too_deep() from None
    except _NumberTooLong:
        raise RpcError(
            INVALID_REQUEST,
            f"invalid frame: a number has more than {MAX_NUMBER_DIGITS} digits",
            details={"limit": "maxNumberDigits", "max": MAX_NUMBER_DIGITS},
        ) from None
    if _depth_exceeds(data, MAX_NESTING_DEPTH):
        raise _too_deep()
    if not isinstance(data, dict):
        raise RpcError(INVALID_REQUEST, "invalid frame: expected a JSON object")
    try:
        return RequestFrame.model_validate(data)
    except ValidationError as exc:
        raise RpcError(INVALID_REQUEST, f"invalid frame: {describe(exc)}") from exc


class _NumberTooLong(ValueError):
    pass


def _bounded_int(digits: str) -> int:
    # Python refuses > 4,300 digits with a ValueError that looked like "not JSON"; far
    # smaller numbers are already beyond what a JSON peer (a JS double) can mean.
    if len(digits.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise _NumberTooLong
    return int(digits)


def _too_deep() -> RpcError:
    return RpcError(
        INVALID_REQUEST,
        f"invalid frame: nested deeper than {MAX_NESTING_DEPTH} levels",
        details={"limit": "maxNestingDepth", "max": MAX_NESTING_DEPTH},
    )


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Iterative, so checking a deep value cannot itself overflow the stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


_ID = re.compile(r'"id"\s*:\s*("(?:[^"\\]|\\.){1,256}")')


def salvage_id(text: str) -> str | None:
    """The request id of a frame we could not parse, so it can still be answered."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict):
        value = data.get("id")
        return value[:256] if isinstance(value, str) and value else None
    match = _ID.search(text, 0, 4096) or _ID.search(text)
    if match is None:
        return None
    try:
        value = json.loads(match.group(1))
    except ValueError:
        return None
    return value[:256] if isinstance(value, str) and value else None


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
