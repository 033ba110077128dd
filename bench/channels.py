"""Channel overhead: messages through fake Telegram and fake Discord to a zero-latency model.

The gateway runs as a separate `python -m gateway` process with both channels enabled; the
fake Bot API, the fake Discord (REST + gateway websocket) and the fake model run in this
process, so all legs are timed on one monotonic clock:
  in    update/event injected at the fake platform -> model request arrives at the fake model
  out   fake model finished its answer             -> reply arrives at the fake platform
Latency is measured one message at a time (after 20 warm-up messages); throughput with N
messages injected at once over S DM conversations (one session each, so they run in
parallel up to the gateway's concurrency limit).

    .venv/bin/python bench/channels.py [messages, default 300] [conversations, default 20]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _proc import ROOT, pct, rss_mb, start, stop, wait_healthy

sys.path.insert(0, str(ROOT))
from tests.fakes import discord as fd
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import FakeTelegram

WARMUP = 20
DM_BASE = 880_000  # fake Discord DM channel ids (discord.py builds DM channels itself)


def line(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"  {name:<40} p50 {statistics.median(ms):7.2f} ms   p99 {pct(ms, 0.99):7.2f} ms"
        f"   max {max(ms):7.2f} ms"
    )


class Platform:
    """One fake platform: inject a DM from conversation `i`, wait for the n-th reply."""

    name: str
    inject: Callable[[int, str], Awaitable[None]]
    replies: Callable[[], int]
    wait_replies: Callable[[int, float], Awaitable[None]]


def telegram_platform(tg: FakeTelegram) -> Platform:
    p = Platform()
    p.name = "telegram"

    async def inject(i: int, text: str) -> None:
        tg.text_update(text, chat_id=1000 + i, user_id=1000 + i)

    def replies() -> int:
        return len(tg.calls("sendMessage"))

    async def wait_replies(n: int, timeout: float) -> None:  # noqa: ASYNC109
        await tg.wait_until(lambda _: replies() >= n, timeout)

    p.inject, p.replies, p.wait_replies = inject, replies, wait_replies
    return p


def discord_platform(dc: FakeDiscord) -> Platform:
    p = Platform()
    p.name = "discord"

    async def inject(i: int, text: str) -> None:
        await dc.message_create(fd.message(text, DM_BASE + i, fd.user(5000 + i, f"user{i}")))

    def replies() -> int:
        return sum(
            1
            for r in dc.rest_calls("POST")
            if r["path"].startswith("/channels/") and r["path"].endswith("/messages")
        )

    async def wait_replies(n: int, timeout: float) -> None:  # noqa: ASYNC109
        await dc.wait_until(lambda _: replies() >= n, timeout)

    p.inject, p.replies, p.wait_replies = inject, replies, wait_replies
    return p


async def measure(p: Platform, llm: FakeLLM, messages: int, conversations: int) -> dict[str, Any]:
    inbound: list[float] = []
    outbound: list[float] = []
    for n in range(messages + WARMUP):
        before_req, before_rep = len(llm.requests), p.replies()
        sent = time.monotonic()
        await p.inject(n % conversations, f"ping {n}")
        await p.wait_replies(before_rep + 1, 30)
        received = time.monotonic()
        if n >= WARMUP:
            inbound.append(llm.requests[before_req]["at"] - sent)
            outbound.append(received - llm.completed_at[-1])
    before = p.replies()
    t0 = time.monotonic()
    for n in range(messages):
        await p.inject(n % conversations, f"burst {n}")
    await p.wait_replies(before + messages, 120)
    elapsed = time.monotonic() - t0
    return {"in": inbound, "out": outbound, "rate": messages / elapsed}


@dataclass
class Rig:
    """A gateway process with Telegram and Discord on the fakes and a zero-latency model."""

    llm: FakeLLM
    tg: FakeTelegram
    dc: FakeDiscord
    proc: subprocess.Popen[bytes]
    port: int


@contextlib.asynccontextmanager
async def channel_rig(
    prefix: str, extra: Callable[[FakeLLM, Path], dict[str, Any]] | None = None
) -> AsyncIterator[Rig]:
    """Start the fakes and the gateway; yield once both channels are connected.

    `extra(llm, state_dir)` may prepare the state dir and returns top-level config sections
    that replace the defaults (a fuller config for the soak)."""
    llm = FakeLLM(default_text="pong")
    tg = FakeTelegram()
    dc = FakeDiscord()
    for server in (llm, tg, dc):
        await server.start()
    state = tempfile.mkdtemp(prefix=prefix)
    open_dms = {"dmPolicy": "open", "allowFrom": ["*"]}
    config = {
        "models": {"providers": {"openai": {"baseUrl": llm.url + "/v1", "apiKey": "sk-bench"}}},
        "agents": {"defaults": {"model": {"primary": "openai/gpt-bench"}}},
        "session": {"dmScope": "per-channel-peer"},
        "channels": {
            "telegram": {"botToken": tg.token, "apiRoot": tg.url, **open_dms},
            "discord": {"token": dc.token, **open_dms},
        },
    }
    if extra is not None:
        config.update(extra(llm, Path(state)))
    (Path(state) / "openclaw.json").write_text(json.dumps(config))
    proc, port = start(state, {"OPENCLAW_SKIP_CHANNELS": "", "DISCORD_API_URL": dc.api_base})
    try:
        await asyncio.to_thread(wait_healthy, port)
        await tg.wait_until(lambda reqs: any(r["method"] == "getUpdates" for r in reqs), 30)
        await dc.wait_op(2, timeout=30)  # IDENTIFY: the Discord client is connecting
        await dc.wait_until(lambda _: dc.connected_sockets > 0, 30)
        yield Rig(llm, tg, dc, proc, port)
    finally:
        stop(proc)
        for server in (llm, tg, dc):
            await server.stop()


async def main(messages: int, conversations: int) -> None:
    results: dict[str, dict[str, Any]] = {}
    async with channel_rig("clawgate-bench-channels-") as rig:
        for platform in (telegram_platform(rig.tg), discord_platform(rig.dc)):
            results[platform.name] = await measure(platform, rig.llm, messages, conversations)
        rss = rss_mb(rig.proc.pid)
    print(
        f"{messages} messages per channel, {conversations} DM conversations, "
        "zero-latency fake OpenAI (streaming)"
    )
    for name, r in results.items():
        total = [a + b for a, b in zip(r["in"], r["out"], strict=True)]
        print(f"{name}: {r['rate']:.0f} messages/s (burst of {messages})")
        print(line("inbound: platform -> model request", r["in"]))
        print(line("outbound: model done -> platform reply", r["out"]))
        print(line("added latency per message (sum)", total))
    print(f"gateway RSS after the run: {rss:.1f} MB")


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    convs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    asyncio.run(main(count, convs))
