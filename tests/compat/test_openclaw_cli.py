"""The official OpenClaw CLI (Node 24, openclaw@2026.9.6) and the wire schema against our gateway."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

import pytest
import websockets

from tests.compat.conftest import GatewayProcess
from tests.compat.reference import HEALTH_RESULT, Reference, run_openclaw, schema, validate

pytestmark = pytest.mark.compat


def openclaw_gateway(gw: GatewayProcess, *args: str, token: str | None = None) -> Any:
    """`openclaw gateway <args> --url <ours> --token <token>`."""
    return run_openclaw(["gateway", *args, "--url", gw.url, "--token", token or gw.token])


def describe(result: Any) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def test_gateway_health_prints_ok(reference: Reference, gateway_process: GatewayProcess) -> None:
    result = openclaw_gateway(gateway_process, "health")
    assert result.returncode == 0, describe(result)
    assert "OK (" in result.stdout, describe(result)
    assert re.search(r"^OK \(\d+ms\)$", result.stdout, re.M), describe(result)


def test_gateway_health_wrong_token_fails(
    reference: Reference, gateway_process: GatewayProcess
) -> None:
    result = openclaw_gateway(gateway_process, "health", token="not-" + gateway_process.token)
    assert result.returncode != 0, describe(result)
    assert "token mismatch" in (result.stdout + result.stderr).lower(), describe(result)


def test_gateway_call_status_json(reference: Reference, gateway_process: GatewayProcess) -> None:
    result = openclaw_gateway(gateway_process, "call", "status", "--json")
    assert result.returncode == 0, describe(result)
    payload = json.loads(result.stdout)
    assert isinstance(payload, dict), describe(result)


def test_gateway_call_health_json_matches_schema(
    reference: Reference, gateway_process: GatewayProcess
) -> None:
    result = openclaw_gateway(gateway_process, "call", "health", "--json")
    assert result.returncode == 0, describe(result)
    payload = json.loads(result.stdout)
    validate(HEALTH_RESULT, payload)


# --- frames straight from the `websockets` client ------------------------------------------------

CLI_CONNECT = {
    # What the reference CLI sends for `gateway health` (fixtures/reference-frames-health-status).
    "minProtocol": 4,
    "maxProtocol": 4,
    "client": {
        "id": "cli",
        "version": "2026.9.6",
        "platform": "linux",
        "deviceFamily": "Linux",
        "mode": "cli",
        "instanceId": str(uuid.uuid4()),
    },
    "caps": [],
    "role": "operator",
    "scopes": ["operator.read"],
}


class Conn:
    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.n = 0
        self.events: list[dict[str, Any]] = []

    async def recv(self, timeout: float = 5) -> dict[str, Any]:
        frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        assert isinstance(frame, dict)
        validate("GatewayFrame", frame)
        return frame

    async def request(self, method: str, params: Any = None) -> dict[str, Any]:
        self.n += 1
        req: dict[str, Any] = {"type": "req", "id": f"{self.n}:{uuid.uuid4()}", "method": method}
        if params is not None:
            req["params"] = params
        validate("RequestFrame", req)
        await self.ws.send(json.dumps(req))
        while True:
            frame = await self.recv()
            if frame["type"] == "res" and frame["id"] == req["id"]:
                validate("ResponseFrame", frame)
                return frame
            validate("EventFrame", frame)
            self.events.append(frame)


async def test_hello_ok_and_error_shape_match_schema(
    reference: Reference, gateway_process: GatewayProcess
) -> None:
    async with websockets.connect(gateway_process.url + "/", compression=None) as ws:
        conn = Conn(ws)
        challenge = await conn.recv()
        validate("EventFrame", challenge)
        assert challenge["event"] == "connect.challenge", challenge
        assert isinstance(challenge["payload"].get("nonce"), str) and challenge["payload"]["nonce"]

        res = await conn.request(
            "connect", {**CLI_CONNECT, "auth": {"token": gateway_process.token}}
        )
        assert res["ok"] is True, res
        hello = res["payload"]
        validate("HelloOk", hello)
        assert hello["auth"]["scopes"] == ["operator.read"], hello["auth"]

        # Unknown methods need operator.admin (spec §3), so a read-only connection is refused.
        res = await conn.request("compat.no-such-method", {})
        assert res["ok"] is False, res
        validate("ErrorShape", res["error"])
        assert res["error"]["code"] in {"FORBIDDEN", "INVALID_REQUEST"}, res["error"]

        # The connection survives the error.
        res = await conn.request("health")
        assert res["ok"] is True, res
        validate(HEALTH_RESULT, res["payload"])
        for event in conn.events:
            if event["event"] == "health":
                validate(HEALTH_RESULT, event["payload"])
            elif event["event"] == "tick":
                validate("TickEvent", event["payload"])


async def test_wrong_token_error_shape_and_close_1008(
    reference: Reference, gateway_process: GatewayProcess
) -> None:
    async with websockets.connect(gateway_process.url + "/", compression=None) as ws:
        conn = Conn(ws)
        assert (await conn.recv())["event"] == "connect.challenge"
        res = await conn.request("connect", {**CLI_CONNECT, "auth": {"token": "wrong"}})
        assert res["ok"] is False, res
        validate("ErrorShape", res["error"])
        assert res["error"]["code"] == "INVALID_REQUEST", res["error"]
        assert res["error"].get("details", {}).get("code") == "AUTH_TOKEN_MISMATCH", res["error"]
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1008, (ws.close_code, ws.close_reason)


async def test_advertised_methods_are_reference_methods(
    reference: Reference, gateway_process: GatewayProcess
) -> None:
    async with websockets.connect(gateway_process.url + "/", compression=None) as ws:
        conn = Conn(ws)
        await conn.recv()
        res = await conn.request(
            "connect", {**CLI_CONNECT, "auth": {"token": gateway_process.token}}
        )
        assert res["ok"] is True, res
    known = schema()["methods"]
    unknown = [m for m in res["payload"]["features"]["methods"] if m not in known]
    assert not unknown, f"features.methods lists methods the reference does not have: {unknown}"
