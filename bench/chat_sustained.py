"""Sustained chat traffic against a zero-latency fake model: does the gateway's RSS grow?

CLIENTS WebSocket clients send chat turns back to back for the given minutes over rotating
sessions (each reset every RESET_EVERY turns, as a user's /new would, so history stays bounded
and only a leak could make memory climb). RSS is sampled every 5 s; the first minute is the
warm-up (imports, SDK clients, caches), so growth is judged from minute 1 to the end.

    .venv/bin/python bench/chat_sustained.py [minutes, default 3] [clients, default 8]
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from _proc import ROOT, start, stop, wait_healthy
from soak import Recorder, chat_worker, report, sample_rss

sys.path.insert(0, str(ROOT))
from tests.fakes.llm import FakeLLM

SESSIONS_PER_CLIENT = 5


async def main(minutes: float, clients: int) -> None:
    llm = FakeLLM(default_text="a short answer from the fake model")
    await llm.start()
    state = tempfile.mkdtemp(prefix="clawgate-sustained-")
    config = {
        "models": {"providers": {"openai": {"baseUrl": llm.url + "/v1", "apiKey": "sk-bench"}}},
        "agents": {"defaults": {"model": {"primary": "openai/gpt-bench"}}},
    }
    (Path(state) / "openclaw.json").write_text(json.dumps(config))
    proc, port = start(state)
    try:
        await asyncio.to_thread(wait_healthy, port)
        rec = Recorder()
        deadline = time.monotonic() + minutes * 60
        jobs = [
            chat_worker(port, rec, i, deadline, sessions=SESSIONS_PER_CLIENT)
            for i in range(clients)
        ]
        *turns, _ = await asyncio.gather(*jobs, sample_rss(proc.pid, rec, deadline))
    finally:
        stop(proc)
        await llm.stop()
    total = sum(t for t in turns if isinstance(t, int))
    report(
        rec,
        f"sustained chat {minutes:g} min, {time.strftime('%Y-%m-%d')}: {clients} clients,"
        f" zero-latency fake OpenAI (streaming), sessions reset every few turns",
    )
    print(f"turns: {total} ({total / (minutes * 60):.0f}/s); model requests: {len(llm.requests)}")
    after_warmup = [v for at, v in rec.rss if at >= 60] or [v for _, v in rec.rss]
    if len(after_warmup) >= 2:
        print(
            f"RSS after warm-up: first {after_warmup[0]:.1f} MB, last {after_warmup[-1]:.1f} MB,"
            f" growth {after_warmup[-1] - after_warmup[0]:+.1f} MB"
        )


if __name__ == "__main__":
    asyncio.run(
        main(
            float(sys.argv[1]) if len(sys.argv) > 1 else 3.0,
            int(sys.argv[2]) if len(sys.argv) > 2 else 8,
        )
    )
