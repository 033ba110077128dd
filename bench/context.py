"""Context management over a long conversation: does the cost per turn plateau?

One session, TURNS turns of TURN_BYTES each, against the real gateway process and a fake
Anthropic API with a WINDOW-token context window that reports input tokens ≈ request
bytes / 4 and reports cache reads when a marked prefix repeats byte for byte
(tests/fakes/context_llm.py). Prints input tokens per turn (by hundred), the number of
compactions, the largest request, the cache-hit ratio over the steady part, per-turn
latency, and the cost totals `usage.cost` reports.

    .venv/bin/python bench/context.py [turns, default 1000] [window tokens, default 32000]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _proc import ROOT, start, stop, wait_healthy
from soak import session

sys.path.insert(0, str(ROOT))
from tests.fakes.context_llm import ContextFakeLLM

TURN_BYTES = 2048


def text_of(turn: int) -> str:
    head = f"turn {turn}: " + ("FACT: the user's cat is called Zorro. " if turn == 1 else "")
    return (head + " ".join(f"word{turn}-{i}" for i in range(TURN_BYTES)))[:TURN_BYTES]


async def main(turns: int, window: int) -> None:
    llm = ContextFakeLLM(window=window)
    await llm.start()
    state = tempfile.mkdtemp(prefix="clawgate-context-")
    model = {
        "id": "claude-bench",
        "contextWindow": window,
        "cost": {"input": 3, "output": 15, "cacheRead": 0.3, "cacheWrite": 3.75},
    }
    config = {
        "models": {
            "providers": {
                "anthropic": {"baseUrl": llm.url, "apiKey": "sk-ant-bench", "models": [model]}
            }
        },
        "agents": {"defaults": {"model": {"primary": "anthropic/claude-bench"}}},
    }
    (Path(state) / "openclaw.json").write_text(json.dumps(config))
    proc, port = start(state)
    latencies: list[float] = []
    failures = 0
    try:
        await asyncio.to_thread(wait_healthy, port)
        async with session(port) as ws:
            for turn in range(1, turns + 1):
                t0 = time.perf_counter()
                final = await ws.chat("main", text_of(turn), within=120)
                latencies.append(time.perf_counter() - t0)
                failures += final["state"] != "final"
            rows = await ws.call("sessions.list", {})
            cost = await ws.call("usage.cost", {"days": 1})
    finally:
        stop(proc)
        await llm.stop()
    inputs = [
        t["usage"]["input_tokens"]
        + t["usage"]["cache_read_input_tokens"]
        + t["usage"]["cache_creation_input_tokens"]
        for t in llm.turns
    ]
    print(f"turns: {turns} of {TURN_BYTES} bytes, window {window} tokens, failures {failures}")
    print(f"refused by the provider as too long: {len(llm.refused)}")
    print(f"compactions: {rows['sessions'][0].get('compactionCount', 0)}")
    print(f"summary calls: {len(llm.summaries)}")
    print(f"largest request: {max(t['tokens'] for t in llm.turns)} tokens")
    print("prompt tokens per turn (mean / max per hundred turns):")
    for start_at in range(0, len(inputs), 100):
        chunk = inputs[start_at : start_at + 100]
        print(
            f"  turns {start_at + 1:>4}-{start_at + len(chunk):<4} {statistics.mean(chunk):>8.0f} {max(chunk):>8}"
        )
    steady = llm.turns[len(llm.turns) // 10 :]
    read = sum(t["usage"]["cache_read_input_tokens"] for t in steady)
    prompt = sum(
        t["usage"]["input_tokens"]
        + t["usage"]["cache_read_input_tokens"]
        + t["usage"]["cache_creation_input_tokens"]
        for t in steady
    )
    print(
        f"cache-hit ratio (cacheRead / prompt tokens, after turn {len(llm.turns) // 10}): {read / prompt:.1%}"
    )
    fact = "FACT: the user's cat is called Zorro" in json.dumps(llm.turns[-1]["body"]["messages"])
    print(f"turn-1 fact still in the last request: {fact}")
    lat = sorted(latencies)
    print(
        f"turn latency: median {statistics.median(lat) * 1000:.0f} ms, "
        f"p95 {lat[int(len(lat) * 0.95) - 1] * 1000:.0f} ms"
    )
    totals = cost["totals"]
    print(
        f"usage.cost today: {totals['totalTokens']} tokens, ${totals['totalCost']:.4f} "
        f"(cache read {totals['cacheRead']}, cache write {totals['cacheWrite']})"
    )


if __name__ == "__main__":
    asyncio.run(
        main(
            int(sys.argv[1]) if len(sys.argv) > 1 else 1000,
            int(sys.argv[2]) if len(sys.argv) > 2 else 32_000,
        )
    )
