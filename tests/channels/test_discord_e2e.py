"""End to end: fake Discord ↔ discord.py ↔ our adapter ↔ pipeline ↔ agents ↔ fake model.

Configuration is the Fly guide's example (allowlisted guild, channel `general`,
`requireMention: false`) with the guild id of the fake and the model pointed at `FakeLLM`.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import discord
import pytest

from channels.discord import DiscordChannel, resolve_token
from channels.pipeline import Pipeline
from gateway.agents.commands import NEW_SESSION_REPLY
from tests.fakes import discord as fd
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import FakeLLM
from tests.harness import LiveGateway, live_gateway

# The same shared fixture tests/gateway/test_config.py loads.
FLY_GUIDE = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "fly-guide-openclaw.json"


def fly_guide_config(llm_url: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(FLY_GUIDE.read_text())
    config = copy.deepcopy(config)
    guilds = config["channels"]["discord"]["guilds"]
    guilds[str(fd.GUILD_ID)] = guilds.pop("YOUR_GUILD_ID")
    config["agents"]["defaults"]["model"] = {"primary": "openai/gpt-test"}
    config["models"] = {
        "providers": {"openai": {"baseUrl": llm_url + "/v1", "apiKey": "sk-test-discord-e2e"}}
    }
    config["gateway"]["bind"] = "loopback"
    return config


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    srv = FakeDiscord()
    await srv.start()
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket,
        "DEFAULT_GATEWAY",
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY,
    )
    monkeypatch.setenv("DISCORD_API_URL", srv.api_base)
    monkeypatch.setenv("DISCORD_BOT_TOKEN", srv.token)
    monkeypatch.setattr(DiscordChannel, "guild_ready_timeout", 0.05)
    yield srv
    await srv.stop()


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLM]:
    srv = FakeLLM()
    await srv.start()
    yield srv
    await srv.stop()


@contextlib.asynccontextmanager
async def discord_account(live: LiveGateway) -> AsyncIterator[DiscordChannel]:
    """The Discord account as the manager wires it: adapter → `Pipeline.handle`."""
    gw = live.gateway
    section = gw.loaded.config.channels.discord
    assert section is not None
    pipeline: Pipeline | None = None
    channel = DiscordChannel(
        gateway=gw,
        account_id="default",
        token=resolve_token(section),
        config=section,
        on_message=lambda msg, transport: _require(pipeline).handle(msg, transport),
    )
    pipeline = Pipeline(gw, "discord", "default", status=channel.status())
    await channel.start()
    try:
        await channel.wait_for_status(lambda s: s.connected)
        yield channel
    finally:
        await channel.stop()
        await pipeline.drain()


def _require(pipeline: Pipeline | None) -> Pipeline:
    assert pipeline is not None
    return pipeline


@pytest.fixture
async def running(
    tmp_path: Path, fake: FakeDiscord, llm: FakeLLM
) -> AsyncIterator[tuple[FakeDiscord, FakeLLM]]:
    async with live_gateway(tmp_path, fly_guide_config(llm.url)) as live:
        async with discord_account(live):
            yield fake, llm


def posts(fake: FakeDiscord, channel_id: int) -> list[dict[str, Any]]:
    return fake.rest_calls("POST", f"/channels/{channel_id}/messages")


async def test_allowlisted_channel_gets_agent_reply(running: tuple[FakeDiscord, FakeLLM]) -> None:
    fake, llm = running
    llm.script.append({"text": "Hello from the agent"})
    await fake.message_create(fd.message("hi there, no mention", fd.TEXT_CH, guild_id=fd.GUILD_ID))
    reply = await fake.wait_rest("POST", f"/channels/{fd.TEXT_CH}/messages", timeout=15)
    assert reply["json"]["content"] == "Hello from the agent"
    typing = fake.rest_calls("POST", f"/channels/{fd.TEXT_CH}/typing")
    assert typing and fake.requests.index(typing[0]) < fake.requests.index(reply)
    prompt = json.dumps(llm.requests[-1])
    assert "hi there, no mention" in prompt


async def test_other_channel_is_ignored(running: tuple[FakeDiscord, FakeLLM]) -> None:
    fake, llm = running
    llm.script.append({"text": "only for general"})
    await fake.message_create(fd.message("anyone?", fd.OTHER_CH, guild_id=fd.GUILD_ID))
    await fake.message_create(fd.message("and here", fd.TEXT_CH, guild_id=fd.GUILD_ID))
    reply = await fake.wait_rest("POST", f"/channels/{fd.TEXT_CH}/messages", timeout=15)
    assert reply["json"]["content"] == "only for general"
    assert len(llm.requests) == 1 and "anyone?" not in json.dumps(llm.requests[0])
    assert not posts(fake, fd.OTHER_CH)
    assert not fake.rest_calls("POST", f"/channels/{fd.OTHER_CH}/typing")


async def test_long_reply_is_chunked_at_2000(running: tuple[FakeDiscord, FakeLLM]) -> None:
    fake, llm = running
    long_text = " ".join(f"word{i:04d}" for i in range(500))  # 4,499 chars on one line
    llm.script.append({"text": long_text})
    await fake.message_create(fd.message("tell me a lot", fd.TEXT_CH, guild_id=fd.GUILD_ID))
    await fake.wait_rest("POST", f"/channels/{fd.TEXT_CH}/messages", count=3, timeout=15)
    chunks = [p["json"]["content"] for p in posts(fake, fd.TEXT_CH)]
    assert len(chunks) == 3 and all(len(c) <= 2000 for c in chunks)
    assert " ".join(c.strip() for c in chunks).split() == long_text.split()


async def test_new_command_resets_without_a_model_turn(
    running: tuple[FakeDiscord, FakeLLM],
) -> None:
    fake, llm = running
    await fake.message_create(fd.message("/new", fd.TEXT_CH, guild_id=fd.GUILD_ID))
    reply = await fake.wait_rest("POST", f"/channels/{fd.TEXT_CH}/messages", timeout=15)
    assert reply["json"]["content"] == NEW_SESSION_REPLY
    assert not llm.requests


async def test_unknown_dm_gets_a_pairing_code(running: tuple[FakeDiscord, FakeLLM]) -> None:
    fake, llm = running
    await fake.message_create(fd.message("hello?", fd.DM_CH))
    reply = await fake.wait_rest("POST", f"/channels/{fd.DM_CH}/messages", timeout=15)
    text = reply["json"]["content"]
    assert "Your Discord user id: 42" in text and "Pairing code:" in text
    assert not llm.requests
