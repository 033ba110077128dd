"""Gateway overhead per chat turn against a zero-latency fake model server.

Two legs per turn, timed on one monotonic clock (client and fake live in this process, the
gateway is a separate `python -m gateway` process):
  in   chat.send frame sent            -> model request arrives at the fake
  out  fake finished streaming answer  -> `final` chat event arrives at the client
Turns rotate over SESSIONS sessions, so history grows as it does in real use. PREFILL adds
that many idle sessions to the agent's index before the start, to show that a turn's cost
does not depend on how many sessions the agent has.

    .venv/bin/python bench/pipeline.py [turns, default 500] [sessions, default 50] [prefill, default 0]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _proc import ROOT, connect_params, open_client, pct, rss_mb, start, stop, wait_healthy

sys.path.insert(0, str(ROOT))
from tests.fakes.llm import FakeLLM


def prefill(state: str, count: int) -> None:
    from gateway.agents.store import SessionStore

    store = SessionStore(Path(state))
    for n in range(count):
        store.ensure(f"agent:main:idle-{n}")
    store.for_agent("main").compact()


async def main(turns: int, sessions: int, idle: int) -> None:
    fake = FakeLLM(default_text="pong")
    await fake.start()
    state = tempfile.mkdtemp(prefix="clawgate-bench-pipeline-")
    config = {
        "models": {"providers": {"openai": {"baseUrl": fake.url + "/v1", "apiKey": "sk-bench"}}},
        "agents": {"defaults": {"model": {"primary": "openai/gpt-bench"}}},
    }
    (Path(state) / "openclaw.json").write_text(json.dumps(config))
    if idle:
        prefill(state, idle)
    proc, port = start(state)
    try:
        await asyncio.to_thread(wait_healthy, port)
        url = f"ws://127.0.0.1:{port}/"
        async with await open_client(url, connect_params(["operator.write"])) as ws:
            inbound: list[float] = []
            outbound: list[float] = []
            for n in range(turns + 20):  # the first 20 warm up imports and caches
                run_id = f"bench-{n}"
                frame = {
                    "type": "req",
                    "id": run_id,
                    "method": "chat.send",
                    "params": {
                        "sessionKey": f"agent:main:bench-{n % sessions}",
                        "message": f"ping {n}",
                        "idempotencyKey": run_id,
                    },
                }
                before = len(fake.requests)
                sent = time.monotonic()
                await ws.send(json.dumps(frame))
                while True:
                    msg = json.loads(await ws.recv())
                    payload = msg.get("payload") or {}
                    if msg.get("event") == "chat" and payload.get("runId") == run_id:
                        if payload["state"] in ("final", "error", "aborted"):
                            received = time.monotonic()
                            assert payload["state"] == "final", payload
                            break
                if n >= 20:
                    inbound.append(fake.requests[before]["at"] - sent)
                    outbound.append(received - fake.completed_at[-1])
        rss = rss_mb(proc.pid)
    finally:
        stop(proc)
        await fake.stop()

    def line(name: str, values: list[float]) -> str:
        ms = [v * 1000 for v in values]
        return (
            f"{name:<34} p50 {statistics.median(ms):6.2f} ms   p99 {pct(ms, 0.99):6.2f} ms"
            f"   max {max(ms):6.2f} ms"
        )

    total = [a + b for a, b in zip(inbound, outbound, strict=True)]
    print(
        f"turns: {turns} over {sessions} sessions, {idle} idle sessions in the index"
        " (zero-latency fake OpenAI, streaming)"
    )
    print(line("request in -> provider request out", inbound))
    print(line("provider final -> final event out", outbound))
    print(line("overhead per turn (sum)", total))
    print(f"gateway RSS after the run: {rss:.1f} MB")


if __name__ == "__main__":
    turns = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    sessions = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    idle = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    asyncio.run(main(turns, sessions, idle))
