"""The `gateway` section of the configuration: what the CLI needs before the socket listens.

Validated alone first (`GatewaySection`, gateway/config/loader.py `validate_gateway_section`),
so the port, the bind address and the auth are known without building the models of every
other section; `OpenClawConfig` (gateway/config/models.py) includes these classes and validates
the whole file in the start-up thread. The shared base (`Strict`, `section_default`, `Later`,
secrets) lives here because both modules need it.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

# Accepted for compatibility with reference configs, not acted on (yet).
Later = Any


class Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=False,
        defer_build=True,
    )


def section_default() -> Any:
    """The default of a nested section: `{}` validated by the enclosing model.

    Same value as `Field(default_factory=Section)`, but with `defer_build` a section's class
    never builds a validator of its own: only the roots (`GatewaySection`, `OpenClawConfig`)
    do, once each. Building ~90 validators was most of the cost of importing the models.
    """
    return Field(default_factory=dict, validate_default=True)


class SecretRef(Strict):
    """Where a secret lives instead of inline text; only `source: "env"` is resolved for now."""

    source: Literal["env", "file", "exec", "store"]
    provider: str = "default"
    id: str

    @field_validator("id")
    @classmethod
    def _env_id(cls, value: str) -> str:
        if not value:
            raise ValueError("id must not be empty")
        return value


SecretInput = str | SecretRef


# --- gateway -------------------------------------------------------------------------------


class RateLimit(Strict):
    max_attempts: int = Field(10, ge=1)
    window_ms: int = Field(60_000, ge=1)
    lockout_ms: int = Field(300_000, ge=0)
    exempt_loopback: bool = True


class GatewayAuth(Strict):
    mode: Literal["none", "token", "password", "trusted-proxy"] | None = None
    token: SecretInput | None = None
    password: SecretInput | None = None
    rate_limit: RateLimit = section_default()
    allow_tailscale: Later = None
    trusted_proxy: Later = None
    identity_scopes: Later = None


class ControlUi(Strict):
    enabled: bool = True
    base_path: str = ""
    allowed_origins: list[str] = Field(default_factory=list)
    dangerously_allow_host_header_origin_fallback: Later = None
    dangerously_disable_device_auth: Later = None
    allow_insecure_auth: Later = None
    root: Later = None
    environment: Later = None

    @field_validator("base_path")
    @classmethod
    def _base_path(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith("/"):
            raise ValueError("must start with '/' (for example \"/openclaw\")")
        if ".." in value.split("/"):
            raise ValueError("must not contain '..'")
        return value


class Reload(Strict):
    mode: Literal["off", "hybrid", "hot", "restart"] = "hybrid"
    debounce_ms: Later = None


class GatewayConfig(Strict):
    mode: Literal["local", "remote"] | None = None
    port: int | None = Field(None, ge=1, le=65535)
    bind: Literal["loopback", "lan", "tailnet", "auto", "custom"] | None = None
    custom_bind_host: str | None = None
    auth: GatewayAuth = section_default()
    control_ui: ControlUi = section_default()
    trusted_proxies: list[str] = Field(default_factory=list)
    allow_real_ip_fallback: bool = False
    reload: Reload = section_default()
    public_origin: Later = None
    tls: Later = None
    tailscale: Later = None
    remote: Later = None
    nodes: Later = None
    http: GatewayHttp = section_default()
    roles: Later = None
    terminal: Later = None
    push: Later = None
    tools: Later = None
    cli_agents: Later = None
    portals: Later = None
    channel_health_check_minutes: Later = None

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, value: list[str]) -> list[str]:
        # An address ("10.0.0.2") or a CIDR range ("10.0.0.0/8", "fd00::/8").
        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f'"{entry}" is not an IP address or CIDR range (like "10.0.0.0/8")'
                ) from None
        return value


# --- gateway.http (the HTTP APIs' switches; hooks.* are in models.py) ----------------------


class HttpEndpoint(Strict):
    enabled: bool = False
    # clawgate: turns from this endpoint get the owner's tools only when set (default: a
    # stranger's, tools.md §2.8); the reference treats every bearer caller as the owner.
    sender_is_owner: bool = False
    images: Later = None
    max_body_bytes: int | None = Field(None, ge=1024)


class HttpEndpoints(Strict):
    chat_completions: HttpEndpoint = section_default()
    responses: HttpEndpoint = section_default()
    embeddings: Later = None


class GatewayHttp(Strict):
    endpoints: HttpEndpoints = section_default()
    security_headers: Later = None


# Top-level sections the reference accepts that we do not model: accepted, warned once.
UNMODELLED_SECTIONS = frozenset(
    {
        "accessGroups",
        "acp",
        "approvals",
        "attachments",
        "broadcast",
        "browser",
        "cloudWorkers",
        "desktop",
        "diagnostics",
        "discovery",
        "logging",
        "mcp",
        "nodeHost",
        "plugins",
        "proxy",
        "secrets",
        "security",
        "skills",
        "surfaces",
        "talk",
        "telemetry",
        "transcripts",
        "ui",
        "update",
        "wizard",
        "worktreeAcceleration",
        "worktreeRoot",
    }
)


class GatewaySection(BaseModel):
    """The file's root with only `gateway` validated; the other keys wait for `OpenClawConfig`."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    gateway: GatewayConfig = section_default()


class WithGateway(Protocol):
    """A config root with its `gateway` section: `GatewaySection` or `OpenClawConfig`."""

    @property
    def gateway(self) -> GatewayConfig: ...
