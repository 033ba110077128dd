"""Reactions both ways and several bots per channel, on Telegram (issue 20)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.config.errors import ConfigError
from gateway.config.loader import load_config
from tests.channels.conftest import gateway_config, telegram_gateway
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import FakeTelegram
from tests.harness import connected, live_gateway

OPEN_DM = {"dmPolicy": "open", "allowFrom": ["*"]}


def user_text(llm: FakeLLM) -> str:
    messages = llm.bodies[-1]["messages"]
    content = [m for m in messages if m["role"] == "user"][-1]["content"]
    return content if isinstance(content, str) else " ".join(c.get("text", "") for c in content)


async def test_ack_and_status_reactions(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    cfg = gateway_config(
        fake_tg,
        fake_llm,
        OPEN_DM,
        messages={"ackReactionScope": "all", "statusReactions": {"enabled": True}},
    )
    async with telegram_gateway(tmp_path, cfg):
        fake_tg.text_update("hi")
        inbound = fake_tg.updates[-1]["message"]["message_id"]
        await fake_tg.wait_for("sendMessage", timeout=10)
        await fake_tg.wait_until(lambda _: len(fake_tg.calls("setMessageReaction")) >= 2)
    first, last = fake_tg.calls("setMessageReaction")[:2]
    assert int(first["message_id"]) == inbound
    assert first["reaction"] == [{"type": "emoji", "emoji": "👀"}]
    assert last["reaction"] == [{"type": "emoji", "emoji": "👍"}]  # done


async def test_default_scope_does_not_ack_dms(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    async with telegram_gateway(tmp_path, gateway_config(fake_tg, fake_llm, OPEN_DM)):
        fake_tg.text_update("hi")
        await fake_tg.wait_for("sendMessage", timeout=10)
    assert not fake_tg.calls("setMessageReaction")  # group-mentions: no DMs


async def test_user_reaction_reaches_the_agent_once(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    fake_llm.script += [{"text": "first answer"}, {"text": "second"}, {"text": "third"}]
    async with telegram_gateway(tmp_path, gateway_config(fake_tg, fake_llm, OPEN_DM)):
        fake_tg.text_update("hello")
        sent = await fake_tg.wait_for("sendMessage", timeout=10)
        bot_mid = max(mid for (chat, mid) in fake_tg.messages if chat == "42")
        assert fake_tg.messages[("42", bot_mid)] == sent["text"]
        # On the bot's message: queued for the session. On one it never sent: ignored.
        fake_tg.reaction_update(bot_mid, "👍", username="ann")
        fake_tg.reaction_update(5, "🔥")
        await fake_tg.wait_polls(len(fake_tg.polls) + 2)
        fake_tg.text_update("what did I think?")
        await fake_tg.wait_for("sendMessage", lambda p: p["text"] == "second", timeout=10)
        seen = user_text(fake_llm)
        fake_tg.text_update("again")
        await fake_tg.wait_for("sendMessage", lambda p: p["text"] == "third", timeout=10)
    assert f"Telegram reaction added: 👍 by Ann (@ann) on msg {bot_mid}" in seen
    assert "🔥" not in seen
    assert "reaction" not in user_text(fake_llm)  # given to the agent once


async def test_reaction_from_a_stranger_is_dropped(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    fake_llm.script += [{"text": "hi owner"}, {"text": "next"}]
    cfg = gateway_config(fake_tg, fake_llm, {"dmPolicy": "allowlist", "allowFrom": [42]})
    async with telegram_gateway(tmp_path, cfg):
        fake_tg.text_update("hello")
        await fake_tg.wait_for("sendMessage", timeout=10)
        bot_mid = max(mid for (chat, mid) in fake_tg.messages if chat == "42")
        fake_tg.reaction_update(bot_mid, "👍", user_id=999, chat_id=42)
        await fake_tg.wait_polls(len(fake_tg.polls) + 1)
        fake_tg.text_update("more")
        await fake_tg.wait_for("sendMessage", lambda p: p["text"] == "next", timeout=10)
    assert "reaction" not in user_text(fake_llm)


@pytest.fixture
async def second_tg() -> Any:
    fake = FakeTelegram(token="654321:SECOND-token")
    await fake.start()
    yield fake
    await fake.stop()


async def test_two_bots_answer_independently(
    tmp_path: Path, fake_tg: FakeTelegram, second_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    fake_llm.responder = lambda _api, body: {"text": f"reply #{len(fake_llm.requests)}"}
    telegram = {
        "dmPolicy": "open",
        "allowFrom": ["*"],
        "streaming": "off",
        "defaultAccount": "alpha",
        "accounts": {
            "alpha": {"botToken": fake_tg.token, "apiRoot": fake_tg.url},
            "beta": {
                "botToken": second_tg.token,
                "apiRoot": second_tg.url,
                "dmPolicy": "allowlist",
                "allowFrom": [42],
            },
        },
    }
    cfg = gateway_config(fake_tg, fake_llm, telegram)
    del cfg["channels"]["telegram"]["botToken"], cfg["channels"]["telegram"]["apiRoot"]
    cfg["agents"]["entries"] = {"main": {"default": True}, "beta-agent": {}}
    cfg["bindings"] = [
        {"agentId": "beta-agent", "match": {"channel": "telegram", "accountId": "beta"}}
    ]
    async with live_gateway(tmp_path, cfg) as live:
        manager = live.gateway.extensions["channels"]
        for account in ("alpha", "beta"):
            await manager.get("telegram", account).runner.wait_for_status(lambda s: s.connected)
        fake_tg.text_update("to alpha", user_id=7, chat_id=7)
        second_tg.text_update("to beta", user_id=42, chat_id=42)
        second_tg.text_update("stranger to beta", user_id=8, chat_id=8)
        a = await fake_tg.wait_for("sendMessage", timeout=10)
        b = await second_tg.wait_for("sendMessage", lambda p: p["chat_id"] == "42", timeout=10)
        async with connected(live) as ws:
            status = await ws.call("channels.status", {})
        async with httpx.AsyncClient() as http:
            ready = await http.get(f"{live.http}/readyz")
        store = live.gateway.extensions["agents"].store
        beta_rows = store.for_agent("beta-agent").rows()
        main_rows = store.for_agent("main").rows()
    assert a["chat_id"] == "7" and b["chat_id"] == "42"
    # The stranger is turned away by beta's own allowlist (no answer), alpha stays open.
    assert not [p for p in second_tg.calls("sendMessage") if p["chat_id"] == "8"]
    # Bindings by account: beta's chat ran on its bound agent, alpha's on the default one.
    assert [r.key for r in beta_rows] == ["agent:beta-agent:main"]
    assert [r.key for r in main_rows] == ["agent:main:main"]
    accounts = {a["accountId"]: a for a in status["channelAccounts"]["telegram"]}
    assert set(accounts) == {"alpha", "beta"}
    assert accounts["beta"]["dmPolicy"] == "allowlist" and accounts["alpha"]["dmPolicy"] == "open"
    assert all(a["connected"] for a in accounts.values())
    assert status["channelDefaultAccountId"]["telegram"] == "alpha"
    assert ready.status_code == 200


def test_two_accounts_with_one_token_are_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "openclaw.json"
    path.write_text(
        '{ gateway: { mode: "local" }, channels: { telegram: { accounts: {\n'
        '  one: { botToken: "1:a" },\n  two: { botToken: "1:a" } } } } }'
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "same bot token" in str(info.value)
    assert "accounts.one and accounts.two" in str(info.value)


def test_account_override_errors_name_the_account(tmp_path: Path) -> None:
    path = tmp_path / "openclaw.json"
    path.write_text(
        '{ gateway: { mode: "local" }, channels: { discord: { accounts: {\n'
        '  ops: { token: "x", dmPolicy: "sometimes" } } } } }'
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "accounts.ops.dmPolicy" in str(info.value)
