"""Exec approvals as Discord buttons to the owner (tools.md §3.4): real discord.py ↔ fake
Discord ↔ real gateway ↔ fake model calling `exec`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from channels.approvals import GONE, NOT_AUTHORIZED
from gateway.agents.tools.approvals import broker
from tests.fakes import discord as fd
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import FakeLLM, tool_results
from tests.harness import live_gateway

OWNER = fd.USER_ID
PROMPTS = f"/channels/{fd.DM_CH}/messages"


def _config(llm: FakeLLM) -> dict[str, Any]:
    return {
        "gateway": {"mode": "local"},
        "models": {"providers": {"openai": {"baseUrl": llm.url + "/v1", "apiKey": "sk-test"}}},
        "agents": {"defaults": {"model": {"primary": "openai/gpt-test"}}},
        "channels": {"discord": {"dmPolicy": "allowlist", "allowFrom": [str(OWNER)]}},
        "tools": {"exec": {"mode": "ask"}},
    }


def _has_buttons(call: dict[str, Any]) -> bool:
    return bool((call.get("json") or {}).get("components"))


async def _press(fake: FakeDiscord, custom_id: str, mid: str, user_id: int) -> str:
    """Press a button as `user_id`; the ephemeral answer the bot gave."""
    payload = fd.button_press(custom_id, mid, author=fd.user(user_id, f"user{user_id}"))
    await fake.interaction_create(payload)
    path = f"/interactions/{payload['id']}/{payload['token']}/callback"
    call = await fake.wait_rest("POST", path, timeout=5)
    data = call["json"]["data"]
    assert data["flags"] & 64  # only the presser sees it
    return str(data["content"])


async def test_owner_dm_gets_buttons_and_only_the_owner_press_counts(
    tmp_path: Path, fake_discord_bot: FakeDiscord, fake_llm: FakeLLM
) -> None:
    fake = fake_discord_bot
    fake_llm.script += [
        {"tool_calls": [{"name": "exec", "arguments": {"command": "echo ok-`echo 7`"}}]},
        {"text": "all done"},
    ]
    async with live_gateway(tmp_path, _config(fake_llm)) as live:
        rt = live.gateway.extensions["channels"].get("discord")
        await rt.runner.wait_for_status(lambda s: s.connected)
        await fake.message_create(fd.message("run it", fd.DM_CH))
        prompt = await fake.wait_rest("POST", PROMPTS, _has_buttons, timeout=15)
        body = prompt["json"]
        assert "Exec approval needed" in body["content"]
        assert "echo ok-ˋecho 7ˋ" in body["content"]  # backticks kept visible, no broken fence
        buttons = body["components"][0]["components"]
        assert [b["label"] for b in buttons] == ["Allow once", "Deny"]
        allow = buttons[0]["custom_id"]
        mid = next(m for (c, m), text in fake.messages.items() if text == body["content"])
        assert await _press(fake, allow, mid, user_id=7) == NOT_AUTHORIZED
        assert len(broker(live.gateway).pending) == 1
        assert await _press(fake, allow, mid, user_id=OWNER) == "Allowed once."
        await fake.wait_rest(
            "POST", PROMPTS, lambda c: c["json"].get("content") == "all done", timeout=10
        )
        assert [r["text"].strip() for r in tool_results(fake_llm.bodies[-1])] == ["ok-7"]
        edit = await fake.wait_rest("PATCH", f"{PROMPTS}/{mid}", timeout=5)
        assert edit["json"]["content"].startswith("✅ Allowed once by `discord:42`")
        assert edit["json"]["components"] == []  # the buttons are gone
        assert await _press(fake, allow, mid, user_id=OWNER) == GONE


async def test_deny_button_gives_the_model_the_denial(
    tmp_path: Path, fake_discord_bot: FakeDiscord, fake_llm: FakeLLM
) -> None:
    fake = fake_discord_bot
    fake_llm.script += [
        {"tool_calls": [{"name": "exec", "arguments": {"command": "echo no"}}]},
        {"text": "all done"},
    ]
    async with live_gateway(tmp_path, _config(fake_llm)) as live:
        rt = live.gateway.extensions["channels"].get("discord")
        await rt.runner.wait_for_status(lambda s: s.connected)
        await fake.message_create(fd.message("run it", fd.DM_CH))
        prompt = await fake.wait_rest("POST", PROMPTS, _has_buttons, timeout=15)
        deny = prompt["json"]["components"][0]["components"][1]["custom_id"]
        content = prompt["json"]["content"]
        mid = next(m for (c, m), text in fake.messages.items() if text == content)
        assert await _press(fake, deny, mid, user_id=OWNER) == "Denied."
        await fake.wait_rest(
            "POST", PROMPTS, lambda c: c["json"].get("content") == "all done", timeout=10
        )
        (result,) = tool_results(fake_llm.bodies[-1])
        assert "user-denied" in result["text"]
