"""Discord that feels native (issue 20): threads keep their own history, `autoThread`, preview
edits (PATCH, 429 honoured by discord.py), ack reactions — fake Discord ↔ discord.py ↔ gateway."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.channels.test_discord_e2e import discord_runner, fly_guide_config
from tests.fakes import discord as fd
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import FakeLLM
from tests.harness import LiveGateway, live_gateway


def prompt_of(llm: FakeLLM, index: int = -1) -> str:
    return json.dumps(llm.bodies[index]["messages"])


@pytest.fixture
async def gateway(
    tmp_path: Path, fake_discord_bot: FakeDiscord, fake_llm: FakeLLM, request: pytest.FixtureRequest
) -> AsyncIterator[LiveGateway]:
    config = fly_guide_config(fake_llm.url)
    discord = config["channels"]["discord"]
    discord.update(getattr(request, "param", {}))
    # By id too: a thread inherits its parent's entry, which policy finds by the parent's id.
    discord["guilds"][str(fd.GUILD_ID)]["channels"][str(fd.TEXT_CH)] = {"allow": True}
    async with live_gateway(tmp_path, config) as live:
        await discord_runner(live).wait_for_status(lambda s: s.connected)
        yield live


async def test_thread_conversation_keeps_its_own_history(
    gateway: LiveGateway, fake_discord_bot: FakeDiscord, fake_llm: FakeLLM
) -> None:
    fake = fake_discord_bot
    fake_llm.script += [{"text": "in thread 1"}, {"text": "in channel"}, {"text": "in thread 2"}]
    await fake.message_create(
        fd.message("thread secret banana", fd.THREAD_CH, guild_id=fd.GUILD_ID)
    )
    await fake.wait_rest("POST", f"/channels/{fd.THREAD_CH}/messages", timeout=15)
    await fake.message_create(fd.message("channel talk apple", fd.TEXT_CH, guild_id=fd.GUILD_ID))
    await fake.wait_rest("POST", f"/channels/{fd.TEXT_CH}/messages", timeout=15)
    await fake.message_create(fd.message("what did I say?", fd.THREAD_CH, guild_id=fd.GUILD_ID))
    reply = await fake.wait_rest("POST", f"/channels/{fd.THREAD_CH}/messages", count=2, timeout=15)
    assert reply["json"]["content"] == "in thread 2"  # replies stay in the thread
    thread_prompt = prompt_of(fake_llm)
    assert "thread secret banana" in thread_prompt and "in thread 1" in thread_prompt
    assert "channel talk apple" not in thread_prompt
    assert "thread secret banana" not in prompt_of(fake_llm, 1)
    keys = {r.key for r in gateway.gateway.extensions["agents"].store.for_agent("main").rows()}
    assert f"agent:main:discord:channel:{fd.THREAD_CH}" in keys
    assert f"agent:main:discord:channel:{fd.TEXT_CH}" in keys


@pytest.mark.parametrize(
    "gateway",
    [{"streaming": "off"}],
    indirect=True,
)
async def test_auto_thread_opens_a_thread_per_conversation(
    gateway: LiveGateway, fake_discord_bot: FakeDiscord, fake_llm: FakeLLM
) -> None:
    fake = fake_discord_bot
    section = gateway.gateway.loaded.config.channels.discord
    assert section is not None
    guild = section.guilds[str(fd.GUILD_ID)]
    for entry in guild.channels.values():  # the live config, read per message
        entry.auto_thread = True
    fake_llm.script.append({"text": "answered in the thread"})
    starter = fd.message("Deploy plan for friday\nmore lines", fd.TEXT_CH, guild_id=fd.GUILD_ID)
    await fake.message_create(starter)
    path = f"/channels/{starter['id']}/messages"  # the thread takes the starter's id
    reply = await fake.wait_rest("POST", path, timeout=15)
    assert reply["json"]["content"] == "answered in the thread"
    opened = fake.threads_opened[0]
    assert (
        opened["parent"] == str(fd.TEXT_CH)
        and opened["request"]["name"] == "Deploy plan for friday"
    )
    assert not fake.rest_calls("POST", f"/channels/{fd.TEXT_CH}/messages")
    keys = {r.key for r in gateway.gateway.extensions["agents"].store.for_agent("main").rows()}
    assert f"agent:main:discord:channel:{starter['id']}" in keys


@pytest.mark.parametrize("gateway", [{"streaming": "partial"}], indirect=True)
async def test_partial_preview_edits_in_place_and_survives_a_429(
    gateway: LiveGateway, fake_discord_bot: FakeDiscord, fake_llm: FakeLLM
) -> None:
    fake = fake_discord_bot
    text = " ".join(f"w{i}" for i in range(900))  # ~4,400 chars: three Discord messages
    fake_llm.script.append({"text": text, "word_delay": 0.003})
    first_patch: list[str] = []

    def patched(reqs: list[dict[str, Any]]) -> bool:
        return any(r.get("method") == "PATCH" for r in reqs if r["kind"] == "rest")

    await fake.message_create(fd.message("go long", fd.TEXT_CH, guild_id=fd.GUILD_ID))
    sent = await fake.wait_rest("POST", f"/channels/{fd.TEXT_CH}/messages", timeout=15)
    first_patch.append(str(sent["path"]))
    # The next edit of the preview is rate limited once: discord.py waits and retries.
    preview_id = next(mid for (ch, mid) in fake.messages if ch == str(fd.TEXT_CH))
    fake.rate_limit_next("PATCH", f"/channels/{fd.TEXT_CH}/messages/{preview_id}", 0.5)
    await fake.wait_until(patched, timeout=15)
    expected = gateway.gateway.extensions["channels"].get("discord").pipeline.format(text)

    def shown(_: object) -> list[str]:
        return [c for (ch, _m), c in sorted(fake.messages.items()) if ch == str(fd.TEXT_CH)]

    await fake.wait_until(lambda r: shown(r) == expected, timeout=30)
    patches = fake.rest_calls("PATCH")
    assert any(
        r["path"].endswith(preview_id) for r in patches
    )  # edited in place (the 429'd call retried)
    limited = [r for r in patches if r["path"].endswith(preview_id)]
    assert len(limited) >= 2
    assert len(expected) == 3 and all(len(p) <= 2000 for p in expected)


@pytest.mark.parametrize("gateway", [{"ackReaction": "👀"}], indirect=True)
async def test_ack_reaction_on_addressed_group_message(
    gateway: LiveGateway, fake_discord_bot: FakeDiscord, fake_llm: FakeLLM
) -> None:
    fake = fake_discord_bot
    fake_llm.script.append({"text": "seen"})
    msg = fd.message(
        f"<@{fd.BOT_ID}> look", fd.TEXT_CH, guild_id=fd.GUILD_ID, mentions=[fd.BOT_USER]
    )
    await fake.message_create(msg)
    await fake.wait_rest("POST", f"/channels/{fd.TEXT_CH}/messages", timeout=15)
    puts = [r["path"] for r in fake.rest_calls("PUT") if r["path"].startswith("/channels/")]
    assert puts == [f"/channels/{fd.TEXT_CH}/messages/{msg['id']}/reactions/👀/@me"]
    assert fake.reactions[(str(fd.TEXT_CH), msg["id"])] == ["👀"]
