"""The SSRF guard: web_fetch only ever connects to public addresses.

The check runs inside the HTTP transport, on the address actually used for the connection:
the host is resolved once, every answer must be public, and the connection goes to that
checked IP with the original Host header and TLS SNI/certificate name. A DNS answer that
changes between "check" and "connect" (rebinding) therefore cannot reach a private address,
and every redirect hop goes through the same transport.

Refused (unless opted in): loopback, private (10/8, 172.16/12, 192.168/16), carrier-grade NAT
(100.64/10), link-local (169.254/16, the cloud metadata address), unique-local IPv6 (fc00::/7,
Fly's fdaa::/16), multicast, reserved and unspecified addresses, and IPv6 forms embedding an
IPv4 address (::ffff:a.b.c.d, 6to4, NAT64) that is itself refused. Opt-ins
(`tools.web.fetch.ssrfPolicy`): `allowedHostnames` (exact hosts, e.g. an intranet wiki) and
`dangerouslyAllowPrivateNetwork` (everything except the cloud metadata endpoints).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import httpx

from gateway.tls import client_context

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Refused even with dangerouslyAllowPrivateNetwork: credentials live there.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
METADATA_HOSTNAMES = frozenset({"metadata.google.internal", "metadata", "instance-data"})


class BlockedUrl(Exception):
    """The URL points somewhere web_fetch must not go; the message says why."""


async def system_resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def is_public(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None:
            return is_public(inner)
    return bool(
        ip.is_global
        and not ip.is_multicast
        and not ip.is_unspecified
        and not ip.is_reserved
        and not ip.is_link_local
    )


def normalize_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _matches(host: str, pattern: str) -> bool:
    pattern = normalize_host(pattern)
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])  # wildcards do not match the apex
    return host == pattern


@dataclass(frozen=True)
class SsrfGuard:
    allowed_hostnames: frozenset[str] = frozenset()
    blocked_hostnames: tuple[str, ...] = ()
    allow_private_network: bool = False
    resolver: Resolver = field(default=system_resolve, compare=False)
    # The config key refusals point at (the guard also serves automation webhooks).
    policy_key: str = "tools.web.fetch.ssrfPolicy"

    @classmethod
    def from_lists(
        cls,
        allowed: Iterable[str] = (),
        blocked: Iterable[str] = (),
        *,
        allow_private_network: bool = False,
        resolver: Resolver = system_resolve,
        policy_key: str = "tools.web.fetch.ssrfPolicy",
    ) -> SsrfGuard:
        return cls(
            frozenset(normalize_host(h) for h in allowed),
            tuple(blocked),
            allow_private_network,
            resolver,
            policy_key,
        )

    def check_url(self, url: httpx.URL) -> None:
        """Checks that need no DNS: scheme, credentials, names that are never public."""
        if url.scheme not in ("http", "https"):
            raise BlockedUrl(f"only http and https URLs can be fetched, not {url.scheme!r}")
        if url.userinfo:
            raise BlockedUrl("URLs with credentials (user:password@) are refused")
        host = normalize_host(url.host)
        if not host:
            raise BlockedUrl("the URL has no host")
        if any(_matches(host, p) for p in self.blocked_hostnames):
            raise BlockedUrl(f"{host} is blocked by {self.policy_key}.blockedHostnames")

    async def pin(self, url: httpx.URL) -> str:
        """The checked IP to connect to for `url`; raises BlockedUrl when refused."""
        self.check_url(url)
        host = normalize_host(url.host)
        allowed = host in self.allowed_hostnames
        try:
            ips = [ipaddress.ip_address(host)]
        except ValueError:
            if not allowed and (host in METADATA_HOSTNAMES or host.endswith(".internal")):
                raise BlockedUrl(f"{host} is an internal name; refused") from None
            if not allowed and not self.allow_private_network and _local_name(host):
                raise BlockedUrl(f"{host} is a local name; refused") from None
            port = url.port or (443 if url.scheme == "https" else 80)
            try:
                answers = await self.resolver(host, port)
            except OSError as exc:
                raise BlockedUrl(f"cannot resolve {host}: {exc.strerror or exc}") from None
            ips = [ipaddress.ip_address(a.split("%", 1)[0]) for a in answers]
            if not ips:
                raise BlockedUrl(f"cannot resolve {host}") from None
        if not allowed:
            for ip in ips:
                self._check_ip(host, ip)
        return str(ips[0])

    def _check_ip(self, host: str, ip: IPAddress) -> None:
        if ip in METADATA_ADDRESSES or (
            isinstance(ip, ipaddress.IPv6Address) and embedded_ipv4(ip) in METADATA_ADDRESSES
        ):
            raise BlockedUrl(f"{host} resolves to the cloud metadata address {ip}; refused")
        if is_public(ip) or self.allow_private_network:
            return
        shown = host if host == str(ip) else f"{host} ({ip})"
        raise BlockedUrl(
            f"{shown} is a private, loopback, link-local or otherwise non-public address; "
            f"refused ({self.policy_key}.allowedHostnames can allow an exact host)"
        )


def _local_name(host: str) -> bool:
    return host == "localhost" or host.endswith((".localhost", ".local", ".localdomain"))


class PinnedTransport(httpx.AsyncBaseTransport):
    """Resolves and checks each request's host, then connects to that exact IP."""

    def __init__(self, guard: SsrfGuard) -> None:
        self.guard = guard
        # No keep-alive: a pooled connection (keyed by IP) must never serve another host.
        # The process's shared verifying context; the certificate is checked against the
        # requested host name, sent as SNI (see handle_async_request).
        self._inner = httpx.AsyncHTTPTransport(
            retries=0,
            limits=httpx.Limits(max_keepalive_connections=0),
            verify=client_context(),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        ip = await self.guard.pin(request.url)
        host = normalize_host(request.url.host)
        pinned = httpx.Request(
            request.method,
            request.url.copy_with(host=ip),
            headers=request.headers,  # keeps the original Host header
            stream=request.stream,
            extensions={**request.extensions, "sni_hostname": host},
        )
        return await self._inner.handle_async_request(pinned)

    async def aclose(self) -> None:
        await self._inner.aclose()
