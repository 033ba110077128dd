"""Health endpoints and Control UI static serving over real HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.harness import live_gateway


async def test_health_endpoints(tmp_path: Path) -> None:
    async with live_gateway(tmp_path) as live, httpx.AsyncClient(base_url=live.http) as http:
        for path in ("/healthz", "/health"):
            r = await http.get(path, headers={"Authorization": "Bearer bogus"})
            assert r.status_code == 200 and r.json() == {"ok": True, "status": "live"}
            assert (await http.head(path)).status_code == 200
            assert (await http.post(path)).status_code == 405
        for path in ("/startupz", "/startup"):
            body = (await http.get(path)).json()
            assert body["ok"] is True and body["status"] == "started" and body["uptimeMs"] >= 0
        for path in ("/readyz", "/ready"):
            r = await http.get(path)
            assert r.status_code == 200 and r.json()["ready"] is True and r.json()["failing"] == []
        live.gateway.phase = "draining"
        r = await http.get("/startupz")
        assert r.status_code == 503 and r.json()["status"] == "draining"
        assert (await http.get("/readyz")).status_code == 503
        assert (await http.get("/healthz")).status_code == 200
        live.gateway.phase = "starting"
        r = await http.get("/startupz")
        assert r.status_code == 503 and r.json()["status"] == "starting"
        live.gateway.phase = "started"


async def test_ui_served_with_spa_fallback_and_csp(tmp_path: Path) -> None:
    async with live_gateway(tmp_path) as live, httpx.AsyncClient(base_url=live.http) as http:
        root = await http.get("/")
        assert root.status_code == 200 and "<html" in root.text
        csp = root.headers["content-security-policy"]
        assert (
            "script-src 'self'" in csp
            and "frame-ancestors 'none'" in csp
            and "unsafe-inline" not in csp
        )
        deep = await http.get("/sessions/agent:main:main")
        assert deep.status_code == 200 and deep.text == root.text
        asset = await http.get("/assets/app.css")
        assert asset.status_code == 200 and "text/css" in asset.headers["content-type"]
        for evil in (
            "/../../etc/passwd",
            "/%2e%2e/%2e%2e/etc/passwd",
            "/assets/..%2f..%2f..%2fserver.py",
        ):
            r = await http.get(evil)
            assert "root:" not in r.text and "uvicorn" not in r.text
            assert r.status_code in (200, 404)


async def test_ui_under_base_path(tmp_path: Path) -> None:
    config = {"gateway": {"controlUi": {"basePath": "/openclaw"}}}
    async with (
        live_gateway(tmp_path, config) as live,
        httpx.AsyncClient(base_url=live.http) as http,
    ):
        r = await http.get("/openclaw")
        assert r.status_code == 302 and r.headers["location"] == "/openclaw/"
        page = await http.get("/openclaw/chat")
        assert page.status_code == 200 and '<base href="/openclaw/">' in page.text
        assert (await http.get("/openclaw/assets/app.css")).status_code == 200
        other = await http.get("/elsewhere")
        assert other.status_code == 404 and other.headers["content-type"].startswith("text/plain")
        assert (await http.get("/healthz")).status_code == 200


async def test_ui_disabled(tmp_path: Path) -> None:
    config = {"gateway": {"controlUi": {"enabled": False}}}
    async with (
        live_gateway(tmp_path, config) as live,
        httpx.AsyncClient(base_url=live.http) as http,
    ):
        assert (await http.get("/")).status_code == 404
        assert (await http.get("/healthz")).status_code == 200
