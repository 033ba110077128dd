"""Transport limits: how much a client may cost us before (and after) it authenticates.

Each limit has a default that suits a small machine (Fly's 512 MB) and an environment variable
to change it; the README's "Transport limits" table lists them. They are environment variables,
not config keys, so an `openclaw.json` stays valid for the reference implementation.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Mapping
from dataclasses import dataclass, replace

from gateway.protocol.frames import MAX_PAYLOAD_BYTES, PRE_CONNECT_MAX_BYTES

# File descriptors kept free for everything that is not an inbound connection: the state
# database, transcripts, log files, outbound HTTPS to Telegram/Discord/model providers.
FD_RESERVE = 256
FD_TARGET = 65_536  # the soft limit we raise to (bounded by the hard limit)


@dataclass(frozen=True)
class TransportLimits:
    # WebSocket message before `connect` succeeds: refused from the frame header, unbuffered.
    pre_connect_max_bytes: int = PRE_CONNECT_MAX_BYTES
    # WebSocket message after `connect` (hello-ok policy.maxPayload).
    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    # HTTP request line + headers (h11's incomplete-event cap): larger → 400, connection closed.
    max_header_bytes: int = 16 * 1024
    # Header fields per request: more → 431.
    max_headers: int = 100
    # Time for a connection to deliver a complete request head (slowloris, silent sockets).
    header_timeout_s: float = 10.0
    # Connections not yet authenticated (HTTP requests, WebSockets before `connect`); when
    # full, the oldest is closed so a newcomer always gets a chance.
    max_unauthenticated: int = 1024
    # ... per client address (the real one behind a trusted proxy): more are refused.
    max_unauthenticated_per_address: int = 32
    # All open connections; lowered at start to the file-descriptor limit minus FD_RESERVE.
    max_connections: int = 8192
    # A throttled address waits this long before its secret is checked (see gateway.auth).
    auth_failure_hold_s: float = 5.0
    # "accept() out of system resource" and similar floods: one log line per interval.
    error_log_interval_s: float = 10.0


ENV_KEYS: dict[str, str] = {
    "max_header_bytes": "CLAWGATE_MAX_HEADER_BYTES",
    "max_headers": "CLAWGATE_MAX_HEADERS",
    "header_timeout_s": "CLAWGATE_HEADER_TIMEOUT_MS",
    "max_unauthenticated": "CLAWGATE_MAX_UNAUTHENTICATED",
    "max_unauthenticated_per_address": "CLAWGATE_MAX_UNAUTHENTICATED_PER_ADDRESS",
    "max_connections": "CLAWGATE_MAX_CONNECTIONS",
    "auth_failure_hold_s": "CLAWGATE_AUTH_FAILURE_HOLD_MS",
}


class LimitError(ValueError):
    pass


def limits_from_env(env: Mapping[str, str] | None = None) -> TransportLimits:
    """Defaults, overridden by CLAWGATE_* variables; a bad value names its variable."""
    env = os.environ if env is None else env
    changes: dict[str, float | int] = {}
    for field_name, key in ENV_KEYS.items():
        raw = env.get(key, "").strip()
        if not raw:
            continue
        try:
            value = int(raw)
        except ValueError:
            raise LimitError(f"{key}={raw!r} is not a whole number") from None
        if value < (0 if key.endswith("_MS") else 1):
            raise LimitError(f"{key}={raw!r} must be positive")
        changes[field_name] = value / 1000 if key.endswith("_MS") else value
    return replace(TransportLimits(), **changes)  # type: ignore[arg-type]


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE towards the hard limit; returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = FD_TARGET if hard == resource.RLIM_INFINITY else min(hard, FD_TARGET)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass  # not allowed here: keep the limit we have
    return FD_TARGET if soft == resource.RLIM_INFINITY else soft


def fit_to_fd_limit(limits: TransportLimits, fd_soft: int) -> TransportLimits:
    """Connections stay below the descriptor limit, so accept() never meets EMFILE."""
    ceiling = max(16, fd_soft - FD_RESERVE if fd_soft > 2 * FD_RESERVE else fd_soft // 2)
    if limits.max_connections <= ceiling:
        return limits
    return replace(
        limits,
        max_connections=ceiling,
        max_unauthenticated=min(limits.max_unauthenticated, ceiling),
    )
