"""One guarded GET: redirects followed by hand (each hop re-checked, counted, loops
refused), the body read up to a byte cap, all under one deadline."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

from gateway.agents.web.ssrf import BlockedUrl, PinnedTransport, SsrfGuard

REDIRECTS = frozenset({301, 302, 303, 307, 308})
DEFAULT_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)
MIN_RESPONSE_BYTES = 32_000  # the reference's clamp of maxResponseBytes
MAX_RESPONSE_BYTES = 10_000_000


class FetchError(Exception):
    """A fetch that failed in a way the model should read (the message says how)."""


@dataclass(frozen=True)
class Fetched:
    url: str
    final_url: str
    status: int
    content_type: str | None
    body: bytes
    truncated: bool  # the body was longer than the byte cap


def clamp_response_bytes(value: int) -> int:
    return max(MIN_RESPONSE_BYTES, min(MAX_RESPONSE_BYTES, value))


async def fetch_url(
    url: str,
    guard: SsrfGuard,
    *,
    max_bytes: int,
    timeout_s: float,
    max_redirects: int,
    user_agent: str | None = None,
) -> Fetched:
    try:
        current = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise FetchError(f"invalid URL: {exc}") from None
    try:
        guard.check_url(current)
    except BlockedUrl as exc:
        raise FetchError(f"refused: {exc}") from None
    headers = {
        "User-Agent": user_agent or DEFAULT_USER_AGENT,
        "Accept": "text/html,application/xhtml+xml,text/plain,application/json;q=0.9,*/*;q=0.5",
        "Accept-Language": "en;q=0.9,*;q=0.5",
    }
    transport = PinnedTransport(guard)
    try:
        async with (
            asyncio.timeout(timeout_s),
            httpx.AsyncClient(
                transport=transport,
                follow_redirects=False,
                trust_env=False,  # an env proxy would resolve names itself, past the guard
                timeout=timeout_s,
                headers=headers,
            ) as client,
        ):
            seen = {str(current)}
            hops = 0
            while True:
                async with client.stream("GET", current) as resp:
                    location = resp.headers.get("location")
                    if resp.status_code in REDIRECTS and location:
                        hops += 1
                        if hops > max_redirects:
                            raise FetchError(
                                f"too many redirects (more than {max_redirects}; "
                                "tools.web.fetch.maxRedirects)"
                            )
                        try:
                            nxt = current.join(location)
                        except httpx.InvalidURL:
                            raise FetchError(f"invalid redirect target {location!r}") from None
                        if str(nxt) in seen:
                            raise FetchError(f"redirect loop at {nxt}")
                        seen.add(str(nxt))
                        current = nxt
                        continue
                    body, truncated = await _read_capped(resp, max_bytes)
                    return Fetched(
                        url,
                        str(current),
                        resp.status_code,
                        resp.headers.get("content-type"),
                        body,
                        truncated,
                    )
    except TimeoutError:
        raise FetchError(
            f"timed out after {timeout_s:g}s (tools.web.fetch.timeoutSeconds)"
        ) from None
    except BlockedUrl as exc:
        where = "" if str(current) == url else f" (redirected to {current})"
        raise FetchError(f"refused{where}: {exc}") from None
    except httpx.TimeoutException:
        raise FetchError(f"timed out after {timeout_s:g}s") from None
    except httpx.DecodingError as exc:
        raise FetchError(f"the response could not be decoded: {exc}") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"request failed: {type(exc).__name__}: {exc}") from None


async def _read_capped(resp: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            return b"".join(chunks)[:max_bytes], True
    return b"".join(chunks), False
