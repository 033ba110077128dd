"""Time to first token when the primary model is down and a fallback is healthy.

A real `python -m gateway` process; an Anthropic-shaped fake that answers 529 (overloaded) to
every request after a warm-up turn, and a healthy Gemini fake as the fallback
(`anthropic/claude-bench` → `google/gemini-bench`). Per run: a fresh state directory and
process, one warm-up turn the primary answers (SDKs loaded, nothing cooling down), then the
measured turn: chat.send → first streamed delta (time to first token) and → final.

Two policies: the default (fast fallback: one quick retry when a healthy fallback waits) and
the previous one (the reference's same-model budget: up to 8 retries inside 90 s), selected
with CLAWGATE_FAST_FALLBACK_ATTEMPTS=0. The old policy takes ~90 s per run.

    .venv/bin/python bench/fallback.py [runs of the default policy, default 5] [old runs, default 1]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _proc import ROOT, connect_params, open_client, start, stop, wait_healthy

sys.path.insert(0, str(ROOT))
from tests.fakes.gemini import FakeGemini
from tests.fakes.llm import FakeLLM


async def turn(ws: Any, run: str, message: str) -> tuple[float, float, str]:
    """(seconds to first delta, seconds to final, final text) of one chat.send."""
    t0 = time.perf_counter()
    params = {"sessionKey": "main", "message": message, "idempotencyKey": run}
    await ws.send(json.dumps({"type": "req", "id": run, "method": "chat.send", "params": params}))
    first: float | None = None
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 300))
        if msg.get("type") == "res" and msg.get("id") == run and not msg.get("ok"):
            raise RuntimeError(f"chat.send refused: {msg}")
        if msg.get("event") != "chat":
            continue
        payload = msg["payload"]
        if payload["state"] == "delta" and first is None:
            first = time.perf_counter() - t0
        if payload["state"] in ("final", "error", "aborted"):
            total = time.perf_counter() - t0
            content = (payload.get("message") or {}).get("content") or []
            text = "".join(b.get("text", "") for b in content) or payload.get("errorMessage", "")
            return (first if first is not None else total), total, text


async def one_run(
    anthropic: FakeLLM, gemini: FakeGemini, env: dict[str, str]
) -> tuple[float, float, int]:
    state = tempfile.mkdtemp(prefix="clawgate-bench-fallback-")
    config = {
        "models": {
            "providers": {
                "anthropic": {"baseUrl": anthropic.url, "apiKey": "sk-ant-bench"},
                "google": {"baseUrl": gemini.url + "/v1beta", "apiKey": "AIza-bench"},
            }
        },
        "agents": {
            "defaults": {
                "model": {"primary": "anthropic/claude-bench", "fallbacks": ["google/gemini-bench"]}
            }
        },
    }
    (Path(state) / "openclaw.json").write_text(json.dumps(config))
    anthropic.script[:] = [{"text": "warm"}] + [{"status": 529}] * 50
    proc, port = start(state, env)
    try:
        await asyncio.to_thread(wait_healthy, port)
        async with await open_client(
            f"ws://127.0.0.1:{port}/", connect_params(["operator.write"])
        ) as ws:
            _, _, warm = await turn(ws, "warm", "hello")
            assert warm == "warm", warm
            before = len(anthropic.requests)
            first, total, text = await turn(ws, "measured", "are you there?")
            assert text == "answer from the fallback", text
            return first, total, len(anthropic.requests) - before
    finally:
        stop(proc)


def report(name: str, rows: list[tuple[float, float, int]]) -> None:
    firsts = [r[0] for r in rows]
    totals = [r[1] for r in rows]
    print(
        f"{name}: runs={len(rows)} first token median {statistics.median(firsts):.2f} s"
        f" (min {min(firsts):.2f}, max {max(firsts):.2f}); final median"
        f" {statistics.median(totals):.2f} s; requests to the primary {[r[2] for r in rows]}"
    )


async def main(new_runs: int, old_runs: int) -> None:
    anthropic = FakeLLM()
    gemini = FakeGemini(default_text="answer from the fallback")
    await anthropic.start()
    await gemini.start()
    try:
        new = [await one_run(anthropic, gemini, {}) for _ in range(new_runs)]
        report("fast fallback (default)", new)
        if old_runs:
            old = [
                await one_run(anthropic, gemini, {"CLAWGATE_FAST_FALLBACK_ATTEMPTS": "0"})
                for _ in range(old_runs)
            ]
            report("previous policy (same-model budget, 90 s window)", old)
    finally:
        await anthropic.stop()
        await gemini.stop()


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    asyncio.run(main(*(args + [5, 1][len(args) :])))
