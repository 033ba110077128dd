"""Security review, as tests: secrets never leave the process, auth throttling, Origin, frame
and buffer limits, trusted proxies, and no path traversal in static serving or workspaces."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import websockets
from starlette.testclient import TestClient

import gateway.rpc  # noqa: F401  (registers the methods)
from gateway.protocol import scopes as sc
from gateway.protocol.frames import MAX_BUFFERED_BYTES, PRE_CONNECT_MAX_BYTES
from gateway.rpc.registry import registry
from tests.fakes.llm import FakeLLM
from tests.hardening.procs import start_gateway, stop
from tests.harness import (
    TOKEN,
    Client,
    LiveGateway,
    chat,
    connect_params,
    connected,
    free_port,
    gateway_env,
    live_gateway,
)

GW_TOKEN = "gw-secret-token-5f2a9c0d7e1b4a3c"
PROVIDER_KEY = "sk-leaky-provider-key-9d8c7b6a5f4e"
TELEGRAM_TOKEN = "987654321:leaky-telegram-token-AbCdEf012345"
DISCORD_TOKEN = "leaky.discord-token.QwErTy0123456789"
SECRETS = (GW_TOKEN, PROVIDER_KEY, TELEGRAM_TOKEN, DISCORD_TOKEN)


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


# --- secrets ------------------------------------------------------------------------------


async def test_no_secret_in_logs_rpc_results_or_errors(tmp_path: Path) -> None:
    fake = FakeLLM()
    await fake.start()
    fake.script += [{"status": 401}] * 5
    closed = free_port()  # nothing listens: channels fail and log their errors
    config = {
        "gateway": {"mode": "local"},
        "models": {"providers": {"openai": {"baseUrl": fake.url + "/v1", "apiKey": PROVIDER_KEY}}},
        "agents": {"defaults": {"model": {"primary": "openai/gpt-sec"}}},
        "channels": {
            "telegram": {"botToken": TELEGRAM_TOKEN, "apiRoot": f"http://127.0.0.1:{closed}"},
            "discord": {"token": DISCORD_TOKEN},
        },
    }
    (tmp_path / "openclaw.json").write_text(json.dumps(config))
    port = free_port()
    env = gateway_env(
        tmp_path,
        OPENCLAW_GATEWAY_TOKEN=GW_TOKEN,
        DISCORD_API_URL=f"http://127.0.0.1:{closed}/api/v10",
        CLAWGATE_FAILOVER_TIME_SCALE="0.001",
    )
    proc, out = start_gateway(["--port", str(port), "--verbose"], env)
    live = LiveGateway(None, port)  # type: ignore[arg-type]  # only .ws is used
    seen: list[str] = []
    try:
        await asyncio.to_thread(out.wait_for, r"\[gateway\] ready", 1, 20)
        # Auth failures: wrong, missing, and the real token with a suffix.
        for token in ("wrong-token", None, GW_TOKEN + "x", GW_TOKEN[:-1]):
            async with websockets.connect(live.ws) as ws:
                client = Client(ws)
                await client.recv()
                res = await client.request("connect", connect_params(token=token))
                assert res["ok"] is False
                seen.append(json.dumps(res))
        async with connected(live, token=GW_TOKEN) as client:
            events = await chat(client, "hello", timeout=30)  # provider answers 401
            assert events[-1]["state"] == "error"
            seen.append(json.dumps(events))
            read_methods = [n for n in registry.names() if registry.get(n).scope == sc.READ]  # type: ignore[union-attr]
            for name in read_methods:
                res = await client.request(name, {}, timeout=15)
                seen.append(json.dumps(res))
            seen.append(json.dumps(await client.request("logs.tail", {"limit": 2000})))
            # Config errors that would echo a value: the value is a secret in the wrong place.
            snap = await client.call("config.get", {})
            for bad in (
                {"gateway": {"mode": "local", "port": PROVIDER_KEY}},
                {"gateway": {"mode": "local", "auth": {"mode": GW_TOKEN}}},
                {"channels": {"telegram": {"botToken": 5, "dmPolicy": TELEGRAM_TOKEN}}},
            ):
                res = await client.request(
                    "config.set", {"raw": json.dumps(bad), "baseHash": snap["hash"]}
                )
                assert res["ok"] is False
                seen.append(json.dumps(res))
        await asyncio.to_thread(out.wait_for, r"telegram|discord", 1, 10)
    finally:
        text = await asyncio.to_thread(stop, proc, out)
        await fake.stop()
    assert "[gateway] ready" in text and "DEBUG" not in text[:0]
    assert not leaks(text), [line for line in text.splitlines() if leaks(line)][:5]
    for blob in seen:
        assert not leaks(blob), blob[:500]
    # The provider's 401 and the channel failures were logged (with their secrets masked).
    assert "401" in text or "auth" in text.lower()


# --- auth throttling, Origin, trusted proxies -----------------------------------------------


async def _connect_raw(
    live: LiveGateway, token: str | None, headers: dict[str, str] | None = None
) -> tuple[dict[str, Any], int | None]:
    async with websockets.connect(live.ws, additional_headers=headers or {}) as ws:
        client = Client(ws)
        await client.recv()
        res = await client.request("connect", connect_params(token=token))
        code = None
        if not res["ok"]:
            with pytest.raises(websockets.ConnectionClosed):
                await client.recv(2)
            code = ws.close_code
        return res, code


async def test_failed_auth_is_throttled_per_client_address(tmp_path: Path) -> None:
    config = {
        "gateway": {
            "trustedProxies": ["127.0.0.0/8"],
            "auth": {"rateLimit": {"maxAttempts": 3, "exemptLoopback": False}},
        }
    }
    async with live_gateway(tmp_path, config) as live:
        live.gateway.limiter.hold_s = 0.3
        attacker = {"X-Forwarded-For": "203.0.113.7"}
        for _ in range(3):
            res, code = await _connect_raw(live, "wrong", attacker)
            assert res["error"]["details"]["code"] == "AUTH_TOKEN_MISMATCH" and code == 1008
        # Throttled now: checked only after the hold; a wrong secret is refused with a hint...
        started = time.monotonic()
        res, code = await _connect_raw(live, "wrong-again", attacker)
        assert time.monotonic() - started >= 0.3
        assert res["error"]["details"]["code"] == "AUTH_RATE_LIMITED", res
        assert res["error"]["retryable"] is True and res["error"]["retryAfterMs"] > 200_000
        # ...but the right secret from the same address still gets in (after the hold).
        started = time.monotonic()
        res, _ = await _connect_raw(live, TOKEN, attacker)
        assert res["ok"] is True and time.monotonic() - started >= 0.3
        # Another client behind the same proxy is not affected.
        res, _ = await _connect_raw(live, "wrong", {"X-Forwarded-For": "203.0.113.8"})
        assert res["error"]["details"]["code"] == "AUTH_TOKEN_MISMATCH"
        # The proxy's own hops (any address in the trusted range) are skipped.
        for _ in range(3):
            await _connect_raw(live, "wrong", {"X-Forwarded-For": "198.51.100.9, 127.0.0.9"})
        res, _ = await _connect_raw(live, "x", {"X-Forwarded-For": "198.51.100.9, 127.0.0.9"})
        assert res["error"]["details"]["code"] == "AUTH_RATE_LIMITED"
        assert "198.51.100.9" in live.gateway.limiter._buckets


async def test_fly_client_ip_names_the_client_on_a_fly_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Fly (FLY_APP_NAME set) every connection comes from Fly's proxy: Fly-Client-IP names
    the client, with no trustedProxies entry, so an attacker's failures stay the attacker's."""
    monkeypatch.setenv("FLY_APP_NAME", "clawgate-test")
    config = {"gateway": {"auth": {"rateLimit": {"maxAttempts": 2, "exemptLoopback": False}}}}
    async with live_gateway(tmp_path, config) as live:
        live.gateway.limiter.hold_s = 0.2
        attacker = {"Fly-Client-IP": "203.0.113.50", "X-Forwarded-For": "192.0.2.1"}
        for _ in range(4):
            await _connect_raw(live, "wrong", attacker)
        assert set(live.gateway.limiter._buckets) == {"203.0.113.50"}
        res, _ = await _connect_raw(live, TOKEN, {"Fly-Client-IP": "198.51.100.20"})
        assert res["ok"] is True
        res, _ = await _connect_raw(live, TOKEN, attacker)
        assert res["ok"] is True  # throttled, and still never locked out


async def test_forwarded_for_is_ignored_from_an_untrusted_peer(tmp_path: Path) -> None:
    config = {"gateway": {"auth": {"rateLimit": {"maxAttempts": 2, "exemptLoopback": False}}}}
    async with live_gateway(tmp_path, config) as live:
        live.gateway.limiter.hold_s = 0.1
        # A spoofed header cannot pin failures on someone else (or dodge the limit).
        for victim in ("198.51.100.1", "198.51.100.2"):
            await _connect_raw(live, "wrong", {"X-Forwarded-For": victim})
        assert set(live.gateway.limiter._buckets) == {"127.0.0.1"}
        res, _ = await _connect_raw(live, "wrong", {"X-Forwarded-For": "198.51.100.3"})
        assert res["error"]["details"]["code"] == "AUTH_RATE_LIMITED"
        # Nor can a Fly-Client-IP header when this is not a Fly Machine.
        await _connect_raw(live, "wrong", {"Fly-Client-IP": "198.51.100.4"})
        assert set(live.gateway.limiter._buckets) == {"127.0.0.1"}


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("http://evil.example", False),
        ("null", False),
        ("http://127.0.0.1:1", False),
        ("https://app.fly.dev", True),
        ("https://app.fly.dev/", True),
        ("http://localhost:{port}", True),
        ("http://127.0.0.1:{port}", True),
        ("https://app.fly.dev.evil.example", False),
    ],
)
async def test_browser_origin_is_enforced(tmp_path: Path, origin: str, allowed: bool) -> None:
    config = {"gateway": {"controlUi": {"allowedOrigins": ["https://app.fly.dev"]}}}
    async with live_gateway(tmp_path, config) as live:
        headers = {"Origin": origin.format(port=live.port)}
        res, code = await _connect_raw(live, TOKEN, headers)
        assert res["ok"] is allowed, res
        if not allowed:
            assert res["error"]["details"]["code"] == "ORIGIN_NOT_ALLOWED" and code == 1008


# --- frame and buffer limits ----------------------------------------------------------------


async def test_oversized_frames_are_refused_before_parsing(tmp_path: Path) -> None:
    async with live_gateway(tmp_path) as live:
        # Before connect: 64 KiB; invalid JSON that big is "too big" (1009), not "bad JSON".
        async with websockets.connect(live.ws, max_size=None) as ws:
            await ws.recv()
            await ws.send("{" * (PRE_CONNECT_MAX_BYTES + 1))
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            assert ws.close_code == 1009
        # After connect: the 25 MiB protocol limit, enforced by the WebSocket layer.
        async with connected(live) as client:
            with pytest.raises(websockets.ConnectionClosed):
                await client.ws.send("x" * (26 * 1024 * 1024))
                await client.recv(10)
            assert client.ws.close_code == 1009
        async with connected(live) as client:
            assert (await client.call("health"))["ok"] is True


async def test_slow_reader_cannot_grow_the_send_buffer(tmp_path: Path) -> None:
    async with live_gateway(tmp_path) as live:
        # A client that stops reading: small socket buffers and a 1-frame client queue.
        async with websockets.connect(live.ws, max_size=None, max_queue=1) as ws:
            client = Client(ws)
            await client.recv()
            hello = await client.request("connect", connect_params())
            assert hello["ok"]
            conn = next(iter(live.gateway.connections))
            schema = json.dumps({"type": "req", "id": "s", "method": "config.schema", "params": {}})
            size = len(json.dumps(await client.call("config.schema", {})))
            sent = 0
            while not conn._closing and sent < 4 * MAX_BUFFERED_BYTES // size:
                await ws.send(schema)
                sent += 1
                if sent % 64 == 0:
                    await asyncio.sleep(0)  # let the gateway answer
            assert conn._closing, f"still open after {sent} x {size} bytes"
            pending: list[object] = list(conn._queue._queue)  # type: ignore[attr-defined]
            queued = sum(len(i) for i in pending if isinstance(i, str))
            # What a stuck client pins in memory is bounded, and freed once it is cut off.
            assert queued <= 1024 * 1024, queued
            # Reading again, the client sees the policy close.
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 1008 and "slow consumer" in (ws.close_reason or "")
        async with connected(live) as other:
            assert (await other.call("health"))["ok"] is True


# --- path traversal -------------------------------------------------------------------------


def _raw_get(port: int, path: str) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize(
    "path",
    [
        "/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "/..%2f..%2f..%2fetc%2fpasswd",
        "/assets/../../../../etc/passwd",
        "//etc/passwd",
        "/%00/etc/passwd",
        "/....//....//etc/passwd",
    ],
)
async def test_static_serving_never_leaves_the_ui_dir(tmp_path: Path, path: str) -> None:
    async with live_gateway(tmp_path) as live:
        status, body = await asyncio.to_thread(_raw_get, live.port, path)
    assert b"root:" not in body
    assert status in (200, 400, 404), status  # 200 is the UI's index.html fallback
    if status == 200:
        assert b"<html" in body.lower()


async def test_static_symlink_out_of_the_ui_dir_is_not_followed(tmp_path: Path) -> None:
    from gateway.assembly import build_gateway
    from gateway.server import resolve_settings
    from gateway.settings import Flags
    from gateway.web import STATIC_DIR, create_app
    from tests.harness import loaded_from

    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text((STATIC_DIR / "index.html").read_text())
    secret = tmp_path / "outside.txt"
    secret.write_text("outside-secret")
    (static / "leak.txt").symlink_to(secret)
    (static / "dir").symlink_to(tmp_path)
    loaded = loaded_from(None, tmp_path)
    env = {"OPENCLAW_STATE_DIR": str(tmp_path), "OPENCLAW_GATEWAY_TOKEN": TOKEN}
    settings = resolve_settings(Flags(port=free_port(), bind="loopback"), loaded, env)
    app = create_app(build_gateway(settings, loaded), static_dir=static)
    client = TestClient(app)  # no lifespan: only the HTTP routes are exercised
    for path in ("/leak.txt", "/dir/outside.txt", "/dir/static/index.html"):
        res = client.get(path)
        assert "outside-secret" not in res.text
        assert res.status_code == 200 and "<html" in res.text.lower()  # the index fallback


def test_workspace_bootstrap_files_never_follow_links_outside(tmp_path: Path) -> None:
    from gateway.agents.workspace import BOOTSTRAP_FILES, load_bootstrap_files

    workspace = tmp_path / "ws"
    workspace.mkdir()
    outside = tmp_path / "outside.md"
    outside.write_text("outside-secret")
    for spec in BOOTSTRAP_FILES:
        (workspace / spec.name).symlink_to(outside)
    files = load_bootstrap_files(workspace)
    assert all("outside-secret" not in (f.content or "") for f in files)


@pytest.mark.parametrize("hostile", ["../../etc", "..", "a/../../b", "/abs/path", "x\x00y"])
def test_session_store_paths_stay_inside_the_state_dir(tmp_path: Path, hostile: str) -> None:
    from gateway.agents.store import AgentSessionStore

    state = tmp_path / "state"
    store = AgentSessionStore(state, hostile)
    assert store.dir.resolve().is_relative_to((state / "agents").resolve())
    path = store.transcript_path(hostile)
    assert path.resolve().parent == store.dir.resolve()
    assert os.sep not in path.name
