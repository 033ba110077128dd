"""The official OpenClaw CLI (Node 24, openclaw@2026.9.6) and the wire schema against our gateway."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Any

import pytest
import websockets

from tests.compat.conftest import GatewayProcess
from tests.compat.reference import (
    HEALTH_RESULT,
    Reference,
    run_openclaw,
    schema,
    validate,
    validate_hello,
)

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
        validate_hello(hello)
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


# --- agents, sessions, models and chat through the reference CLI ---------------------------------


def call_json(gw: GatewayProcess, method: str, params: dict[str, Any] | None = None) -> Any:
    args = ["call", method, "--json"]
    if params is not None:
        args += ["--params", json.dumps(params)]
    result = openclaw_gateway(gw, *args)
    assert result.returncode == 0, describe(result) + "\n--- gateway log\n" + gw.log()
    return json.loads(result.stdout)


def test_cli_chat_send_reaches_the_model_and_sessions_list_shows_it(
    reference: Reference, chat_gateway: tuple[GatewayProcess, Any]
) -> None:
    gw, llm = chat_gateway
    ack = call_json(
        gw, "chat.send", {"sessionKey": "main", "message": "hi there", "idempotencyKey": "cli-1"}
    )
    assert ack == {"runId": "cli-1", "status": "started"}
    deadline = time.monotonic() + 10
    while True:
        history = call_json(gw, "chat.history", {"sessionKey": "main"})
        if len(history["messages"]) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [m["role"] for m in history["messages"]] == ["user", "assistant"], history
    assert history["messages"][1]["content"][0]["text"] == "hello from the fake model"
    assert llm.requests[0]["body"]["messages"][-1] == {"role": "user", "content": "hi there"}

    sessions = call_json(gw, "sessions.list")
    assert [s["key"] for s in sessions["sessions"]] == ["agent:main:main"]
    assert sessions["sessions"][0]["messageCount"] == 2


def test_cli_agents_list_matches_schema(
    reference: Reference, chat_gateway: tuple[GatewayProcess, Any]
) -> None:
    gw, _ = chat_gateway
    payload = call_json(gw, "agents.list")
    validate("AgentsListResult", payload)
    assert payload["defaultId"] == "main"


def test_cli_models_list_matches_schema(
    reference: Reference, chat_gateway: tuple[GatewayProcess, Any]
) -> None:
    gw, _ = chat_gateway
    payload = call_json(gw, "models.list")
    validate("ModelsListResult", payload)
    assert [m["provider"] + "/" + m["id"] for m in payload["models"]] == ["openai/gpt-test"]


def test_chat_events_match_schema(
    reference: Reference, chat_gateway: tuple[GatewayProcess, Any]
) -> None:
    gw, _ = chat_gateway

    async def run() -> list[dict[str, Any]]:
        async with websockets.connect(gw.url) as ws:
            await ws.recv()  # connect.challenge
            connect = {**CLI_CONNECT, "scopes": ["operator.write"], "auth": {"token": gw.token}}
            await ws.send(
                json.dumps({"type": "req", "id": "c", "method": "connect", "params": connect})
            )
            await ws.send(
                json.dumps(
                    {
                        "type": "req",
                        "id": "s",
                        "method": "chat.send",
                        "params": {"sessionKey": "main", "message": "hi", "idempotencyKey": "ev-1"},
                    }
                )
            )
            events: list[dict[str, Any]] = []
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if frame.get("type") == "event" and frame["event"] == "chat":
                    events.append(frame["payload"])
                    if frame["payload"]["state"] in ("final", "error", "aborted"):
                        return events

    events = asyncio.run(run())
    assert events[-1]["state"] == "final"
    for payload in events:
        validate("ChatEvent", payload)


READ_METHODS: list[tuple[str, dict[str, Any] | None, str | None]] = [
    # (method, params, result definition in protocol.schema.json or None)
    ("health", None, None),
    ("status", None, None),
    ("sessions.list", None, None),
    ("chat.history", {"sessionKey": "main"}, None),
    ("agents.list", None, "AgentsListResult"),
    ("models.list", None, "ModelsListResult"),
    ("channels.status", None, "ChannelsStatusResult"),
    ("channels.pairing.list", None, "ChannelsPairingListResult"),
    ("config.get", None, None),
    ("config.schema", None, "ConfigSchemaResponse"),
    ("logs.tail", {"limit": 5}, "LogsTailResult"),
    ("system.info", None, "SystemInfoResult"),
]


@pytest.mark.parametrize(
    ("method", "params", "definition"), READ_METHODS, ids=[m[0] for m in READ_METHODS]
)
def test_cli_calls_every_read_method(
    reference: Reference,
    chat_gateway: tuple[GatewayProcess, Any],
    method: str,
    params: dict[str, Any] | None,
    definition: str | None,
) -> None:
    gw, _ = chat_gateway
    payload = call_json(gw, method, params)
    assert isinstance(payload, dict), payload
    if definition is not None:
        validate(definition, payload)
    if method == "config.get":
        assert "sk-test" not in json.dumps(payload)  # the provider key is redacted
