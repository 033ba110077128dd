"""Issue 14, done means: a long Telegram DM against a small context window keeps answering
with a bounded request per turn; /status shows the context filling and emptying (compactions);
/usage cost shows totals that match the per-turn records in the transcripts."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import OWNER, to_chat
from tests.fakes.context_llm import ContextFakeLLM
from tests.fakes.telegram import FakeTelegram
from tests.harness import chat, connected, final_text, live_gateway

WINDOW = 16_000  # the system prompt and tool definitions take ~4k of it
TURNS = 60
PRICES = {"input": 3, "output": 15, "cacheRead": 0.3, "cacheWrite": 3.75}


@pytest.fixture
async def model() -> AsyncIterator[ContextFakeLLM]:
    server = ContextFakeLLM(window=WINDOW, reply="noted")
    await server.start()
    yield server
    await server.stop()


def config(model: ContextFakeLLM, tg: FakeTelegram) -> dict[str, Any]:
    entry = {"id": "claude-test", "contextWindow": WINDOW, "cost": PRICES}
    provider = {"baseUrl": model.url, "apiKey": {"source": "env", "id": "ANTHROPIC_API_KEY"}}
    return {
        "gateway": {"mode": "local"},
        "models": {"providers": {"anthropic": {**provider, "models": [entry]}}},
        "agents": {"defaults": {"model": {"primary": "anthropic/claude-test"}}},
        "channels": {
            "telegram": {
                "botToken": {"source": "env", "id": "TELEGRAM_BOT_TOKEN"},
                "apiRoot": tg.url,
                "dmPolicy": "allowlist",
                "allowFrom": [OWNER],
            }
        },
    }


def message(turn: int) -> str:
    filler = " ".join(f"w{turn}-{i}" for i in range(600))
    return f"turn {turn}: {filler}"[:2048]


def events(state: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted((state / "agents" / "main" / "sessions").glob("*.jsonl*")):
        out += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return out


async def test_a_long_dm_stays_bounded_and_status_usage_tell_the_truth(
    tmp_path: Path, fake_tg: FakeTelegram, model: ContextFakeLLM
) -> None:
    replies: list[str] = []

    async def say(text: str) -> str:
        before = len(fake_tg.calls("sendMessage"))
        fake_tg.text_update(text)
        await fake_tg.wait_until(
            lambda _: len([c for c in fake_tg.calls("sendMessage")]) > before, timeout=15
        )
        sent = fake_tg.calls("sendMessage")[-1]
        assert to_chat(OWNER)(sent)
        return str(sent["text"])

    percents: list[int] = []
    async with live_gateway(tmp_path, config(model, fake_tg)) as live:
        runner = live.gateway.extensions["channels"].get("telegram").runner
        await runner.wait_for_status(lambda s: s.connected)
        for turn in range(1, TURNS + 1):
            replies.append(await say(message(turn)))
            if turn % 2 == 0:
                status = await say("/status")
                found = re.search(r"Context: ~?[\d.k]+/[\d.k]+ \((\d+)%", status)
                assert found, status
                percents.append(int(found.group(1)))
        compactions = int(re.search(r"Compactions: (\d+)", status).group(1))  # type: ignore[union-attr]
        usage_text = await say("/usage cost")
        async with connected(live) as client:
            cost = await client.call("usage.cost", {"days": 1})
    assert replies == ["noted"] * TURNS  # every turn answered
    assert model.refused == []  # and never by a provider "too long"
    # Bounded cost per turn: every request fits the window minus half the reply reserve …
    sizes = [t["tokens"] for t in model.turns]
    assert max(sizes) <= WINDOW - WINDOW // 8
    # … and the late turns cost no more than the early ones at their peak.
    assert max(sizes[TURNS // 2 :]) <= max(sizes[: TURNS // 2]) * 1.1
    # /status: the context fills, empties at each compaction, fills again.
    drops = [i for i in range(1, len(percents)) if percents[i] < percents[i - 1]]
    assert len(drops) >= 2 and max(percents) >= 50, (
        percents,
        [t["tokens"] for t in model.turns],
        len(model.summaries),
    )
    assert compactions >= 2 and compactions == len(model.summaries)
    # /usage and usage.cost: totals equal the sum of the per-turn records (replies and
    # compaction summaries) written in the transcript.
    records = [
        e["message"]["usage"]
        for e in events(tmp_path)
        if e.get("type") == "message" and e["message"].get("role") == "assistant"
    ] + [e["usage"] for e in events(tmp_path) if e.get("type") == "compaction" and "usage" in e]
    assert len(records) == TURNS + compactions
    total_cost = sum(r["cost"]["total"] for r in records)
    assert cost["totals"]["input"] == sum(r["input"] for r in records)
    assert cost["totals"]["output"] == sum(r["output"] for r in records)
    assert cost["totals"]["totalCost"] == pytest.approx(total_cost, abs=1e-6)
    assert f"${total_cost:.4f}" in usage_text.splitlines()[1]


async def test_tool_definitions_count_as_fixed_prompt_not_as_history(
    tmp_path: Path, fake_tg: FakeTelegram, model: ContextFakeLLM
) -> None:
    """With the real tools (~4k tokens of definitions) in an 8k window, compaction runs about
    every other turn — not on every turn, as when the definitions were mistaken for history
    and inflated every estimate by the provider's reported count."""
    cfg = config(model, fake_tg)
    cfg["models"]["providers"]["anthropic"]["models"][0]["contextWindow"] = 8_000
    del cfg["channels"]
    async with live_gateway(tmp_path, cfg) as live, connected(live) as client:
        for turn in range(1, 21):
            assert final_text(await chat(client, message(turn), timeout=15)) == "noted"
    assert model.refused == []
    assert 3 <= len(model.summaries) <= 12
