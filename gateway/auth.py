"""Checking the shared secret on `connect`, and throttling repeated failures per address."""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Callable, Mapping
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
    """Throttles secret guessing per client address without ever refusing the right secret.

    After `max_attempts` failures within `window_s`, the address is throttled for `lockout_s`
    (renewed by each further failure). A throttled address's connect waits `hold_s` before
    its secret is checked (Connection._handshake); then the right secret connects and a wrong
    one is refused with AUTH_RATE_LIMITED. A connection given up during the wait is never
    checked, so an address guesses at most max_unauthenticated_per_address / hold_s times a
    second (32 / 5 s = 6.4 by default), and the operator is at worst delayed by `hold_s`.
    """

    def __init__(
        self,
        max_attempts: int = 10,
        window_s: float = 60.0,
        lockout_s: float = 300.0,
        exempt_loopback: bool = True,
        clock: Callable[[], float] = time.monotonic,
        hold_s: float = 5.0,
    ) -> None:
        self.max_attempts = max_attempts
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.exempt_loopback = exempt_loopback
        self.clock = clock
        self.hold_s = hold_s
        self._buckets: dict[str, _Bucket] = {}

    def throttled_for(self, address: str) -> float:
        """Seconds the address stays throttled (0 when it is not)."""
        bucket = self._buckets.get(address)
        if bucket is None:
            return 0.0
        return max(0.0, bucket.locked_until - self.clock())

    def failure(self, address: str) -> float:
        """Record a wrong secret; returns how long the address is throttled now (0: not)."""
        if self.exempt_loopback and is_loopback(address):
            return 0.0
        now = self.clock()
        bucket = self._buckets.setdefault(address, _Bucket())
        if bucket.locked_until > now:
            bucket.locked_until = now + self.lockout_s
            return self.lockout_s
        bucket.failures = [t for t in bucket.failures if now - t < self.window_s]
        bucket.failures.append(now)
        if len(bucket.failures) >= self.max_attempts:
            bucket.locked_until = now + self.lockout_s
            bucket.failures.clear()
        if len(self._buckets) > 10_000:  # bound memory under a spray of addresses
            self._prune(now)
        return 0.0

    def success(self, address: str) -> None:
        self._buckets.pop(address, None)

    def _prune(self, now: float) -> None:
        for key in [
            k
            for k, b in self._buckets.items()
            if b.locked_until <= now and not [t for t in b.failures if now - t < self.window_s]
        ]:
            del self._buckets[key]


def rate_limited(remaining_s: float) -> RpcError:
    return RpcError(
        UNAVAILABLE,
        "too many failed authentication attempts; try again later",
        details={"code": "AUTH_RATE_LIMITED"},
        retryable=True,
        retry_after_ms=int(remaining_s * 1000) + 1,
        close_code=CLOSE_POLICY,
    )


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


# Fly's proxy sets Fly-Client-IP on every request it forwards to a Machine
# (https://fly.io/docs/networking/request-headers/). Peers on Fly's private network (6PN,
# fdaa::/16) reach the Machine directly and could set the header themselves: not believed.
FLY_PRIVATE_NETWORK = ipaddress.ip_network("fdaa::/16")
FLY_ENV = ("FLY_APP_NAME", "FLY_MACHINE_ID")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ProxyTrust:
    """Which peers may tell us the client's address: `gateway.trustedProxies` and Fly's proxy."""

    networks: tuple[Network, ...] = ()
    fly: bool = False

    @classmethod
    def build(cls, entries: list[str], env: Mapping[str, str]) -> ProxyTrust:
        networks: list[Network] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                continue  # the config validator names bad entries; never crash a connection
        return cls(tuple(networks), fly=any(env.get(k) for k in FLY_ENV))

    def trusts(self, address: str) -> bool:
        ip = _ip(address)
        return ip is not None and any(ip in net for net in self.networks)

    def fly_proxy(self, address: str) -> bool:
        if not self.fly:
            return False
        ip = _ip(address)
        return ip is not None and ip not in FLY_PRIVATE_NETWORK

    def is_proxy(self, address: str) -> bool:
        """True when requests from `address` carry the real client's address in a header."""
        return self.fly_proxy(address) or self.trusts(address)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def client_address(
    peer: str | None, headers: Mapping[str, str], trust: ProxyTrust = ProxyTrust()
) -> str:
    """The client's address: Fly-Client-IP on Fly, X-Forwarded-For only from trusted proxies."""
    address = peer or "unknown"
    if trust.fly_proxy(address):
        fly_ip = _ip(headers.get("fly-client-ip", ""))
        if fly_ip is not None:
            return str(fly_ip)
    forwarded_for = headers.get("x-forwarded-for")
    if not forwarded_for or not trust.trusts(address):
        return address
    # Walk right to left past our own proxies; the first other hop is the client.
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not trust.trusts(hop):
            ip = _ip(hop)
            return str(ip) if ip is not None else hop[:64]
    return hops[0][:64] if hops else address
