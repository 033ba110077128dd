"""SIGKILL in the middle of a tool, then restart: the transcript reads and the next turn works."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path

from gateway.agents.loop import MISSING_RESULT_TEXT
from tests.agents.gateway_main import client_for, spawn
from tests.fakes.llm import FakeLLM
from tests.harness import (
    chat,
    final_text,
    free_port,
    stop_process,
    wait_healthy,
)


def start(state: Path, port: int) -> subprocess.Popen[str]:
    return spawn(state, port)


async def test_sigkill_mid_tool_then_restart(tmp_path: Path) -> None:
    fake = FakeLLM(default_text="fresh start")
    await fake.start()
    state = tmp_path / "state"
    state.mkdir()
    config = {
        "models": {"providers": {"openai": {"baseUrl": fake.url + "/v1", "apiKey": "sk-test"}}},
        "agents": {"defaults": {"model": {"primary": "openai/gpt-test"}}},
    }
    (state / "openclaw.json").write_text(json.dumps(config))
    marker = state / "workspace" / "started.txt"
    sleep = {"seconds": 60, "marker": "started.txt"}
    fake.script.append(
        {"text": "On it.", "tool_calls": [{"id": "k1", "name": "test_sleep", "arguments": sleep}]}
    )
    port = free_port()
    proc = start(state, port)
    try:
        await asyncio.to_thread(wait_healthy, port, proc, 20)
        async with client_for(port) as client:
            await client.call(
                "chat.send", {"sessionKey": "main", "message": "nap", "idempotencyKey": "k"}
            )
            for _ in range(400):
                if marker.exists():
                    break
                await asyncio.sleep(0.025)
            assert marker.exists(), "the tool never started"
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        proc = start(state, port)
        await asyncio.to_thread(wait_healthy, port, proc, 20)
        async with client_for(port) as client:
            history = await client.call("chat.history", {"sessionKey": "main"})
            roles = [m["role"] for m in history["messages"]]
            assert roles == ["user", "assistant"]
            assert history["messages"][1]["content"][1]["type"] == "toolCall"
            assert final_text(await chat(client, "are you there?")) == "fresh start"
            history = await client.call("chat.history", {"sessionKey": "main"})
    finally:
        stop_process(proc)
        await fake.stop()
    roles = [m["role"] for m in history["messages"]]
    assert roles == ["user", "assistant", "toolResult", "user", "assistant"]
    repair = history["messages"][2]
    assert repair["toolCallId"] == "k1" and repair["isError"] is True
    assert repair["content"][0]["text"] == MISSING_RESULT_TEXT
    sent = fake.bodies[-1]["messages"]
    assert sent[-3]["tool_calls"][0]["id"] == "k1"
    assert sent[-2] == {"role": "tool", "tool_call_id": "k1", "content": MISSING_RESULT_TEXT}
    assert sent[-1] == {"role": "user", "content": "are you there?"}
