"""The silent memory flush before a compaction (issue 15 × issue 14): once per compaction
cycle the agent gets a private turn to write its notes with the real fs tools; nothing of it
reaches the user or the transcript, and a failing flush never blocks the reply."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from gateway.agents.compaction import SUMMARY_SYSTEM
from tests.e2e.conftest import config
from tests.e2e.script import Turn, call, responder, turn_of
from tests.fakes.llm import FakeLLM
from tests.harness import chat, connected, final_text, live_gateway

FLUSH = "Pre-compaction memory flush"
DOG = "The user's dog is called Rex-42."


def message(turn: int) -> str:
    head = f"turn {turn}: " + ("my dog is called Rex-42. " if turn == 1 else "")
    return (head + " ".join(f"w{turn}-{i}" for i in range(600)))[:2048]


def play(turn: Turn) -> dict[str, Any]:
    if turn.system.startswith(SUMMARY_SYSTEM[:40]):
        return {"text": "## Goal and user preferences\n- chatting (dog: Rex-42)"}
    if FLUSH in turn.user:
        if not turn.steps:
            day = re.search(r"memory/(\d{4}-\d\d-\d\d)\.md", turn.user)
            assert day, turn.user
            return call("write", path=f"memory/{day.group(1)}.md", content=f"- {DOG}\n")
        return {"text": "NO_REPLY"}
    return {"text": "noted"}


def flush_config(llm: FakeLLM) -> dict[str, Any]:
    cfg = config(llm)
    cfg["models"]["providers"]["openai"]["models"] = [{"id": "gpt-test", "contextWindow": 16_000}]
    cfg["agents"]["defaults"]["compaction"] = {"memoryFlush": {"softThresholdTokens": 1_500}}
    return cfg


def kind(body: dict[str, Any]) -> str:
    turn = turn_of(body)
    if turn.system.startswith(SUMMARY_SYSTEM[:40]):
        return "summary"
    if FLUSH in turn.user:
        return "flush" if not turn.steps else "flush-step"
    return "turn"


async def test_flush_writes_notes_once_per_compaction_and_stays_invisible(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.realistic_usage = True
    fake_llm.responder = responder(play)
    async with live_gateway(tmp_path, flush_config(fake_llm)) as live, connected(live) as client:
        replies = [final_text(await chat(client, message(t), timeout=15)) for t in range(1, 31)]
        history = await client.call("chat.history", {"sessionKey": "main"})
        sessions = await client.call("sessions.list", {})
    kinds = [kind(b) for b in fake_llm.bodies]
    compactions = sessions["sessions"][0]["compactionCount"]
    assert replies == ["noted"] * 30
    assert compactions >= 2
    # One flush per compaction cycle, each before that cycle's summary (the last cycle may
    # have flushed in the soft zone without compacting yet).
    assert kinds.count("summary") == compactions
    order = [k for k in kinds if k in ("flush", "summary")]
    assert order in (
        ["flush", "summary"] * compactions,
        ["flush", "summary"] * compactions + ["flush"],
    )
    flush_body = next(b for b in fake_llm.bodies if kind(b) == "flush")
    assert "# Memory flush" in turn_of(flush_body).system
    assert "write" in turn_of(flush_body).tools
    # The note is on disk; nothing of the flush is in the conversation.
    notes = list((tmp_path / "workspace" / "memory").glob("*.md"))
    assert notes and DOG in notes[0].read_text()
    shown = json.dumps(history["messages"])
    assert FLUSH not in shown and "NO_REPLY" not in shown and DOG not in shown


async def test_a_failing_flush_never_blocks_the_reply(
    tmp_path: Path, fake_llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    fake_llm.realistic_usage = True

    def broken(turn: Turn) -> dict[str, Any]:
        return {"status": 500} if FLUSH in turn.user else play(turn)

    fake_llm.responder = responder(broken)
    async with live_gateway(tmp_path, flush_config(fake_llm)) as live, connected(live) as client:
        replies = [final_text(await chat(client, message(t), timeout=15)) for t in range(1, 21)]
        sessions = await client.call("sessions.list", {})
    assert replies == ["noted"] * 20
    compactions = sessions["sessions"][0]["compactionCount"]
    assert compactions >= 1
    # Tried once per cycle (the provider's own retries aside), never again on every turn.
    failed = [r for r in caplog.records if "memory flush of agent:main:main failed" in r.message]
    assert len(failed) in (compactions, compactions + 1)
    assert not (tmp_path / "workspace" / "memory").exists() or not list(
        (tmp_path / "workspace" / "memory").glob("*.md")
    )
