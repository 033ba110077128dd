"""Brave Search web results (the reference's first auto-detected search provider).

Key: `BRAVE_API_KEY` (or the legacy `tools.web.search.apiKey`). Endpoint:
`https://api.search.brave.com`, overridable with `BRAVE_SEARCH_BASE_URL` (a trusted proxy,
or the fake used by tests).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from gateway.config.models import OpenClawConfig
from gateway.config.secrets import SecretError, resolve_secret
from gateway.tls import client_context

DEFAULT_BASE_URL = "https://api.search.brave.com"
BASE_URL_ENV = "BRAVE_SEARCH_BASE_URL"
KEY_ENV = "BRAVE_API_KEY"
FRESHNESS = {"day": "pd", "week": "pw", "month": "pm", "year": "py"}


class SearchError(Exception):
    """A provider failure the model should read; never contains the key."""


@dataclass(frozen=True)
class SearchHit:
    title: str
    url: str
    snippet: str
    published: str | None = None
    site_name: str | None = None


def api_key(config: OpenClawConfig, env: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if env is None else env
    try:
        configured = resolve_secret(config.tools.web.search.api_key, "tools.web.search.apiKey", env)
    except SecretError:
        configured = None
    return configured or env.get(KEY_ENV) or None


def base_url(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return (env.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")


def freshness(value: str | None, after: str | None, before: str | None) -> str | None:
    if after or before:
        if not after:
            raise SearchError("date_before needs date_after as well (Brave takes a date range)")
        end = before or dt.date.today().isoformat()
        return f"{after}to{end}"
    if value is None:
        return None
    if value not in FRESHNESS:
        raise SearchError(f"freshness must be one of {', '.join(FRESHNESS)}, not {value!r}")
    return FRESHNESS[value]


async def search(
    query: str,
    *,
    key: str,
    count: int,
    timeout_s: float,
    params: Mapping[str, str | None],
    env: Mapping[str, str] | None = None,
) -> list[SearchHit]:
    query_params: dict[str, str] = {"q": query, "count": str(count)}
    query_params.update({k: v for k, v in params.items() if v})
    try:
        async with httpx.AsyncClient(timeout=timeout_s, verify=client_context()) as client:
            resp = await client.get(
                f"{base_url(env)}/res/v1/web/search",
                params=query_params,
                headers={"Accept": "application/json", "X-Subscription-Token": key},
            )
    except httpx.TimeoutException:
        raise SearchError(f"Brave Search timed out after {timeout_s:g}s") from None
    except httpx.HTTPError as exc:
        raise SearchError(f"Brave Search request failed: {type(exc).__name__}") from None
    if resp.status_code in (401, 403):
        raise SearchError(
            f"Brave Search rejected the API key (HTTP {resp.status_code}); check BRAVE_API_KEY"
        )
    if resp.status_code == 429:
        raise SearchError("Brave Search rate limit reached (HTTP 429); try again later")
    if resp.status_code >= 500:
        raise SearchError(f"Brave Search failed on its side (HTTP {resp.status_code})")
    if resp.status_code != 200:
        raise SearchError(f"Brave Search refused the request (HTTP {resp.status_code})")
    try:
        data: Any = resp.json()
        results = data.get("web", {}).get("results", []) if isinstance(data, dict) else []
    except ValueError:
        raise SearchError("Brave Search answered with something that is not JSON") from None
    hits: list[SearchHit] = []
    for item in results if isinstance(results, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("url"), str):
            continue
        profile = item.get("profile")
        hits.append(
            SearchHit(
                title=str(item.get("title") or ""),
                url=item["url"],
                snippet=str(item.get("description") or ""),
                published=str(item["age"]) if item.get("age") else None,
                site_name=str(profile.get("name")) if isinstance(profile, dict) else None,
            )
        )
    return hits[:count]
