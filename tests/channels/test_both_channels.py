"""Issue 4's "done": the Fly guide config plus a Telegram block, both channels in one gateway.

A message in the allowlisted fake Discord channel and a DM to the fake Telegram bot each get
an agent reply through the real libraries; an unknown Telegram DM gets a pairing code, the CLI
approves it and the next DM reaches the agent; channels.status reports both accounts.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import discord as fd
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import TOKEN as TG_TOKEN
from tests.fakes.telegram import FakeTelegram
from tests.fixtures import FLY_GUIDE
from tests.harness import ROOT, connected, gateway_env, live_gateway


@pytest.fixture
def fake_dc(fake_discord_bot: FakeDiscord) -> FakeDiscord:
    return fake_discord_bot


def config(llm: FakeLLM, tg: FakeTelegram) -> dict[str, Any]:
    cfg: dict[str, Any] = copy.deepcopy(json.loads(FLY_GUIDE.read_text()))
    guilds = cfg["channels"]["discord"]["guilds"]
    guilds[str(fd.GUILD_ID)] = guilds.pop("YOUR_GUILD_ID")
    cfg["agents"]["defaults"]["model"] = {"primary": "openai/gpt-test"}
    cfg["models"] = {"providers": {"openai": {"baseUrl": llm.url + "/v1", "apiKey": "sk-test"}}}
    cfg["gateway"]["bind"] = "loopback"
    cfg["channels"]["telegram"] = {"botToken": TG_TOKEN, "apiRoot": tg.url}
    return cfg


async def test_fly_guide_plus_telegram(
    tmp_path: Path, fake_dc: FakeDiscord, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    async with live_gateway(tmp_path, config(fake_llm, fake_tg)) as live:
        manager = live.gateway.extensions["channels"]
        await manager.get("discord").runner.wait_for_status(lambda s: s.connected)
        await manager.get("telegram").runner.wait_for_status(lambda s: s.connected)

        fake_llm.script.append({"text": "hello discord"})
        await fake_dc.message_create(
            fd.message("hi from discord", fd.TEXT_CH, guild_id=fd.GUILD_ID)
        )
        post = await fake_dc.wait_rest("POST", f"/channels/{fd.TEXT_CH}/messages", timeout=15)
        assert post["json"]["content"] == "hello discord"

        fake_tg.text_update("hi from telegram", user_id=555, chat_id=555)
        pairing = await fake_tg.wait_for("sendMessage", lambda p: p["chat_id"] == "555")
        match = re.search(r"<code>([A-Z2-9]{8})</code>", pairing["text"])
        assert match, pairing["text"]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "pairing",
            "approve",
            "telegram",
            match.group(1),
            env=gateway_env(tmp_path),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, out.decode()

        fake_llm.script.append({"text": "hello telegram"})
        fake_tg.text_update("now?", user_id=555, chat_id=555)
        reply = await fake_tg.wait_for("sendMessage", lambda p: p["text"] == "hello telegram")
        assert reply["chat_id"] == "555"

        async with connected(live) as client:
            status = await client.call("channels.status", {})
    assert status["channelOrder"] == ["discord", "telegram"]
    for channel in ("discord", "telegram"):
        account = status["channelAccounts"][channel][0]
        assert account["running"] and account["connected"] and account["healthState"] == "healthy"
    assert status["channels"]["telegram"]["bot"]["username"] == "claw_test_bot"
    assert len(fake_llm.requests) == 2  # the pairing message never reached the model
