"""Gateway overhead of one turn over /v1/chat/completions vs a WebSocket chat.send.

Same zero-latency fake model, same gateway process; each turn is timed from the client's
request to the end of the answer, minus the time the fake spent answering (request arrival
-> stream end), so the figure is the gateway's own work on each path.

    .venv/bin/python bench/http_api.py [turns, default 300]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _proc import ROOT, TOKEN, connect_params, open_client, pct, start, stop, wait_healthy

sys.path.insert(0, str(ROOT))
from tests.fakes.llm import FakeLLM


def line(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"{name:<36} p50 {statistics.median(ms):6.2f} ms   p99 {pct(ms, 0.99):6.2f} ms"


async def main(turns: int) -> None:
    fake = FakeLLM(default_text="pong")
    await fake.start()
    state = tempfile.mkdtemp(prefix="clawgate-bench-http-")
    config = {
        "gateway": {"http": {"endpoints": {"chatCompletions": {"enabled": True}}}},
        "models": {"providers": {"openai": {"baseUrl": fake.url + "/v1", "apiKey": "sk-bench"}}},
        "agents": {"defaults": {"model": {"primary": "openai/gpt-bench"}}},
    }
    (Path(state) / "openclaw.json").write_text(json.dumps(config))
    proc, port = start(state)
    ws_times: list[float] = []
    http_times: list[float] = []
    try:
        await asyncio.to_thread(wait_healthy, port)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with (
            await open_client(f"ws://127.0.0.1:{port}/", connect_params(["operator.write"])) as ws,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as http,
        ):
            for n in range(turns + 20):
                # WebSocket chat.send -> final
                run_id = f"ws-{n}"
                frame = {
                    "type": "req",
                    "id": run_id,
                    "method": "chat.send",
                    "params": {
                        "sessionKey": f"agent:main:ws-{n}",
                        "message": "ping",
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
                            done = time.monotonic()
                            break
                model_s = fake.completed_at[-1] - fake.requests[before]["at"]
                if n >= 20:
                    ws_times.append(done - sent - model_s)
                # HTTP streaming chat completion -> [DONE]
                before = len(fake.requests)
                sent = time.monotonic()
                body = {
                    "model": "openclaw",
                    "stream": True,
                    "messages": [{"role": "user", "content": "ping"}],
                }
                async with http.stream("POST", "/v1/chat/completions", json=body) as resp:
                    async for row in resp.aiter_lines():
                        if row == "data: [DONE]":
                            break
                done = time.monotonic()
                model_s = fake.completed_at[-1] - fake.requests[before]["at"]
                if n >= 20:
                    http_times.append(done - sent - model_s)
    finally:
        stop(proc)
        await fake.stop()
    print(f"turns: {turns} per path, fresh session each (zero-latency fake OpenAI, streaming)")
    print(line("WebSocket chat.send -> final", ws_times))
    print(line("HTTP /v1/chat/completions -> [DONE]", http_times))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
