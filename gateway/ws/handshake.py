"""The `connect` handshake: protocol range, origin, auth, scopes → hello-ok."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from gateway import PROTOCOL_VERSION
from gateway.auth import CLOSE_POLICY, authenticate, rate_limited
from gateway.protocol import scopes as sc
from gateway.protocol.errors import INVALID_REQUEST, RpcError
from gateway.protocol.frames import (
    MAX_BUFFERED_BYTES,
    MAX_PAYLOAD_BYTES,
    ConnectParams,
    describe,
)

if TYPE_CHECKING:
    from gateway.runtime import Gateway

CLOSE_PROTOCOL = 1002


@dataclass(frozen=True)
class Admitted:
    params: ConnectParams
    method: str
    scopes: tuple[str, ...]


def admit(gateway: Gateway, raw_params: Any, address: str, origin: str | None) -> Admitted:
    """Validate a connect request; raises RpcError (with a close code) when refused."""
    try:
        params = ConnectParams.model_validate(raw_params if raw_params is not None else {})
    except ValidationError as exc:
        raise RpcError(
            INVALID_REQUEST, f"invalid connect params: {describe(exc)}", close_code=CLOSE_POLICY
        ) from exc
    if not params.min_protocol <= PROTOCOL_VERSION <= params.max_protocol:
        raise RpcError(
            INVALID_REQUEST,
            f"protocol mismatch: this gateway speaks protocol {PROTOCOL_VERSION}",
            details={
                "code": "PROTOCOL_MISMATCH",
                "clientMinProtocol": params.min_protocol,
                "clientMaxProtocol": params.max_protocol,
                "expectedProtocol": PROTOCOL_VERSION,
            },
            close_code=CLOSE_PROTOCOL,
        )
    if params.role != "operator":
        raise RpcError(
            INVALID_REQUEST,
            f'unsupported role "{params.role}": this gateway accepts operator clients',
            details={"code": "ROLE_UNSUPPORTED"},
            close_code=CLOSE_POLICY,
        )
    if origin is not None and origin.rstrip("/") not in gateway.settings.allowed_origins:
        raise RpcError(
            INVALID_REQUEST,
            f"origin not allowed: {origin} (add it to gateway.controlUi.allowedOrigins)",
            details={"code": "ORIGIN_NOT_ALLOWED"},
            close_code=CLOSE_POLICY,
        )
    auth = params.auth
    try:
        method = authenticate(
            gateway.settings.auth, auth.token if auth else None, auth.password if auth else None
        )
    except RpcError:
        # The secret is checked even while the address is throttled: the right one always
        # gets in; a wrong one is refused as rate limited (and answered late, see Connection).
        throttled = gateway.limiter.failure(address)
        if throttled > 0:
            raise rate_limited(throttled) from None
        raise
    gateway.limiter.success(address)
    # A shared-secret operator gets what it asked for, up to operator.admin.
    granted = tuple(s for s in dict.fromkeys(params.scopes) if s in sc.KNOWN)
    return Admitted(params=params, method=method, scopes=granted)


def hello_ok(
    gateway: Gateway, admitted: Admitted, conn_id: str, health: dict[str, Any]
) -> dict[str, Any]:
    return {
        "type": "hello-ok",
        "protocol": PROTOCOL_VERSION,
        "server": {
            "version": gateway.version,
            "connId": conn_id,
            "bootId": gateway.boot_id,
        },
        "features": {"methods": gateway.registry.names(), "events": list(_events())},
        "snapshot": {
            "presence": gateway.presence(),
            "health": health,
            "stateVersion": dict(gateway.state_version),
            "uptimeMs": gateway.uptime_ms,
        },
        "auth": {"role": "operator", "scopes": list(admitted.scopes)},
        "policy": {
            "maxPayload": MAX_PAYLOAD_BYTES,
            "maxBufferedBytes": MAX_BUFFERED_BYTES,
            "tickIntervalMs": gateway.tick_interval_ms,
        },
    }


def _events() -> list[str]:
    from gateway.runtime import EVENTS

    return EVENTS
