"""The reference `openclaw message send|react|poll` (openclaw@2026.9.6) against our gateway, with
Telegram connected to the fake Bot API: the CLI hands each action to the gateway as
`message.action`."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.channels.conftest import _fast_telegram, gateway_config, telegram_gateway
from tests.compat.reference import Reference, run_openclaw
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import FakeTelegram
from tests.harness import TOKEN, LiveGateway

pytestmark = pytest.mark.compat
__all__ = ["_fast_telegram"]  # the channel suite's autouse short polls and back-offs

CLI_TIMEOUT_S = 60


def describe(result: Any) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


async def message(live: LiveGateway, *args: str) -> Any:
    """`openclaw message <args>` pointed at the live gateway the way its docs say (env)."""
    env = {"OPENCLAW_GATEWAY_URL": live.ws, "OPENCLAW_GATEWAY_TOKEN": TOKEN}
    return await asyncio.to_thread(run_openclaw, ["message", *args], CLI_TIMEOUT_S, env=env)


async def test_openclaw_message_send_and_react_reach_telegram(
    reference: Reference, tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    async with telegram_gateway(tmp_path, gateway_config(fake_tg, fake_llm)) as live:
        sent = await message(
            live, "send", "--channel", "telegram", "--target", "42",
            "--message", "deploy **done**", "--json",
        )  # fmt: skip
        assert sent.returncode == 0, describe(sent)
        out = json.loads(sent.stdout[sent.stdout.index("{") :])
        topic = await message(
            live, "send", "--channel", "telegram", "--target", "-1001234:topic:7",
            "--message", "in the topic",
        )  # fmt: skip
        reacted = await message(
            live, "react", "--channel", "telegram", "--target", "42",
            "--message-id", out["messageId"], "--emoji", "👍", "--json",
        )  # fmt: skip
        # An action our channels cannot carry out is refused by name, never faked.
        refused = await message(
            live, "poll", "--channel", "telegram", "--target", "42",
            "--poll-question", "Lunch?", "--poll-option", "Pizza", "--poll-option", "Sushi",
        )  # fmt: skip
    calls = fake_tg.calls("sendMessage")
    assert calls[0]["chat_id"] == "42" and calls[0]["text"] == "deploy <b>done</b>"
    assert out["action"] == "send" and out["channel"] == "telegram", out
    assert out["handledBy"] == "plugin" and out["payload"]["ok"] is True, out
    assert out["messageId"] == out["payload"]["messageId"] and out["payload"]["chatId"] == "42"
    assert topic.returncode == 0, describe(topic)
    shown = re.search(r"Sent via telegram\. Message ID: (\d+)", topic.stdout)
    assert shown and shown.group(1) != out["messageId"], describe(topic)
    assert (calls[1]["chat_id"], calls[1]["message_thread_id"]) == ("-1001234", "7")
    assert reacted.returncode == 0, describe(reacted)
    react_out = json.loads(reacted.stdout[reacted.stdout.index("{") :])
    assert react_out["payload"]["added"] == "👍" and react_out["payload"]["ok"] is True
    assert fake_tg.reactions[("42", int(out["messageId"]))] == ["👍"]
    assert refused.returncode != 0, describe(refused)
    assert "message action 'poll' is not supported by clawgate" in refused.stderr, describe(refused)
    assert len(calls) == 2
