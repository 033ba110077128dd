"""A tool round trip seen by the official CLI (`gateway call chat.send` / `chat.history`) and
the wire schema: `agent` tool events and `chat` events of a turn that wrote and read a file."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.agents.gateway_main import client_for, spawn
from tests.agents.loop_tools import write_then_read
from tests.compat.reference import Reference, run_openclaw, validate
from tests.fakes.llm import FakeLLM
from tests.harness import TOKEN, chat, free_port, stop_process, wait_healthy

pytestmark = pytest.mark.compat


def cli_call(port: int, method: str, params: dict[str, Any]) -> Any:
    url = f"ws://127.0.0.1:{port}"
    args = ["gateway", "call", method, "--json", "--params", json.dumps(params)]
    result = run_openclaw([*args, "--url", url, "--token", TOKEN])
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout)


async def test_cli_and_schema_see_the_tool_round_trip(reference: Reference, tmp_path: Path) -> None:
    fake = FakeLLM(default_text="done")
    await fake.start()
    fake.responder = write_then_read
    state = tmp_path / "state"
    state.mkdir()
    config = {
        "models": {"providers": {"openai": {"baseUrl": fake.url + "/v1", "apiKey": "sk-test"}}},
        "agents": {"defaults": {"model": {"primary": "openai/gpt-test"}}},
    }
    (state / "openclaw.json").write_text(json.dumps(config))
    port = free_port()
    proc = spawn(state, port)
    try:
        await asyncio.to_thread(wait_healthy, port, proc, 20)
        params = {"sessionKey": "main", "message": "note it", "idempotencyKey": "cli-tools"}
        ack = await asyncio.to_thread(cli_call, port, "chat.send", params)
        assert ack == {"runId": "cli-tools", "status": "started"}
        deadline = time.monotonic() + 20
        while True:
            history = await asyncio.to_thread(
                cli_call, port, "chat.history", {"sessionKey": "main"}
            )
            if len(history["messages"]) >= 6 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        async with client_for(port, caps=["tool-events"], scopes=["operator.write"]) as client:
            chat_payloads = await chat(client, "again", key="ws-tools", timeout=20)
            frames = [e for e in client.events if e.get("event") == "agent"]
    finally:
        stop_process(proc)
        await fake.stop()

    messages = history["messages"]
    assert [m["role"] for m in messages] == [
        "user",
        "assistant",
        "toolResult",
        "assistant",
        "toolResult",
        "assistant",
    ]
    call = messages[1]["content"][-1]
    assert call["type"] == "toolCall" and call["name"] == "test_write"
    assert messages[1]["stopReason"] == "toolUse"
    assert messages[2]["toolCallId"] == call["id"] and messages[2]["isError"] is False
    assert messages[5]["content"][0]["text"] == "The note says: buy milk"

    assert [f["payload"]["data"]["phase"] for f in frames if f["payload"]["stream"] == "tool"] == [
        "start",
        "result",
        "start",
        "result",
    ]
    for frame in frames:
        validate("EventFrame", frame)
        payload = {k: v for k, v in frame["payload"].items() if k not in ("sessionKey", "agentId")}
        validate("AgentEvent", payload)
        assert frame["payload"]["sessionKey"] == "agent:main:main"
    for payload in chat_payloads:
        validate("ChatEvent", payload)
