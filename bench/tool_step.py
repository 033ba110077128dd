"""The gateway's own work per tool step, timed inside the process (no model I/O).

Runs the real gateway app in this process against a zero-latency fake OpenAI model that asks
for one no-op tool (`test_runtime`) per turn, and times `ToolLoop._run_calls`: the transcript
write of the call, argument validation, the tool, the `agent` events and the transcript write
of the result. The model round trips around it are bench/pipeline.py's concern.

    .venv/bin/python bench/tool_step.py [turns, default 300]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _proc import ROOT, pct

sys.path.insert(0, str(ROOT))
import tests.agents.loop_tools as lt
from gateway.agents import loop
from providers.types import Block, ToolCall
from tests.fakes.llm import FakeLLM, tool_results
from tests.harness import chat, connected, live_gateway

WARMUP = 20


async def main(turns: int) -> None:
    timings: list[float] = []
    original = loop.ToolLoop._run_calls

    async def timed(self: loop.ToolLoop, calls: Sequence[ToolCall]) -> list[Block]:
        start = time.perf_counter()
        try:
            return await original(self, calls)
        finally:
            timings.append(time.perf_counter() - start)

    loop.ToolLoop._run_calls = timed  # type: ignore[method-assign]
    fake = FakeLLM(default_text="pong")
    await fake.start()

    def respond(_api: str, body: dict[str, Any]) -> dict[str, Any]:
        if tool_results(body):
            return {"text": "pong"}
        return {"tool_calls": [{"name": "test_runtime", "arguments": {"text": "echo"}}]}

    fake.responder = respond
    lt.install()
    config = {
        "models": {"providers": {"openai": {"baseUrl": fake.url + "/v1", "apiKey": "sk-bench"}}},
        "agents": {"defaults": {"model": {"primary": "openai/gpt-bench"}}},
    }
    state = Path(tempfile.mkdtemp(prefix="clawgate-bench-toolstep-"))
    try:
        async with live_gateway(state, config) as live, connected(live) as client:
            for n in range(turns + WARMUP):
                await chat(client, "go", session=f"tools-{n % 20}")
                if n == WARMUP - 1:
                    timings.clear()
    finally:
        await fake.stop()
    ms = [t * 1000 for t in timings]
    print(f"tool steps: {len(ms)} (one no-op tool call each, 20 sessions)")
    print(
        f"gateway work per tool step                p50 {statistics.median(ms):6.3f} ms"
        f"   p99 {pct(ms, 0.99):6.3f} ms   max {max(ms):6.3f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
