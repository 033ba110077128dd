"""web_fetch against a local page server (reached through the test allowlist), every SSRF
case refused, bad pages as clear errors, and web_search against a fake Brave API."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.agents import tools
from gateway.agents.tools import web as web_tools
from gateway.agents.tools.policy import allowed_tools
from gateway.agents.tools.registry import Requester, ToolContext, ToolOutput, invoke
from gateway.agents.web.fetch import FetchError, fetch_url
from gateway.agents.web.ssrf import BlockedUrl, SsrfGuard
from gateway.config.models import OpenClawConfig
from providers.types import ToolCall
from tests.fakes.web import FakeBrave, PageServer

REGISTRY = tools.load()
ALLOW_LOCAL = {"tools": {"web": {"fetch": {"ssrfPolicy": {"allowedHostnames": ["127.0.0.1"]}}}}}


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    web_tools.FETCH_CACHE.clear()
    web_tools.SEARCH_CACHE.clear()


@pytest.fixture
async def pages() -> AsyncIterator[PageServer]:
    server = PageServer()
    await server.start()
    yield server
    await server.stop()


def ctx(tmp_path: Path, config: dict[str, Any] | None = None) -> ToolContext:
    return ToolContext(
        agent_id="main",
        session_key="agent:main:main",
        run_id="r1",
        workspace=tmp_path,
        config=OpenClawConfig.model_validate(ALLOW_LOCAL if config is None else config),
        requester=Requester.operator(),
    )


async def call(c: ToolContext, name: str, **args: Any) -> tuple[ToolOutput, dict[str, Any]]:
    out = await invoke(ToolCall(id="c1", name=name, arguments=args), REGISTRY, c)
    return out, json.loads(out.text)


def merge(*parts: dict[str, Any]) -> dict[str, Any]:
    fetch: dict[str, Any] = {}
    for p in parts:
        fetch.update(p)
    return {"tools": {"web": {"fetch": fetch}}}


# --- fetching ----------------------------------------------------------------------------------


async def test_article_text_is_extracted_and_wrapped(pages: PageServer, tmp_path: Path) -> None:
    out, body = await call(ctx(tmp_path), "web_fetch", url=f"{pages.url}/article")
    assert not out.is_error, body
    assert body["status"] == 200 and body["extractor"] == "readability"
    assert body["title"] == "Moth migration | Field Notes"
    text = body["text"]
    assert "Bogong moths travel more than a thousand kilometres" in text
    assert "# How moths find their way" in text, "markdown heading"
    assert "SCRIPT-NOISE" not in text and "color:red" not in text
    assert "Subscribe to our newsletter" not in text, "boilerplate left out"
    assert text.startswith("[External content from web_fetch")
    assert "<<<EXTERNAL_UNTRUSTED_CONTENT id=" in text and "<<<END_EXTERNAL_UNTRUSTED" in text
    assert body["externalContent"]["untrusted"] is True
    assert body["finalUrl"] == f"{pages.url}/article" and not body["truncated"]
    _, plain = await call(
        ctx(tmp_path), "web_fetch", url=f"{pages.url}/article", extractMode="text"
    )
    assert "#" not in plain["text"].split("---")[-1] and "Bogong moths" in plain["text"]


async def test_text_and_json_pass_through(pages: PageServer, tmp_path: Path) -> None:
    _, body = await call(ctx(tmp_path), "web_fetch", url=f"{pages.url}/plain")
    assert body["extractor"] == "raw" and "just text\nline two" in body["text"]
    _, data = await call(ctx(tmp_path), "web_fetch", url=f"{pages.url}/data.json")
    assert data["extractor"] == "json" and '"a": "é"' in data["text"]


async def test_max_chars_and_huge_pages_are_cut(pages: PageServer, tmp_path: Path) -> None:
    _, body = await call(ctx(tmp_path), "web_fetch", url=f"{pages.url}/huge", maxChars=500)
    assert body["truncated"] is True and body["length"] == 500
    assert "maxResponseBytes" in body["warning"]
    assert body["rawLength"] == 750_000, "download stopped at the byte cap"
    cfg = merge(ALLOW_LOCAL["tools"]["web"]["fetch"], {"maxChars": 50_000, "maxCharsCap": 1000})
    _, capped = await call(ctx(tmp_path, cfg), "web_fetch", url=f"{pages.url}/plain", maxChars=9000)
    assert capped["length"] <= 1000


async def test_binary_and_http_errors_are_clear(pages: PageServer, tmp_path: Path) -> None:
    out, body = await call(ctx(tmp_path), "web_fetch", url=f"{pages.url}/image.png")
    assert out.is_error and "image/png (binary)" in body["error"]
    out, body = await call(ctx(tmp_path), "web_fetch", url=f"{pages.url}/missing")
    assert out.is_error and "HTTP 404" in body["error"] and "no such page" in body["error"]
    assert "EXTERNAL_UNTRUSTED_CONTENT" in body["error"], "error pages are untrusted too"


async def test_invalid_encodings(pages: PageServer, tmp_path: Path) -> None:
    _, body = await call(ctx(tmp_path), "web_fetch", url=f"{pages.url}/bad-utf8")
    assert "café ok" in body["text"] and "\ufffd" in body["text"]
    assert "invalid utf-8 bytes were replaced" in body["warning"]
    _, body = await call(ctx(tmp_path), "web_fetch", url=f"{pages.url}/bad-charset")
    assert "naïve café" in body["text"] and "unknown charset" in body["warning"]
    _, body = await call(ctx(tmp_path), "web_fetch", url=f"{pages.url}/latin1")
    assert "Grüße aus Köln" in body["text"] and "warning" not in body


async def test_redirects_loops_and_limits(pages: PageServer, tmp_path: Path) -> None:
    _, body = await call(ctx(tmp_path), "web_fetch", url=f"{pages.url}/hop/3")
    assert body["finalUrl"] == f"{pages.url}/hop/0" and "arrived" in body["text"]
    out, body = await call(ctx(tmp_path), "web_fetch", url=f"{pages.url}/hop/4")
    assert out.is_error and "too many redirects (more than 3" in body["error"]
    out, body = await call(ctx(tmp_path), "web_fetch", url=f"{pages.url}/loop/a")
    assert out.is_error and "redirect loop" in body["error"]


async def test_cache_with_ttl(pages: PageServer, tmp_path: Path) -> None:
    await call(ctx(tmp_path), "web_fetch", url=f"{pages.url}/counter")
    _, second = await call(ctx(tmp_path), "web_fetch", url=f"{pages.url}/counter")
    assert "hit 1" in second["text"] and second["cached"] is True and pages.hits == 1
    off = merge(ALLOW_LOCAL["tools"]["web"]["fetch"], {"cacheTtlMinutes": 0})
    _, third = await call(ctx(tmp_path, off), "web_fetch", url=f"{pages.url}/counter")
    assert "hit 2" in third["text"] and "cached" not in third


async def test_timeout(pages: PageServer, tmp_path: Path) -> None:
    cfg = merge(ALLOW_LOCAL["tools"]["web"]["fetch"], {"timeoutSeconds": 0.3})
    out, body = await call(ctx(tmp_path, cfg), "web_fetch", url=f"{pages.url}/slow")
    assert out.is_error and "timed out after 0.3s" in body["error"]


async def test_marker_spoofing_is_defused(pages: PageServer, tmp_path: Path) -> None:
    _, body = await call(ctx(tmp_path), "web_fetch", url=f"{pages.url}/inject")
    assert body["text"].count("<<<END_EXTERNAL_UNTRUSTED_CONTENT") == 1
    assert "[marker removed]" in body["text"]


# --- SSRF --------------------------------------------------------------------------------------

REFUSED = [
    "http://127.0.0.1:{port}/plain",
    "http://localhost:{port}/plain",
    "http://LOCALHOST.:{port}/plain",
    "http://sub.localhost:{port}/plain",
    "http://2130706433:{port}/plain",  # 127.0.0.1 as one number, resolved by the system
    "http://0.0.0.0:{port}/plain",
    "http://169.254.169.254/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://10.1.2.3/",
    "http://172.16.0.1/",
    "http://172.31.255.255/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://[::1]:{port}/plain",
    "http://[fdaa::3]/",
    "http://[fc00::1]/",
    "http://[fe80::1]/",
    "http://[::ffff:127.0.0.1]:{port}/plain",
    "http://[::ffff:169.254.169.254]/",
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 form of 169.254.169.254
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "http://224.0.0.1/",
    "file:///etc/passwd",
    "ftp://example.com/x",
    "http://user:pw@example.com/",
]


@pytest.mark.parametrize("template", REFUSED)
async def test_ssrf_refused_without_allowlist(
    template: str, pages: PageServer, tmp_path: Path
) -> None:
    url = template.format(port=pages.port)
    out, body = await call(ctx(tmp_path, {}), "web_fetch", url=url)
    assert out.is_error, url
    assert "refused" in body["error"] or "only http and https" in body["error"], body
    assert pages.requests == [] and pages.hits == 0


async def test_redirect_to_metadata_and_to_localhost_refused(
    pages: PageServer, tmp_path: Path
) -> None:
    out, body = await call(ctx(tmp_path), "web_fetch", url=f"{pages.url}/to-metadata")
    assert out.is_error and "redirected to http://169.254.169.254/latest/" in body["error"]
    assert "metadata" in body["error"]
    out, body = await call(ctx(tmp_path), "web_fetch", url=f"{pages.url}/to-localhost")
    assert out.is_error and "localhost" in body["error"] and "refused" in body["error"]
    out, body = await call(ctx(tmp_path), "web_fetch", url=f"{pages.url}/to-file")
    assert out.is_error and "only http and https" in body["error"]


async def test_private_network_opt_in_still_refuses_metadata(
    pages: PageServer, tmp_path: Path
) -> None:
    cfg = merge({"ssrfPolicy": {"dangerouslyAllowPrivateNetwork": True}})
    _, body = await call(ctx(tmp_path, cfg), "web_fetch", url=f"{pages.url}/plain")
    assert "just text" in body["text"]
    out, body = await call(ctx(tmp_path, cfg), "web_fetch", url="http://169.254.169.254/")
    assert out.is_error and "metadata" in body["error"]
    blocked = merge(
        {"ssrfPolicy": {"dangerouslyAllowPrivateNetwork": True, "blockedHostnames": ["127.0.0.1"]}}
    )
    out, body = await call(ctx(tmp_path, blocked), "web_fetch", url=f"{pages.url}/plain")
    assert out.is_error and "blockedHostnames" in body["error"]


def resolver(table: dict[str, list[str]], calls: list[str] | None = None) -> Any:
    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in table:
            raise OSError(-2, "Name or service not known")
        return table[host]

    return resolve


async def test_names_resolving_to_private_addresses_are_refused() -> None:
    guard = SsrfGuard.from_lists(
        resolver=resolver(
            {
                "evil.test": ["127.0.0.1"],
                "mixed.test": ["93.184.216.34", "10.0.0.7"],
                "meta.test": ["169.254.169.254"],
                "fly.test": ["fdaa:0:1:2::3"],
                "good.test": ["93.184.216.34"],
            }
        )
    )
    for host in ("evil.test", "mixed.test", "meta.test", "fly.test"):
        with pytest.raises(BlockedUrl):
            await guard.pin(httpx.URL(f"https://{host}/"))
    assert await guard.pin(httpx.URL("https://good.test/")) == "93.184.216.34"
    with pytest.raises(BlockedUrl, match=r"cannot resolve nowhere\.test"):
        await guard.pin(httpx.URL("https://nowhere.test/"))


async def test_connection_goes_to_the_checked_address_with_the_original_host(
    pages: PageServer,
) -> None:
    """The transport connects to the IP it checked (no second lookup to rebind) and sends
    the page's own Host header."""
    calls: list[str] = []
    guard = SsrfGuard.from_lists(
        ["pinned.test"], resolver=resolver({"pinned.test": ["127.0.0.1"]}, calls)
    )
    got = await fetch_url(
        f"http://pinned.test:{pages.port}/echo-host",
        guard,
        max_bytes=100_000,
        timeout_s=5,
        max_redirects=3,
    )
    assert got.body == f"host=pinned.test:{pages.port}".encode()
    assert calls == ["pinned.test"], "resolved exactly once, at connect time"
    unlisted = SsrfGuard.from_lists(resolver=resolver({"pinned.test": ["127.0.0.1"]}))
    with pytest.raises(FetchError, match="refused"):
        await fetch_url(
            f"http://pinned.test:{pages.port}/echo-host",
            unlisted,
            max_bytes=100_000,
            timeout_s=5,
            max_redirects=3,
        )
    assert pages.requests == []


# --- search ------------------------------------------------------------------------------------


@pytest.fixture
async def brave(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeBrave]:
    server = FakeBrave("brave-test-key")
    await server.start()
    monkeypatch.setenv("BRAVE_API_KEY", "brave-test-key")
    monkeypatch.setenv("BRAVE_SEARCH_BASE_URL", server.url)
    yield server
    await server.stop()


async def test_search_returns_title_url_snippet(brave: FakeBrave, tmp_path: Path) -> None:
    out, body = await call(ctx(tmp_path, {}), "web_search", query="moth migration", count=3)
    assert not out.is_error, body
    assert body["provider"] == "brave" and body["count"] == 3
    first = body["results"][0]
    assert first["url"] == "https://example.org/1"
    assert "Result 1 for moth migration" in first["title"]
    assert "Snippet 1 about" in first["snippet"] and "EXTERNAL_UNTRUSTED" in first["snippet"]
    assert first["siteName"] == "Example" and first["published"] == "2 days ago"
    assert brave.requests[0]["query"]["count"] == "3"
    assert brave.requests[0]["token"] == "brave-test-key"
    _, default = await call(ctx(tmp_path, {}), "web_search", query="five")
    assert default["count"] == 5, "tools.web.search.maxResults default"
    await call(
        ctx(tmp_path, {}),
        "web_search",
        query="filters",
        country="DE",
        freshness="week",
        search_lang="de",
    )
    sent = brave.requests[-1]["query"]
    assert (sent["country"], sent["freshness"], sent["search_lang"]) == ("DE", "pw", "de")
    _, again = await call(
        ctx(tmp_path, {}),
        "web_search",
        query="filters",
        country="DE",
        freshness="week",
        search_lang="de",
    )
    assert again["cached"] is True


@pytest.mark.parametrize(
    ("status", "expected"),
    [(401, "rejected the API key (HTTP 401)"), (429, "rate limit"), (503, "HTTP 503")],
)
async def test_search_errors_are_clear(
    brave: FakeBrave, tmp_path: Path, status: int, expected: str
) -> None:
    brave.status = status
    out, body = await call(ctx(tmp_path, {}), "web_search", query="x")
    assert out.is_error and expected in body["error"]
    assert "brave-test-key" not in out.text


async def test_search_needs_a_key_and_says_so_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("BRAVE_API_KEY", raising=False)
    config = OpenClawConfig.model_validate({})
    with caplog.at_level(logging.INFO, logger="agent/tools"):
        for _ in range(3):
            offered = allowed_tools(config, "main", Requester.operator(), REGISTRY)
            assert "web_search" not in offered and "web_fetch" in offered
    said = [r.getMessage() for r in caplog.records if "web_search" in r.getMessage()]
    assert said == [
        "tool web_search is not offered: no search provider key: set BRAVE_API_KEY (Brave Search)"
    ]
    out, body = await call(ctx(tmp_path, {}), "web_search", query="x")
    assert out.is_error and "BRAVE_API_KEY" in body["error"]
    monkeypatch.setenv("BRAVE_API_KEY", "k")
    assert "web_search" in allowed_tools(config, "main", Requester.operator(), REGISTRY)
    other = OpenClawConfig.model_validate({"tools": {"web": {"search": {"provider": "tavily"}}}})
    assert REGISTRY["web_search"].unavailable_reason(other) is not None
    off = OpenClawConfig.model_validate({"tools": {"web": {"fetch": {"enabled": False}}}})
    assert "web_fetch" not in allowed_tools(off, "main", Requester.operator(), REGISTRY)
