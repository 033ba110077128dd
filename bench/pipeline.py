"""Gateway overhead per chat turn and per tool call against a zero-latency fake model server.

Plain turns, two legs per turn, timed on one monotonic clock (client and fake live in this
process, the gateway is a separate `python -m gateway` process):
  in   chat.send frame sent            -> model request arrives at the fake
  out  fake finished streaming answer  -> `final` chat event arrives at the client
Turns rotate over SESSIONS sessions, so history grows as it does in real use.

Tool round trip (a gateway with the test tools, `python -m tests.agents.gateway_main`): the
fake answers each turn with one call to `test_runtime` (an echo that does no work), then
with text. Per call:
  tool  fake finished streaming the tool call -> the next model request (with the result)
        arrives at the fake: parse, transcript write of the call, validate, run, events,
        transcript write of the result, next request.

PREFILL idle sessions are added to the agent's index before the plain turns, to show that a
turn's cost does not grow with the number of sessions an agent has (`bench/sessions.py` makes
that comparison with the gateways' turns interleaved, which the machine's load cannot skew).

    .venv/bin/python bench/pipeline.py [turns, default 500] [sessions, default 50] \
        [tool turns, default 300] [prefill, default 0]
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _proc import (
    ROOT,
    connect_params,
    cpu_s,
    open_client,
    pct,
    prefill_sessions,
    rss_mb,
    start,
    stop,
    wait_healthy,
)

sys.path.insert(0, str(ROOT))
from tests.fakes.llm import FakeLLM, tool_results

WARMUP = 20


def line(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"{name:<40} p50 {statistics.median(ms):6.2f} ms   p99 {pct(ms, 0.99):6.2f} ms"
        f"   max {max(ms):6.2f} ms"
    )


def write_config(fake: FakeLLM) -> str:
    """The fake model as the default, and a workspace with memory notes: the agent features
    (tools, bootstrap files, memory) are on at their defaults, as in a real deployment."""
    state = tempfile.mkdtemp(prefix="clawgate-bench-pipeline-")
    notes = Path(state) / "workspace" / "memory"
    notes.mkdir(parents=True)
    (notes.parent / "MEMORY.md").write_text("# Memory\n\n- the backup runs nightly at 02:00\n")
    for n in range(20):
        (notes / f"2026-11-{n + 1:02d}.md").write_text(f"# Day {n + 1}\n\n- worked on item {n}\n")
    config = {
        "models": {"providers": {"openai": {"baseUrl": fake.url + "/v1", "apiKey": "sk-bench"}}},
        "agents": {"defaults": {"model": {"primary": "openai/gpt-bench"}}},
    }
    (Path(state) / "openclaw.json").write_text(json.dumps(config))
    return state


async def send_and_wait(ws: Any, run_id: str, session: str, text: str) -> float:
    frame = {
        "type": "req",
        "id": run_id,
        "method": "chat.send",
        "params": {"sessionKey": session, "message": text, "idempotencyKey": run_id},
    }
    await ws.send(json.dumps(frame))
    while True:
        msg = json.loads(await ws.recv())
        payload = msg.get("payload") or {}
        if msg.get("event") == "chat" and payload.get("runId") == run_id:
            if payload["state"] in ("final", "error", "aborted"):
                assert payload["state"] == "final", payload
                return time.monotonic()


async def plain_turns(turns: int, sessions: int, idle: int) -> None:
    fake = FakeLLM(default_text="pong")
    await fake.start()
    state = write_config(fake)
    prefill_sessions(state, idle)
    proc, port = start(state)
    try:
        await asyncio.to_thread(wait_healthy, port)
        url = f"ws://127.0.0.1:{port}/"
        async with await open_client(url, connect_params(["operator.write"])) as ws:
            inbound: list[float] = []
            outbound: list[float] = []
            cpu0 = 0.0
            for n in range(turns + WARMUP):  # the first turns warm up imports and caches
                if n == WARMUP:
                    cpu0 = cpu_s(proc.pid)
                before = len(fake.requests)
                sent = time.monotonic()
                received = await send_and_wait(
                    ws, f"bench-{n}", f"agent:main:bench-{n % sessions}", f"ping {n}"
                )
                if n >= WARMUP:
                    inbound.append(fake.requests[before]["at"] - sent)
                    outbound.append(received - fake.completed_at[-1])
        cpu_per_turn = (cpu_s(proc.pid) - cpu0) / turns
        rss = rss_mb(proc.pid)
    finally:
        stop(proc)
        await fake.stop()
    total = [a + b for a, b in zip(inbound, outbound, strict=True)]
    print(
        f"turns: {turns} over {sessions} sessions, {idle} idle sessions in the index"
        f" (zero-latency fake OpenAI, streaming); load average {os.getloadavg()[0]:.2f}"
    )
    print(line("request in -> provider request out", inbound))
    print(line("provider final -> final event out", outbound))
    print(line("overhead per turn (sum)", total))
    print(f"gateway CPU per turn (user + system, whole turn): {cpu_per_turn * 1000:.2f} ms")
    print(f"gateway RSS after the run: {rss:.1f} MB")


async def tool_turns(turns: int, sessions: int) -> None:
    fake = FakeLLM(default_text="pong")
    await fake.start()

    def respond(_api: str, body: dict[str, Any]) -> dict[str, Any]:
        if tool_results(body):
            return {"text": "pong"}
        return {"tool_calls": [{"name": "test_runtime", "arguments": {"text": "echo"}}]}

    fake.responder = respond
    proc, port = start(write_config(fake), module="tests.agents.gateway_main")
    try:
        await asyncio.to_thread(wait_healthy, port)
        url = f"ws://127.0.0.1:{port}/"
        async with await open_client(url, connect_params(["operator.write"])) as ws:
            per_call: list[float] = []
            for n in range(turns + WARMUP):
                before = len(fake.requests)
                await send_and_wait(ws, f"tool-{n}", f"agent:main:tools-{n % sessions}", "go")
                call_done = fake.completed_at[-2]  # the tool-call response ...
                next_request = fake.requests[before + 1]["at"]  # ... then the result arrives
                if n >= WARMUP:
                    per_call.append(next_request - call_done)
    finally:
        stop(proc)
        await fake.stop()
    print(f"tool round trips: {turns} over {sessions} sessions (one no-op tool call per turn)")
    print(line("tool call out -> result to the model", per_call))


async def main(turns: int, sessions: int, tools: int, idle: int) -> None:
    await plain_turns(turns, sessions, idle)
    if tools:
        await tool_turns(tools, sessions)


if __name__ == "__main__":
    turns = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    sessions = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    tools = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    idle = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    asyncio.run(main(turns, sessions, tools, idle))
