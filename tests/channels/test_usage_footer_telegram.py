"""`/usage off|tokens|full` on Telegram end to end: real python-telegram-bot ↔ fake Bot API ↔
real gateway ↔ fake model reporting usage (gateway/agents/usage_footer.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tests.agents.loop_tools as lt
from channels.telegram import format_for_telegram
from gateway.agents import pricing
from gateway.config.models import OpenClawConfig
from tests.channels.conftest import gateway_config, telegram_gateway
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import FakeTelegram

OPEN_DM = {"dmPolicy": "open", "allowFrom": ["*"]}
NBSP = "\xa0"
PRICE = {"input": 2, "output": 10}  # USD per 1M tokens


def config(tg: FakeTelegram, llm: FakeLLM, model: str = "gpt-test", **telegram: Any) -> Any:
    cfg = gateway_config(tg, llm, {**OPEN_DM, **telegram})
    cfg["models"]["providers"]["openai"]["models"] = [
        {"id": "gpt-test", "contextWindow": 100_000, "cost": PRICE},
        {"id": "gpt-free", "contextWindow": 100_000},  # no price anywhere
    ]
    cfg["agents"]["defaults"]["model"]["primary"] = f"openai/{model}"
    return cfg


def said(llm: FakeLLM, text: str, prompt: int, completion: int) -> None:
    llm.script.append(
        {"text": text, "usage": {"prompt_tokens": prompt, "completion_tokens": completion}}
    )


async def ask(tg: FakeTelegram, text: str) -> str:
    """Send `text` in the DM and return the bot's next new message there."""
    before = len(tg.calls("sendMessage"))
    tg.text_update(text)
    await tg.wait_until(lambda _: len(tg.calls("sendMessage")) > before, timeout=10)
    return str(tg.calls("sendMessage")[before]["text"])


def shown(text: str) -> str:
    """What Telegram receives for `text` (the channel's Markdown → HTML)."""
    pieces = format_for_telegram(text, 4000)
    assert len(pieces) == 1
    return pieces[0]


async def test_off_by_default_then_tokens_persisting_across_turns_and_new(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    for word in ("one", "two", "three", "four", "five"):
        said(fake_llm, word, 1234, 56)
    async with telegram_gateway(tmp_path, config(fake_tg, fake_llm)):
        assert await ask(fake_tg, "first") == "one"  # no footer by default
        assert await ask(fake_tg, "/usage tokens") == shown("⚙️ Usage footer: tokens.")
        assert await ask(fake_tg, "second") == shown("two\nUsage: 1.2k in / 56 out")
        assert await ask(fake_tg, "third") == shown("three\nUsage: 1.2k in / 56 out")
        await ask(fake_tg, "/new")
        assert await ask(fake_tg, "fourth") == shown("four\nUsage: 1.2k in / 56 out")
        assert await ask(fake_tg, "/usage off") == shown("⚙️ Usage footer: off.")
        assert await ask(fake_tg, "fifth") == "five"


async def test_full_with_a_priced_model_shows_the_bar_and_cost(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    said(fake_llm, "answer", 40_000, 500)
    async with telegram_gateway(tmp_path, config(fake_tg, fake_llm)):
        assert await ask(fake_tg, "/usage full") == shown("⚙️ Usage footer: full.")
        reply = await ask(fake_tg, "how much?")
    cost = (40_000 * 2 + 500 * 10) / 1_000_000
    bar = f"openai🤖gpt-test🐌{NBSP}| 📚[⣿⣿⠐⠐⠐]100k{NBSP}💰{cost:.4f}"
    assert reply == shown(f"answer\n{bar}")
    assert "💰0.0850" in reply


async def test_full_with_an_unpriced_model_shows_no_cost(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    cfg = config(fake_tg, fake_llm, model="gpt-free")
    # The model really has no price (config or bundled table): a made-up figure would show.
    assert (
        pricing.cost(OpenClawConfig.model_validate(cfg), "openai", "gpt-free", pricing.Counts(1, 1))
        is None
    )
    said(fake_llm, "answer", 40_000, 500)
    async with telegram_gateway(tmp_path, cfg):
        await ask(fake_tg, "/usage full")
        reply = await ask(fake_tg, "how much?")
    assert reply == shown(f"answer\nopenai🤖gpt-free🐌{NBSP}| 📚[⣿⣿⠐⠐⠐]100k")
    assert "💰" not in reply and "$" not in reply


@pytest.fixture
def test_tools() -> Iterator[None]:
    with lt.registered():
        yield


@pytest.mark.usefixtures("test_tools")
async def test_preview_never_shows_the_footer_and_the_final_sums_the_turn(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    (tmp_path / "workspace").mkdir()
    (tmp_path / "workspace" / "note.txt").write_text("remember the milk\n")
    text = " ".join(f"word{i}" for i in range(150))
    fake_llm.script += [
        {
            "tool_calls": [{"name": "test_read", "arguments": {"path": "note.txt"}}],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 20},
        },
        {
            "text": text,
            "word_delay": 0.012,
            "usage": {"prompt_tokens": 1100, "completion_tokens": 30},
        },
    ]
    cfg = config(fake_tg, fake_llm, streaming="partial")
    async with telegram_gateway(tmp_path, cfg):
        await ask(fake_tg, "/usage tokens")
        fake_tg.text_update("read the note")
        expected = shown(f"{text}\nUsage: 2.1k in / 50 out")  # both calls of the turn
        await fake_tg.wait_until(
            lambda _: (
                [t for (c, _m), t in sorted(fake_tg.messages.items()) if c == "42"][-1] == expected
            ),
            timeout=30,
        )
    previews = [
        r["params"]["text"]
        for r in fake_tg.requests
        if r["method"] in ("sendMessage", "editMessageText")
        and r["status"] == 200
        and r["params"].get("text", "").startswith("word0")
    ]
    assert len(previews) >= 2, "the answer was not previewed before the final"
    assert all("Usage:" not in p for p in previews[:-1])  # only the last edit has it
    assert previews[-1] == expected
