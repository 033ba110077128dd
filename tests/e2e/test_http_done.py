"""Issue 21, done means, on one gateway that also runs Telegram: the unmodified synchronous
`openai.OpenAI` client streams an answer from /v1/chat/completions (with a stranger's tool
policy), and a curl-like POST /hooks/agent makes the agent post to the Telegram chat."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import openai

from tests.e2e.conftest import OWNER, SECRETS, config, to_chat
from tests.e2e.script import Turn, responder
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import FakeTelegram
from tests.harness import TOKEN, live_gateway

HOOK_TOKEN = "hook-secret-0123456789abcdef"


def play(turn: Turn) -> dict[str, Any]:
    if "Deploy finished" in turn.user:
        return {"text": "✅ The deploy finished: 3 services updated."}
    return {"text": f"Streaming hello to you, with {len(turn.tools)} tools"}


def stream(port: int) -> list[str]:
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=TOKEN, max_retries=0)
    chunks = client.chat.completions.create(
        model="openclaw:main", messages=[{"role": "user", "content": "hello"}], stream=True
    )
    return [c.choices[0].delta.content or "" for c in chunks if c.choices]


async def test_openai_sdk_streams_and_hook_posts_to_telegram(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    fake_llm.responder = responder(play)
    cfg = config(
        fake_llm,
        fake_tg,
        gateway={"mode": "local", "http": {"endpoints": {"chatCompletions": {"enabled": True}}}},
        hooks={"enabled": True, "token": HOOK_TOKEN},
    )
    async with live_gateway(tmp_path, cfg) as live:
        runner = live.gateway.extensions["channels"].get("telegram").runner
        await runner.wait_for_status(lambda s: s.connected)
        deltas = await asyncio.to_thread(stream, live.port)
        api_tools = fake_llm.bodies[-1].get("tools") or []
        async with httpx.AsyncClient(base_url=live.http, timeout=10) as http:
            hook = await http.post(
                "/hooks/agent",
                json={"message": "Deploy finished: 3 services updated", "name": "CI",
                      "channel": "telegram", "to": str(OWNER)},
                headers={"Authorization": f"Bearer {HOOK_TOKEN}"},
            )  # fmt: skip
            posted = await fake_tg.wait_for("sendMessage", to_chat(OWNER), timeout=10)
            refused = await http.post(
                "/hooks/agent", json={"message": "x"}, headers={"Authorization": "Bearer nope"}
            )
    text = "".join(deltas)
    assert len([d for d in deltas if d]) > 1  # streamed, not one block
    assert text.startswith("Streaming hello to you")
    # The API caller is not the owner: no machine tools.
    offered = {t["function"]["name"] for t in api_tools}
    assert not {"exec", "process", "write", "edit"} & offered
    assert hook.status_code in (200, 202) and hook.json()["ok"] is True
    assert posted["text"] == "✅ The deploy finished: 3 services updated."
    assert refused.status_code == 401
    for secret in (*SECRETS, HOOK_TOKEN):
        assert secret not in text and secret not in hook.text
