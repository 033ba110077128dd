"""Checking the shared secret on `connect`, and throttling repeated failures per address."""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.protocol.errors import INVALID_REQUEST, UNAVAILABLE, RpcError
from gateway.settings import AuthSettings

CLOSE_POLICY = 1008


def secrets_equal(given: str, expected: str) -> bool:
    # Constant time in the length of the expected secret, whatever the input.
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


@dataclass
class _Bucket:
    failures: list[float] = field(default_factory=list)
    locked_until: float = 0.0


class FailedAuthLimiter:
    """After `max_attempts` failures within `window_s`, an address is locked out for `lockout_s`."""

    def __init__(
        self,
        max_attempts: int = 10,
        window_s: float = 60.0,
        lockout_s: float = 300.0,
        exempt_loopback: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_attempts = max_attempts
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.exempt_loopback = exempt_loopback
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def check(self, address: str) -> None:
        """Raise UNAVAILABLE (retryable) while the address is locked out."""
        bucket = self._buckets.get(address)
        if bucket is None:
            return
        remaining = bucket.locked_until - self.clock()
        if remaining > 0:
            raise RpcError(
                UNAVAILABLE,
                "too many failed authentication attempts; try again later",
                details={"code": "AUTH_RATE_LIMITED"},
                retryable=True,
                retry_after_ms=int(remaining * 1000) + 1,
                close_code=CLOSE_POLICY,
            )

    def failure(self, address: str) -> None:
        if self.exempt_loopback and is_loopback(address):
            return
        now = self.clock()
        bucket = self._buckets.setdefault(address, _Bucket())
        bucket.failures = [t for t in bucket.failures if now - t < self.window_s]
        bucket.failures.append(now)
        if len(bucket.failures) >= self.max_attempts:
            bucket.locked_until = now + self.lockout_s
            bucket.failures.clear()
        if len(self._buckets) > 10_000:  # bound memory under a spray of addresses
            self._prune(now)

    def success(self, address: str) -> None:
        self._buckets.pop(address, None)

    def _prune(self, now: float) -> None:
        for key in [
            k
            for k, b in self._buckets.items()
            if b.locked_until <= now and not [t for t in b.failures if now - t < self.window_s]
        ]:
            del self._buckets[key]


def authenticate(settings: AuthSettings, token: str | None, password: str | None) -> str:
    """Return the auth method used, or raise the protocol's error for a bad secret."""
    if settings.mode == "none":
        return "none"
    if settings.mode == "password":
        expected, given, kind = settings.password or "", password, "password"
    else:
        expected, given, kind = settings.token or "", token, "token"
    if not given:
        raise RpcError(
            INVALID_REQUEST,
            f"unauthorized: gateway {kind} missing (provide the gateway {kind} to connect)",
            details={"code": f"AUTH_{kind.upper()}_MISSING"},
            close_code=CLOSE_POLICY,
        )
    if not secrets_equal(given, expected):
        raise RpcError(
            INVALID_REQUEST,
            f"unauthorized: gateway {kind} mismatch (check the {kind} you were given)",
            details={"code": f"AUTH_{kind.upper()}_MISMATCH"},
            close_code=CLOSE_POLICY,
        )
    return kind


def client_address(
    peer: str | None, forwarded_for: str | None, trusted_proxies: frozenset[str]
) -> str:
    """The client's address; X-Forwarded-For is believed only when the peer is a trusted proxy."""
    address = peer or "unknown"
    if not forwarded_for or address not in trusted_proxies:
        return address
    # Walk right to left past our own proxies; the first other hop is the client.
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if hop not in trusted_proxies:
            return hop
    return hops[0] if hops else address
