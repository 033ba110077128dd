"""What every HTTP API endpoint shares: JSON errors, capped body reading, bearer secrets.

Errors are JSON in OpenAI's shape (`{"error": {"message", "type"}}`) so SDK clients show
the message; nothing here ever echoes a secret.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from gateway.auth import client_address
from gateway.runtime import Gateway

BODY_TIMEOUT_S = 30.0
MAX_JSON_DEPTH = 64


class HttpError(Exception):
    """An error answer: status, message, OpenAI-style `type`, optional headers."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        return JSONResponse(
            {"error": {"message": self.message, "type": self.kind}},
            status_code=self.status,
            headers=self.headers,
        )


def address_of(gateway: Gateway, request: Request) -> str:
    peer = request.client.host if request.client else None
    return client_address(peer, request.headers, gateway.proxy_trust)


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The request body as a JSON object, read in chunks and refused past `limit` bytes.

    413 when too large (announced or actual), 408 when the body trickles in past the
    timeout, 400 for anything that is not a JSON object (naming the problem).
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HttpError(413, f"request body exceeds {limit} bytes", "payload_too_large")
    chunks: list[bytes] = []
    size = 0

    async def collect() -> None:
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HttpError(413, f"request body exceeds {limit} bytes", "payload_too_large")
            chunks.append(chunk)

    try:
        await asyncio.wait_for(collect(), BODY_TIMEOUT_S)
    except TimeoutError as exc:
        raise HttpError(408, "request body not received in time", "timeout") from exc
    except ClientDisconnect as exc:
        raise HttpError(400, "client disconnected while sending the body") from exc
    raw = b"".join(chunks)
    if not raw.strip():
        raise HttpError(400, "request body is empty; send a JSON object")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise HttpError(400, f"request body is not valid JSON: {_short(exc)}") from exc
    if not isinstance(body, dict):
        raise HttpError(400, "request body must be a JSON object")
    if _depth(body) > MAX_JSON_DEPTH:
        raise HttpError(400, f"request body nests deeper than {MAX_JSON_DEPTH} levels")
    return body


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def _depth(value: Any) -> int:
    """Nesting depth, iteratively (a hostile body must not exhaust the stack)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_JSON_DEPTH:
            return level
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return deepest
