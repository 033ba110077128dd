"""RSS of the real gateway with everything on, after one use of each outbound HTTP client.

The gateway runs as `python -m gateway` with Telegram and Discord (the fakes), Anthropic primary
and OpenAI fallback, tools, the memory index with vector search (fake embeddings), Brave Search
and web_fetch (local fakes), speech to text and text to speech (the fake OpenAI audio API). One
round drives each client once:

  anthropic    a chat turn (the primary model)
  web_fetch    a turn whose model calls web_fetch on the local page server
  web_search   a turn whose model calls web_search (fake Brave)
  memory       a turn whose model calls memory_search (embeddings of the query)
  telegram     a DM through the fake Bot API
  discord      a DM through the fake Discord
  voice        a Telegram voice note: transcription, then a spoken reply (speech)

then, once after the rounds (Anthropic cools down after it):
  openai       a turn whose Anthropic attempts fail with 500: the OpenAI fallback answers

The 100 cron jobs of bench/soak.py --full are added first. RSS is printed after start, after
each step of the first round, after each round (the per-call clients made again) and after the
fallback. Every step is checked to have reached its fake, so a figure never comes from a client
that was not used. bench/import_floor.py runs the same scenario to split the RSS into the
libraries' share and ours.

    .venv/bin/python bench/memory_full.py [rounds, default 2]
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _proc import ROOT, last_user_text, rss_mb
from soak import CRON_JOBS, NOTES, add_cron_jobs, full_config, session

sys.path.insert(0, str(ROOT))
from tests.fakes.embeddings import FakeEmbeddings
from tests.fakes.llm import FakeLLM, tool_names, tool_results
from tests.fakes.web import FakeBrave, PageServer
from tests.media.samples import OGG_OPUS

BRAVE_KEY = "brave-bench-key"
SETTLE_S = 2.0  # after a step: let the reply's tail (typing, journal) finish before sampling


def responder(pages_url: str) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    def respond(api: str, body: dict[str, Any]) -> dict[str, Any]:
        if tool_results(body):
            return {"text": "done with the tool"}
        text, offered = last_user_text(body), tool_names(body)
        tag = text.rsplit(" ", 1)[-1]  # a new URL and query each round: no tool cache hit
        calls = {
            "fetch": ("web_fetch", {"url": f"{pages_url}/counter?round={tag}"}),
            "search": ("web_search", {"query": f"moth migration {tag}"}),
            "recall": ("memory_search", {"query": f"backup plan {tag}"}),
        }
        for verb, (tool, args) in calls.items():
            if verb in text and tool in offered:
                return {"tool_calls": [{"name": tool, "arguments": args}]}
        return {"text": "here is a reply long enough to be spoken as a voice note, surely"}

    return respond


def _load_bench_channels() -> Any:
    """bench/channels.py by path: the name `channels` is the product package here."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_channels", ROOT / "bench" / "channels.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_channels"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


async def drive(
    rounds: int, at_end: Callable[[int], Awaitable[None]] | None = None
) -> list[tuple[str, float]]:
    """Run the scenario; (label, RSS MB) samples. `at_end(pid)` runs before the gateway stops."""
    bench_channels = _load_bench_channels()
    embeddings, pages, brave = FakeEmbeddings(), PageServer(), FakeBrave(BRAVE_KEY)
    for server in (embeddings, pages, brave):
        await server.start()
    # The gateway process inherits these (bench/_proc.py copies the environment).
    os.environ["BRAVE_API_KEY"] = BRAVE_KEY
    os.environ["BRAVE_SEARCH_BASE_URL"] = brave.url
    soak_extra = full_config(embeddings.base_url)

    def extra(llm: FakeLLM, state: Path) -> dict[str, Any]:
        config = soak_extra(llm, state)
        llm.responder = responder(pages.url)
        config["tools"] = {"web": {"fetch": {"ssrfPolicy": {"allowedHostnames": ["127.0.0.1"]}}}}
        config["tts"] = {"auto": "inbound"}
        return config

    samples: list[tuple[str, float]] = []
    try:
        async with bench_channels.channel_rig("clawgate-memory-full-", extra) as rig:
            pid, llm, tg, dc = rig.proc.pid, rig.llm, rig.tg, rig.dc
            samples.append(("connected (idle)", rss_mb(pid)))

            async def chat(text: str) -> None:
                async with session(rig.port) as ws:
                    final = await ws.chat(f"memory-full-{time.monotonic_ns()}", text, within=60)
                if final["state"] != "final":
                    raise RuntimeError(f"{text!r}: {final['state']} {final.get('errorMessage')}")

            tg_platform = bench_channels.telegram_platform(tg)
            dc_platform = bench_channels.discord_platform(dc)

            async def dm(p: Any, i: int) -> None:
                before = p.replies()
                await p.inject(i, "hello there")
                await p.wait_replies(before + 1, 30)

            async def voice() -> None:
                before = len(tg.calls("sendVoice"))
                tg.voice_update(OGG_OPUS, chat_id=1900, user_id=1900)
                await tg.wait_until(lambda _: len(tg.calls("sendVoice")) > before, 30)

            async def fallback() -> None:
                # Both fast attempts on Anthropic fail (a transient 500), so OpenAI answers.
                llm.script += [{"status": 500}, {"status": 500}]
                await chat("a turn for the fallback")

            def paths(*wanted: str) -> Callable[[], int]:
                return lambda: sum(1 for r in llm.requests if r.get("path") in wanted)

            rnd = 0
            steps: list[tuple[str, Callable[[], Awaitable[None]], Callable[[], int]]] = [
                ("anthropic", lambda: chat("hello"), paths("/v1/messages")),
                ("web_fetch", lambda: chat(f"fetch {rnd}"), lambda: pages.hits),
                ("web_search", lambda: chat(f"search {rnd}"), lambda: len(brave.requests)),
                ("memory", lambda: chat(f"recall {rnd}"), lambda: len(embeddings.requests)),
                ("telegram", lambda: dm(tg_platform, 1), lambda: len(tg.calls("sendMessage"))),
                ("discord", lambda: dm(dc_platform, 1), dc_platform.replies),
                ("voice", voice, lambda: len(llm.uploads) + len(llm.speech_requests)),
            ]
            # Last, once: Anthropic cools down after it, which would move the other turns.
            last = ("openai", fallback, paths("/v1/chat/completions", "/v1/responses"))

            async def step(
                name: str, run: Callable[[], Awaitable[None]], count: Callable[[], int]
            ) -> None:
                before = count()
                await run()
                if count() <= before:
                    raise RuntimeError(f"{name}: the step did not reach its fake")
                await asyncio.sleep(SETTLE_S)

            await add_cron_jobs(rig.port)
            samples.append((f"{CRON_JOBS} cron jobs added", rss_mb(pid)))
            for n in range(rounds):
                rnd = n + 1
                for name, run, count in steps:
                    await step(name, run, count)
                    if n == 0:
                        samples.append((f"after {name}", rss_mb(pid)))
                samples.append((f"after round {rnd}", rss_mb(pid)))
            await step(*last)
            samples.append(("after openai fallback", rss_mb(pid)))
            async with session(rig.port) as ws:
                await ws.call("health")
            if at_end is not None:
                await at_end(pid)
            if rig.proc.poll() is not None:
                raise RuntimeError("the gateway exited during the run")
    finally:
        for server in (embeddings, pages, brave):
            await server.stop()
    return samples


def title() -> str:
    return (
        f"everything on, {time.strftime('%Y-%m-%d')}: Telegram + Discord (fakes), Anthropic +"
        f" OpenAI fallback, tools, memory index ({NOTES} notes, vector search), {CRON_JOBS} cron"
        " jobs, web_fetch, web_search, speech to text and text to speech"
    )


async def main(rounds: int) -> None:
    samples = await drive(rounds)
    print(f"{title()}; each client used once a round, {rounds} rounds")
    for label, value in samples:
        print(f"  RSS {label:<22} {value:6.1f} MB")
    print(json.dumps({"rss_mb": {label: round(value, 1) for label, value in samples}}))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2))
