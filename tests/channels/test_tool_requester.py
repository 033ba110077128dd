"""Channel turns carry who asked: owners get the machine tools, strangers do not (tools.md §2.8)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tests.agents.loop_tools as lt
from tests.channels.conftest import gateway_config, telegram_gateway
from tests.fakes.llm import FakeLLM, tool_names
from tests.fakes.telegram import FakeTelegram


@pytest.fixture(autouse=True)
def _test_tools() -> Iterator[None]:
    with lt.registered():
        yield


def sent_to(chat: int):  # type: ignore[no-untyped-def]
    return lambda p: p.get("chat_id") == str(chat)


@pytest.mark.parametrize(
    ("telegram", "extra", "owner"),
    [
        ({"dmPolicy": "allowlist", "allowFrom": [77]}, {}, True),
        ({"dmPolicy": "open", "allowFrom": ["*"]}, {}, False),
        (
            {"dmPolicy": "open", "allowFrom": ["*"]},
            {"commands": {"ownerAllowFrom": ["telegram:77"]}},
            True,
        ),
        (
            {"dmPolicy": "allowlist", "allowFrom": [77]},
            {"commands": {"ownerAllowFrom": ["telegram:5"]}},
            False,
        ),
    ],
    ids=["allowFrom-id", "open-dm-stranger", "ownerAllowFrom", "not-in-ownerAllowFrom"],
)
async def test_runtime_tools_only_for_the_owner(
    tmp_path: Path,
    fake_tg: FakeTelegram,
    fake_llm: FakeLLM,
    telegram: dict[str, Any],
    extra: dict[str, Any],
    owner: bool,
) -> None:
    cfg = gateway_config(fake_tg, fake_llm, telegram, **extra)
    async with telegram_gateway(tmp_path, cfg):
        fake_tg.text_update("hi", user_id=77, chat_id=77)
        await fake_tg.wait_for("sendMessage", sent_to(77), timeout=10)
    names = tool_names(fake_llm.bodies[-1])
    assert "test_write" in names  # not a machine tool: everyone keeps it
    assert ("test_runtime" in names) is owner


async def test_typing_continues_while_a_tool_runs(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    nap = {"name": "typing-nap", "seconds": 2.2}
    fake_llm.script += [
        {"tool_calls": [{"name": "test_sleep", "arguments": nap}]},
        {"text": "rested"},
    ]
    # `streaming: {}`: Telegram's default mode (progress).
    telegram = {"dmPolicy": "allowlist", "allowFrom": [42], "streaming": {}}
    cfg = gateway_config(fake_tg, fake_llm, telegram)
    cfg["agents"]["defaults"]["typingIntervalSeconds"] = 1
    async with telegram_gateway(tmp_path, cfg):
        fake_tg.text_update("take a nap")
        await fake_tg.wait_for("sendMessage", lambda p: p["text"] == "rested", timeout=10)
        await fake_tg.wait_for("deleteMessage", timeout=5)
    assert len(fake_tg.calls("sendChatAction")) >= 3  # kept up during the 2 s tool
    # Telegram's default `progress` mode: a status draft for the long turn, removed at the end.
    draft = next(p for p in fake_tg.calls("sendMessage") if p["text"] != "rested")
    assert "Working" in draft["text"]
    deleted = fake_tg.calls("deleteMessage")[0]
    assert str(deleted["message_id"]) not in {"", None}
