"""Issue 15, done means, from Telegram: "remember …" is written to the memory files with the
fs tools; after /new, memory_search finds it and the answer says 3 May. web_fetch returns a
local test page's article text, and the cloud metadata address is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gateway.agents import roster as rv
from tests.e2e.conftest import OWNER, config, to_chat
from tests.e2e.script import Turn, call, responder, turn_of
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import FakeTelegram
from tests.fakes.web import PageServer
from tests.harness import live_gateway

FACT = "- My sister's birthday is 3 May."


def remember_and_recall(turn: Turn) -> dict[str, Any]:
    if turn.user.startswith("remember"):
        if not turn.steps:
            return call("write", path="MEMORY.md", content=f"# Memory\n\n{FACT}\n")
        return {"text": "Noted — saved to MEMORY.md."}
    if "birthday?" in turn.user:
        if not turn.steps:
            return call("memory_search", query="sister birthday")
        hits = json.loads(turn.steps[-1][2])["results"]
        found = [h["snippet"] for h in hits if "3 May" in h["snippet"]]
        if found:
            return {"text": f"Your sister's birthday is on 3 May (from {hits[0]['path']})."}
        return {"text": "I have nothing about that in my memory."}
    return {"text": "Hi! Fresh session."}


async def test_remember_then_recall_after_new(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    fake_llm.responder = responder(remember_and_recall)
    async with live_gateway(tmp_path, config(fake_llm, fake_tg)) as live:
        runner = live.gateway.extensions["channels"].get("telegram").runner
        await runner.wait_for_status(lambda s: s.connected)

        def sent() -> list[dict[str, Any]]:
            return [c for c in fake_tg.calls("sendMessage") if to_chat(OWNER)(c)]

        async def say(text: str) -> str:
            before = len(sent())
            fake_tg.text_update(text)
            await fake_tg.wait_until(lambda _: len(sent()) > before, timeout=15)
            return str(sent()[-1]["text"])

        assert "saved" in await say("remember that my sister's birthday is 3 May")
        workspace = rv.workspace_dir(live.gateway.loaded.config, "main", tmp_path)
        assert FACT in (workspace / "MEMORY.md").read_text()
        await say("/new")
        answer = await say("when is my sister's birthday?")
        recall = turn_of(fake_llm.bodies[-1])
    assert [name for name, _, _ in recall.steps] == ["memory_search"]
    # The new session starts without the old conversation: only the memory file knows.
    assert "remember that my sister" not in json.dumps(fake_llm.bodies[-1]["messages"][1:])
    assert "3 May" in answer and "MEMORY.md" in answer


def fetch_both(pages: PageServer) -> Any:
    def play(turn: Turn) -> dict[str, Any]:
        if len(turn.steps) == 0:
            return call("web_fetch", url=f"{pages.url}/article")
        if len(turn.steps) == 1:
            return call("web_fetch", url="http://169.254.169.254/latest/meta-data/")
        article, metadata = turn.steps[0][2], turn.steps[1][2]
        return {"text": f"ARTICLE:\n{article}\n\nMETADATA:\n{metadata}"}

    return play


async def test_web_fetch_reads_the_article_and_refuses_metadata(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM, pages: PageServer
) -> None:
    fake_llm.responder = responder(fetch_both(pages))
    # The test-only allowlist lets web_fetch reach the local page server (127.0.0.1).
    ssrf = {"fetch": {"ssrfPolicy": {"allowedHostnames": ["127.0.0.1"]}}}
    cfg = config(fake_llm, fake_tg, tools={"web": ssrf})
    async with live_gateway(tmp_path, cfg) as live:
        runner = live.gateway.extensions["channels"].get("telegram").runner
        await runner.wait_for_status(lambda s: s.connected)
        fake_tg.text_update("what does that moth article say?")
        reply = await fake_tg.wait_for("sendMessage", to_chat(OWNER), timeout=15)
    text = reply["text"]
    article, metadata = text.split("METADATA:")
    assert "Bogong moths travel more than a thousand kilometres" in article
    assert "SCRIPT-NOISE" not in article and "Subscribe to our newsletter" not in article
    assert "169.254.169.254" in metadata and "refused" in metadata
