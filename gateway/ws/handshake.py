"""The `connect` handshake: protocol range, origin, auth, scopes → hello-ok."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from gateway import PROTOCOL_VERSION, devices
from gateway.auth import CLOSE_POLICY, authenticate, rate_limited
from gateway.media.settings import attachment_policy
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
# `models.list` is the published catalog (the CLI's `models list` requires saying so). The
# reference's other capabilities promise features clawgate lacks, so they are not claimed.
CAPABILITIES = ("published-model-catalog",)


@dataclass(frozen=True)
class Admitted:
    params: ConnectParams
    method: str  # token | password | device-token | none
    scopes: tuple[str, ...]
    device_id: str | None = None
    device_token: devices.Issued | None = None


def admit(
    gateway: Gateway, raw_params: Any, address: str, origin: str | None, nonce: str = ""
) -> Admitted:
    """Validate a connect request; raises RpcError (with a close code) when refused.

    `nonce` is this socket's `connect.challenge` nonce, which a signed device must echo."""
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
    requested = tuple(s for s in dict.fromkeys(params.scopes) if s in sc.KNOWN)
    try:
        admitted = _authenticate(gateway, params, requested, nonce)
    except RpcError:
        # The secret is checked even while the address is throttled: the right one always
        # gets in; a wrong one is refused as rate limited (and answered late, see Connection).
        throttled = gateway.limiter.failure(address)
        if throttled > 0:
            raise rate_limited(throttled) from None
        raise
    gateway.limiter.success(address)
    return admitted


def _authenticate(
    gateway: Gateway, params: ConnectParams, requested: tuple[str, ...], nonce: str
) -> Admitted:
    settings = gateway.settings.auth
    auth = params.auth
    token = auth.token if auth else None
    password = auth.password if auth else None
    extra = (auth.model_extra or {}) if auth else {}
    device_token = extra.get("deviceToken") if isinstance(extra.get("deviceToken"), str) else None
    raw_device = (params.model_extra or {}).get("device")
    proof = devices.parse_proof(raw_device) if raw_device is not None else None
    if proof is not None:
        slot = token or device_token or extra.get("bootstrapToken") or ""
        facts = devices.SignedFacts(
            client_id=params.client.id,
            client_mode=params.client.mode,
            role=params.role,
            scopes=tuple(params.scopes),
            token=slot if isinstance(slot, str) else "",
            platform=params.client.platform,
            device_family=params.client.device_family or "",
        )
        devices.verify_proof(proof, facts, nonce)
    secret_given = password if settings.mode == "password" else token
    if device_token and not secret_given and settings.mode in ("token", "password"):
        # A device token alone logs nobody in: it must come with the key it was issued to.
        if proof is None:
            raise RpcError(
                INVALID_REQUEST,
                "unauthorized: a device token needs the signed device identity",
                details={"code": "AUTH_DEVICE_TOKEN_MISMATCH"},
                close_code=CLOSE_POLICY,
            )
        issued = _device_store(gateway).redeem(proof, device_token, _generation(gateway))
        allowed = sc.expand(issued.scopes)
        granted = tuple(s for s in requested if s in allowed)
        return Admitted(params, "device-token", granted, proof.id.lower(), issued)
    method = authenticate(settings, token, password)
    # A shared-secret operator gets what it asked for, up to operator.admin.
    if proof is None or method == "none":
        return Admitted(params, method, requested, proof.id.lower() if proof else None)
    issued = _device_store(gateway).issue(proof, facts, requested, _generation(gateway))
    return Admitted(params, method, requested, proof.id.lower(), issued)


def _device_store(gateway: Gateway) -> devices.DeviceStore:
    store = gateway.extensions.get("devices")
    if not isinstance(store, devices.DeviceStore):
        store = devices.DeviceStore(gateway.settings.state_dir)
        gateway.extensions["devices"] = store
    return store


def _generation(gateway: Gateway) -> str:
    return devices.secret_generation(gateway.settings.auth.secret or "")


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
            "buildId": build_id(gateway),
            # clawgate never ships the official Control UI: any official bundle talking to it
            # was supplied by the operator, so it must not compare its build with ours (the
            # reference says "configured" for an operator-supplied bundle; otherwise the
            # official UI decides the server was updated and reloads forever).
            "controlUiBuildSource": "configured",
        },
        "features": {
            "methods": gateway.registry.advertised(),
            "events": list(_events()),
            "capabilities": list(CAPABILITIES),
        },
        "snapshot": {
            "presence": gateway.presence(),
            "health": health,
            "stateVersion": dict(gateway.state_version),
            "uptimeMs": gateway.uptime_ms,
            "authMode": gateway.settings.auth.mode,
            "sessionDefaults": session_defaults(gateway),
            "configPath": str(gateway.settings.config_path),
            "stateDir": str(gateway.settings.state_dir),
        },
        "auth": _auth_block(admitted),
        "policy": {
            "maxPayload": MAX_PAYLOAD_BYTES,
            "maxBufferedBytes": MAX_BUFFERED_BYTES,
            "tickIntervalMs": gateway.tick_interval_ms,
            "attachments": attachment_policy(gateway.loaded.config),
        },
    }


def _auth_block(admitted: Admitted) -> dict[str, Any]:
    block: dict[str, Any] = {
        "method": admitted.method,
        "role": "operator",
        "scopes": list(admitted.scopes),
    }
    if admitted.device_token is not None:
        block["deviceToken"] = admitted.device_token.token
        block["issuedAtMs"] = admitted.device_token.issued_at_ms
    return block


def build_id(gateway: Gateway) -> str:
    return f"clawgate-{gateway.version}"


def session_defaults(gateway: Gateway) -> dict[str, Any]:
    from gateway.agents import roster as rv

    config = gateway.loaded.config
    agent_id = rv.default_agent_id(config)
    return {
        "defaultAgentId": agent_id,
        "mainKey": "main",
        "mainSessionKey": f"agent:{agent_id}:main",
        "scope": config.session.scope,
    }


def _events() -> list[str]:
    from gateway.runtime import EVENTS

    return EVENTS
