"""Preview streaming on Telegram (real PTB ↔ fake Bot API ↔ gateway ↔ fake model, issue 20)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tests.agents.loop_tools as lt
from channels.telegram import format_for_telegram
from tests.channels.conftest import gateway_config, telegram_gateway
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import FakeTelegram

OPEN_DM = {"dmPolicy": "open", "allowFrom": ["*"]}
PREVIEW_CALLS = ("sendMessage", "editMessageText")


def long_answer(words: int = 2000, seed: int = 7) -> str:
    """A Markdown answer of about `words` words: paragraphs, a list and a code fence."""
    rng = random.Random(seed)
    vocab = "the agent streams a preview that grows in place while **tokens** arrive".split()
    paragraphs: list[str] = []
    count = 0
    while count < words:
        n = rng.randint(40, 90)
        paragraphs.append(" ".join(rng.choice(vocab) for _ in range(n)) + ".")
        count += n
        if len(paragraphs) == 6:
            code = "\n".join(f"    print('line {i}')  # keep" for i in range(30))
            paragraphs.append(f"```python\ndef demo():\n{code}\n```")
            count += 30 * 4
    return "\n\n".join(paragraphs)


def preview_calls(fake: FakeTelegram, chat: str = "42") -> list[dict[str, Any]]:
    return [
        r
        for r in fake.requests
        if r["method"] in PREVIEW_CALLS
        and r["status"] == 200
        and str(r["params"].get("chat_id")) == chat
    ]


def flushes(times: list[float], gap: float = 0.3) -> list[list[float]]:
    """Group call times into bursts (one preview flush each)."""
    out: list[list[float]] = []
    for t in sorted(times):
        if out and t - out[-1][-1] < gap:
            out[-1].append(t)
        else:
            out.append([t])
    return out


def final_texts(fake: FakeTelegram, chat: str = "42") -> list[str]:
    """What the chat shows now: the bot's remaining messages, oldest first."""
    return [text for (c, _mid), text in sorted(fake.messages.items()) if c == chat]


async def test_partial_preview_grows_in_place_within_the_throttle(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    text = long_answer()
    assert len(text.split()) >= 2000
    fake_llm.script.append({"text": text, "word_delay": 0.0015})
    cfg = gateway_config(fake_tg, fake_llm, {**OPEN_DM, "streaming": "partial"})
    async with telegram_gateway(tmp_path, cfg):
        fake_tg.text_update("write a lot")
        expected = format_for_telegram(text, 4000)
        await fake_tg.wait_until(lambda _: final_texts(fake_tg) == expected, timeout=30)
    assert len(expected) >= 3  # a long answer: it continued in new messages
    calls = preview_calls(fake_tg)
    edits = [c for c in calls if c["method"] == "editMessageText"]
    assert edits, "the preview was never edited in place"
    duration = fake_llm.completed_at[-1] - fake_llm.first_token_at[-1]
    assert duration >= 2.5  # long enough for the throttle to matter
    # Calls come in flushes (bursts); the last burst is the finalisation.
    bursts = flushes([c["at"] for c in calls])
    streaming, final = bursts[:-1], bursts[-1]
    assert len(streaming) >= 3
    for before, after in itertools.pairwise(streaming):
        assert after[0] - before[0] >= 0.95  # ≈ 1 flush per second per chat
    # A flush edits the chunk that just filled up and opens the next one (two, if a busy
    # machine delayed the flush while more than a chunk streamed in), no more.
    assert all(len(b) <= 3 for b in streaming)
    assert len(final) <= len(expected) + 1
    assert len(calls) <= 2 * (duration + 1) + len(expected)
    # The stream never showed a cut code fence: every preview state is balanced HTML.
    for call in calls:
        body = call["params"]["text"]
        assert body.count("<pre>") == body.count("</pre>")
    # Exactly the non-streamed rendering, and no message was sent twice for it.
    assert len([c for c in calls if c["method"] == "sendMessage"]) == len(expected)


async def test_rate_limited_edit_waits_retry_after(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    text = " ".join(f"word{i}" for i in range(700))
    fake_llm.script.append({"text": text, "word_delay": 0.004})
    fake_tg.fail_next("editMessageText", 429, "Too Many Requests: retry after 2", retry_after=2)
    cfg = gateway_config(fake_tg, fake_llm, {**OPEN_DM, "streaming": {"mode": "partial"}})
    async with telegram_gateway(tmp_path, cfg):
        fake_tg.text_update("go")
        expected = format_for_telegram(text, 4000)
        await fake_tg.wait_until(lambda _: final_texts(fake_tg) == expected, timeout=30)
    limited = next(r for r in fake_tg.requests if r["status"] == 429)
    later = [r["at"] for r in fake_tg.requests if r["method"] == "editMessageText"]
    after = [t for t in later if t > limited["at"]]
    assert after, "no edit after the 429"
    assert after[0] - limited["at"] >= 1.9  # retry_after honoured (the final edit included)


async def test_refused_edit_falls_back_to_a_new_message(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    text = " ".join(f"w{i}" for i in range(500))
    fake_llm.script.append({"text": text, "word_delay": 0.004})
    cfg = gateway_config(fake_tg, fake_llm, {**OPEN_DM, "streaming": "partial"})
    async with telegram_gateway(tmp_path, cfg):
        fake_tg.text_update("go")
        first = await fake_tg.wait_for("sendMessage", timeout=10)
        # The user deletes the preview: Telegram now refuses edits to it.
        fake_tg.messages.pop(next(k for k in fake_tg.messages if k[0] == "42"))
        expected = format_for_telegram(text, 4000)
        await fake_tg.wait_until(lambda _: final_texts(fake_tg) == expected, timeout=30)
    refused = [
        r for r in fake_tg.requests if r["method"] == "editMessageText" and r["status"] == 400
    ]
    assert refused, "the edit to the deleted preview was not attempted"
    sends = [c for c in preview_calls(fake_tg) if c["method"] == "sendMessage"]
    assert len(sends) >= 2 and sends[0]["params"] == first


async def test_short_answer_is_not_previewed_and_renders_as_before(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    fake_llm.script.append({"text": "Hello **there**"})
    cfg = gateway_config(fake_tg, fake_llm, {**OPEN_DM, "streaming": "partial"})
    async with telegram_gateway(tmp_path, cfg):
        fake_tg.text_update("hi")
        await fake_tg.wait_for("sendMessage", timeout=10)
    assert final_texts(fake_tg) == ["Hello <b>there</b>"]
    assert not fake_tg.calls("editMessageText")


@pytest.fixture
def test_tools() -> Iterator[None]:
    with lt.registered():
        yield


@pytest.mark.usefixtures("test_tools")
async def test_progress_draft_shows_tool_lines_then_goes(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    nap = {"name": "progress-nap", "seconds": 3.6}
    fake_llm.script += [
        {"tool_calls": [{"name": "test_sleep", "arguments": nap}]},
        {"text": "All **done**"},
    ]
    streaming = {"mode": "progress", "progress": {"toolProgress": True}}
    cfg = gateway_config(fake_tg, fake_llm, {**OPEN_DM, "streaming": streaming})
    async with telegram_gateway(tmp_path, cfg):
        fake_tg.text_update("nap please")
        await fake_tg.wait_for("sendMessage", lambda p: p["text"] == "All <b>done</b>", timeout=15)
        await fake_tg.wait_for("deleteMessage", timeout=5)
    draft = fake_tg.calls("sendMessage")[0]
    assert "Working" in draft["text"] and "🛠️ test_sleep" in draft["text"]
    shown = [draft["text"], *(e["text"] for e in fake_tg.edits())]
    assert any("✅ test_sleep" in s for s in shown)  # the line turned done before the end
    assert final_texts(fake_tg) == ["All <b>done</b>"]  # the draft is gone
