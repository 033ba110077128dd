"""The WebSocket protocol over real sockets to the real app: handshake, errors, isolation."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.harness import TOKEN, Client, connect_params, connected, free_port, live_gateway


async def open_raw(url: str, **kwargs: object) -> tuple[websockets.ClientConnection, Client]:
    ws = await websockets.connect(url, max_size=None, **kwargs)  # type: ignore[arg-type]
    client = Client(ws)
    challenge = await client.recv()
    assert challenge["type"] == "event" and challenge["event"] == "connect.challenge"
    assert isinstance(challenge["payload"]["nonce"], str) and challenge["payload"]["ts"] > 0
    return ws, client


async def closed_with(ws: websockets.ClientConnection) -> int | None:
    try:
        await asyncio.wait_for(ws.wait_closed(), 5)
    except TimeoutError:
        return None
    return ws.close_code


async def test_hello_ok_shape_and_health_event(tmp_path: Path) -> None:
    async with live_gateway(tmp_path) as live, connected(live, scopes=["operator.read"]) as client:
        hello = client.hello  # type: ignore[attr-defined]
        assert hello["type"] == "hello-ok" and hello["protocol"] == 4
        assert set(hello) >= {"server", "features", "snapshot", "auth", "policy"}
        assert {"health", "status"} <= set(hello["features"]["methods"])
        assert "tick" in hello["features"]["events"]
        assert hello["auth"] == {"role": "operator", "scopes": ["operator.read"]}
        assert hello["snapshot"]["stateVersion"]["presence"] >= 0
        assert hello["policy"]["maxPayload"] == 26_214_400
        assert hello["snapshot"]["health"]["ok"] is True
        first = await client.recv()
        assert first["event"] == "health" and first["seq"] == 1
        health = await client.call("health")
        assert health["ok"] and health["defaultAgentId"] == "main"
        status = await client.call("status", {})
        assert status["runtimeVersion"] and status["sessions"]["byAgent"][0]["agentId"] == "main"


async def test_wrong_and_missing_token(tmp_path: Path) -> None:
    async with live_gateway(tmp_path) as live:
        for token, code in (("nope", "AUTH_TOKEN_MISMATCH"), (None, "AUTH_TOKEN_MISSING")):
            ws, client = await open_raw(live.ws)
            res = await client.request("connect", connect_params(token=token))
            assert res["ok"] is False and res["error"]["code"] == "INVALID_REQUEST"
            assert res["error"]["details"]["code"] == code
            assert res["error"]["message"].startswith("unauthorized: gateway token")
            assert TOKEN not in json.dumps(res)
            assert await closed_with(ws) == 1008


async def test_first_request_must_be_connect(tmp_path: Path) -> None:
    async with live_gateway(tmp_path) as live:
        ws, client = await open_raw(live.ws)
        res = await client.request("health")
        assert res["error"]["message"] == "invalid handshake: first request must be connect"
        assert await closed_with(ws) == 1008


async def test_protocol_mismatch(tmp_path: Path) -> None:
    async with live_gateway(tmp_path) as live:
        ws, client = await open_raw(live.ws)
        res = await client.request("connect", connect_params(minProtocol=5, maxProtocol=6))
        details = res["error"]["details"]
        assert details == {
            "code": "PROTOCOL_MISMATCH",
            "clientMinProtocol": 5,
            "clientMaxProtocol": 6,
            "expectedProtocol": 4,
        }
        assert await closed_with(ws) == 1002


async def test_malformed_json_closes_only_that_connection(tmp_path: Path) -> None:
    async with live_gateway(tmp_path) as live, connected(live) as neighbour:
        ws, _ = await open_raw(live.ws)
        await ws.send("{not json")
        assert await closed_with(ws) in (1000, 1007)
        # The neighbour is unaffected, and a bad frame after connect keeps the connection.
        await neighbour.ws.send("also not json")
        await neighbour.ws.send(json.dumps({"type": "req", "id": 7}))
        assert (await neighbour.call("health"))["ok"]


async def test_oversized_pre_connect_frame_is_refused(tmp_path: Path) -> None:
    async with live_gateway(tmp_path) as live:
        ws, _ = await open_raw(live.ws)
        await ws.send(
            json.dumps(
                {"type": "req", "id": "1", "method": "connect", "params": {"pad": "x" * 70_000}}
            )
        )
        assert await closed_with(ws) == 1009


async def test_errors_after_connect_keep_the_connection(tmp_path: Path) -> None:
    async with live_gateway(tmp_path) as live, connected(live, scopes=["operator.read"]) as client:
        res = await client.request("config.nope")
        assert res["error"]["code"] == "FORBIDDEN"  # unknown methods need admin
        assert res["error"]["details"] == {
            "code": "MISSING_SCOPE",
            "missingScope": "operator.admin",
            "requiredScopes": ["operator.admin"],
        }
        res = await client.request("connect", connect_params())
        assert res["error"]["code"] == "INVALID_REQUEST"
        res = await client.request("health", [1, 2])
        assert res["error"]["message"].startswith("invalid health params")
        assert (await client.call("health"))["ok"]
    async with live_gateway(tmp_path / "b") as live, connected(live) as admin:
        res = await admin.request("no.such.method")
        assert res["error"] == {
            "code": "INVALID_REQUEST",
            "message": "unknown method: no.such.method",
        }


async def test_request_ids_are_echoed_exactly(tmp_path: Path) -> None:
    async with live_gateway(tmp_path) as live, connected(live) as client:
        await client.ws.send(json.dumps({"type": "req", "id": "42:ümlaut-ID", "method": "health"}))
        while True:
            msg = await client.recv()
            if msg["type"] == "res":
                break
        assert msg["id"] == "42:ümlaut-ID" and msg["ok"]


async def test_origin_allowlist(tmp_path: Path) -> None:
    config = {"gateway": {"controlUi": {"allowedOrigins": ["https://app.example"]}}}
    async with live_gateway(tmp_path, config) as live:
        ok_origins = ["https://app.example", f"http://127.0.0.1:{live.port}"]
        for origin in ok_origins:
            ws, client = await open_raw(live.ws, origin=origin)
            assert (await client.request("connect", connect_params()))["ok"]
            await ws.close()
        ws, client = await open_raw(live.ws, origin="https://evil.example")
        res = await client.request("connect", connect_params())
        assert res["error"]["details"]["code"] == "ORIGIN_NOT_ALLOWED"
        assert await closed_with(ws) == 1008


async def test_failed_auth_is_rate_limited_per_client_address(tmp_path: Path) -> None:
    # Behind a trusted proxy the client address comes from X-Forwarded-For (not loopback-exempt).
    config = {
        "gateway": {"trustedProxies": ["127.0.0.1"], "auth": {"rateLimit": {"maxAttempts": 3}}}
    }
    async with live_gateway(tmp_path, config) as live:
        live.gateway.limiter.hold_s = 0.2

        async def attempt(ip: str, token: str) -> dict[str, object]:
            ws, client = await open_raw(live.ws, additional_headers={"X-Forwarded-For": ip})
            res = await client.request("connect", connect_params(token=token))
            await ws.close()
            return res

        for _ in range(3):
            refused: Any = await attempt("203.0.113.9", "bad")
            assert refused["error"]["details"]["code"] == "AUTH_TOKEN_MISMATCH"
        limited: Any = await attempt("203.0.113.9", "bad")  # throttled: refused with a hint
        error = limited["error"]
        assert (
            error["code"] == "UNAVAILABLE"
            and error["details"]["code"] == "AUTH_RATE_LIMITED"
            and error["retryable"] is True
            and error["retryAfterMs"] > 0
        )
        # The right token is never locked out: it gets in after the hold.
        assert (await attempt("203.0.113.9", TOKEN))["ok"]
        assert (await attempt("198.51.100.7", TOKEN))["ok"]  # other addresses are unaffected


async def test_handler_crash_is_contained(tmp_path: Path) -> None:
    from gateway.rpc.registry import EmptyParams, Registry

    async with live_gateway(tmp_path) as live:
        registry = Registry()
        for name in live.gateway.registry.names():
            spec = live.gateway.registry.get(name)
            assert spec is not None
            registry.method(name, scope=spec.scope, params=spec.params)(spec.handler)

        @registry.method("boom", scope="operator.read", params=EmptyParams)
        async def boom(ctx: object, params: EmptyParams) -> None:
            raise RuntimeError("secret internals")

        live.gateway.registry = registry
        async with connected(live) as client:
            res = await client.request("boom")
            assert res["error"]["code"] == "UNAVAILABLE" and "secret internals" not in json.dumps(
                res
            )
            assert (await client.call("health"))["ok"]


async def test_presence_and_shutdown_events(tmp_path: Path) -> None:
    ui_client = {"id": "openclaw-control-ui", "version": "1", "platform": "web", "mode": "webchat"}
    async with live_gateway(tmp_path) as live, connected(live) as watcher:
        async with connected(live, client=ui_client) as ui:
            modes = [e["mode"] for e in ui.hello["snapshot"]["presence"]]  # type: ignore[attr-defined]
            assert modes == ["gateway", "webchat"]  # the plain test client is not listed
        async with connected(live):
            pass  # a CLI-like client causes no presence traffic
        while not [e for e in watcher.events if e.get("event") == "presence"]:
            watcher.events.append(await watcher.recv())
        presence = [e for e in watcher.events if e.get("event") == "presence"]
        assert len(presence) == 1  # connect + disconnect of the UI coalesced into one update
        seqs = [e["seq"] for e in watcher.events if "seq" in e]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        await live.gateway.drain("test shutdown")
        frames = []
        with pytest.raises(ConnectionClosed):
            while True:
                frames.append(await watcher.recv())
        assert any(f.get("event") == "shutdown" for f in frames)
        assert watcher.ws.close_code == 1012


async def test_tick_events_follow_the_advertised_interval(tmp_path: Path) -> None:
    async with live_gateway(tmp_path) as live:
        live.gateway.tick_interval_ms = 50
        live.gateway._tick_task.cancel()  # type: ignore[union-attr]
        live.gateway._tick_task = asyncio.create_task(live.gateway._ticker())
        async with connected(live) as client:
            assert client.hello["policy"]["tickIntervalMs"] == 50  # type: ignore[attr-defined]
            ticks: list[dict[str, Any]] = []
            while len(ticks) < 2:
                frame = await client.recv(2)
                if frame.get("event") == "tick":
                    ticks.append(frame)
            assert ticks[0]["payload"]["ts"] <= ticks[1]["payload"]["ts"]
            assert ticks[0]["seq"] < ticks[1]["seq"]


async def test_a_fly_app_accepts_its_own_https_origin(tmp_path: Path) -> None:
    from gateway.settings import Flags

    env = {"FLY_APP_NAME": "my-claw", "FLY_MACHINE_ID": "148e"}
    flags = Flags(port=free_port(), bind="loopback")
    async with live_gateway(tmp_path, None, flags=flags, env=env) as live:
        for origin, ok in (("https://my-claw.fly.dev", True), ("https://other.fly.dev", False)):
            async with websockets.connect(live.ws, origin=origin) as ws:  # type: ignore[arg-type]
                client = Client(ws)
                await client.recv()
                res = await client.request("connect", connect_params())
                assert res["ok"] is ok, (origin, res)
