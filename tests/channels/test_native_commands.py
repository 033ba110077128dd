"""Native commands end to end (channels.md §5.2) through the real libraries and the fakes.

Discord: the gateway (channel manager) starts discord.py against the fake; at READY the core
set is synced with `PUT /applications/{app}/commands`; an INTERACTION_CREATE is deferred
(`POST /interactions/{id}/{token}/callback`, type 5) and answered with follow-ups
(`POST /webhooks/{app}/{token}`) carrying what the pipeline produced, under the same policy
and command authorization as typed messages. Telegram: `setMyCommands` with the same set,
skipped when native commands are off, trimmed on BOT_COMMANDS_TOO_MUCH.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from channels.command_auth import NOT_AUTHORIZED_REPLY
from channels.discord import DiscordChannel
from gateway.agents.commands import NATIVE_COMMANDS, NEW_SESSION_REPLY
from tests.channels.conftest import gateway_config, telegram_gateway
from tests.fakes import discord as fd
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import FakeTelegram
from tests.fixtures import FLY_GUIDE
from tests.harness import LiveGateway, live_gateway

CORE = [name for name, _ in NATIVE_COMMANDS]
EPHEMERAL = 64
DEFERRED = 5
Json = dict[str, Any]


@pytest.fixture
def fake(fake_discord_bot: FakeDiscord) -> FakeDiscord:
    return fake_discord_bot


@pytest.fixture
def llm(fake_llm: FakeLLM) -> FakeLLM:
    return fake_llm


def config(llm: FakeLLM, discord_section: Json | None = None, **root: Any) -> Json:
    """The Fly guide's config (guild allowlisted, channel `general`) on the fakes."""
    cfg: Json = copy.deepcopy(json.loads(FLY_GUIDE.read_text()))
    section = cfg["channels"]["discord"]
    section["guilds"][str(fd.GUILD_ID)] = section["guilds"].pop("YOUR_GUILD_ID")
    section.update(discord_section or {})
    cfg["agents"]["defaults"]["model"] = {"primary": "openai/gpt-test"}
    cfg["models"] = {"providers": {"openai": {"baseUrl": llm.url + "/v1", "apiKey": "sk-test"}}}
    cfg["gateway"]["bind"] = "loopback"
    cfg.update(root)
    return cfg


def runner(live: LiveGateway) -> DiscordChannel:
    rt = live.gateway.extensions["channels"].get("discord")
    assert rt is not None and isinstance(rt.runner, DiscordChannel)
    return rt.runner


@contextlib.asynccontextmanager
async def started(tmp_path: Path, cfg: Json) -> AsyncIterator[LiveGateway]:
    async with live_gateway(tmp_path, cfg) as live:
        await runner(live).wait_for_status(lambda s: s.connected)
        yield live


def listed_users(*ids: int) -> Json:
    """Guild entry with a `users` allowlist (who may talk and run commands there)."""
    entry = {
        "channels": {"general": {"allow": True}},  # as in the Fly guide: only `general`
        "requireMention": False,
        "users": [str(i) for i in ids],
    }
    return {"guilds": {str(fd.GUILD_ID): entry}}


async def invoke(fake: FakeDiscord, payload: Json, count: int = 1) -> Json:
    """Dispatch the interaction and return its `count`-th follow-up body."""
    await fake.interaction_create(payload)
    return await fake.wait_followup(payload, count=count, timeout=15)


# --- registration -------------------------------------------------------------------------------


async def test_core_set_registered_at_ready(
    tmp_path: Path, fake: FakeDiscord, llm: FakeLLM
) -> None:
    async with live_gateway(tmp_path, config(llm)) as live:
        put = await fake.wait_rest("PUT", f"/applications/{fd.APP_ID}/commands", timeout=15)
        await runner(live).wait_for_status(lambda s: s.extra.get("nativeCommands") == len(CORE))
    commands = {c["name"]: c for c in put["json"]}
    assert sorted(commands) == sorted(CORE)
    assert all(c["type"] == 1 and c["description"] for c in commands.values())
    options = {
        n: [(o["name"], o["type"], o.get("required")) for o in c["options"]]
        for n, c in commands.items()
    }
    assert options["new"] == [("message", 3, False)]
    assert options["reset"] == [("message", 3, False)]
    assert options["model"] == [("model", 3, False)]
    assert options["status"] == options["whoami"] == options["help"] == options["stop"] == []
    assert len(fake.rest_calls("PUT")) == 1


@pytest.mark.parametrize(
    ("discord_section", "root"),
    [
        ({"commands": {"native": False}}, {}),
        ({}, {"commands": {"native": False}}),
    ],
    ids=["channel-native-false", "root-native-false"],
)
async def test_native_false_skips_registration(
    tmp_path: Path, fake: FakeDiscord, llm: FakeLLM, discord_section: Json, root: Json
) -> None:
    async with live_gateway(tmp_path, config(llm, discord_section, **root)) as live:
        # Decided synchronously at READY: once "off" shows, no sync can follow.
        await runner(live).wait_for_status(lambda s: s.extra.get("nativeCommands") == "off")
    assert fake.rest_calls("PUT") == []


async def test_channel_switch_beats_root(tmp_path: Path, fake: FakeDiscord, llm: FakeLLM) -> None:
    cfg = config(llm, {"commands": {"native": True}}, commands={"native": False})
    async with live_gateway(tmp_path, cfg):
        await fake.wait_rest("PUT", f"/applications/{fd.APP_ID}/commands", timeout=15)


# --- invocation -----------------------------------------------------------------------------------


async def test_status_is_deferred_ephemeral_followup(
    tmp_path: Path, fake: FakeDiscord, llm: FakeLLM
) -> None:
    async with started(tmp_path, config(llm, listed_users(fd.USER_ID))):
        payload = fd.interaction("status")
        body = await invoke(fake, payload)
        (callback,) = fake.callbacks(payload)
    assert callback["json"]["type"] == DEFERRED
    assert callback["json"]["data"]["flags"] & EPHEMERAL
    assert callback["query"].get("with_response")  # discord.py 2.7 asks for the callback body
    assert "clawgate status" in body["content"]
    assert f"agent:main:discord:channel:{fd.TEXT_CH}" in body["content"]
    assert body["flags"] & EPHEMERAL
    assert llm.requests == []  # answered without a model call
    assert fake.rest_calls("POST", f"/channels/{fd.TEXT_CH}/messages") == []  # not in channel


async def test_whoami_and_help(tmp_path: Path, fake: FakeDiscord, llm: FakeLLM) -> None:
    async with started(tmp_path, config(llm, listed_users(fd.USER_ID))):
        who = await invoke(fake, fd.interaction("whoami"))
        helped = await invoke(fake, fd.interaction("help"))
        model = await invoke(fake, fd.interaction("model"))
    assert who["content"] == f"Your Discord user id: {fd.USER_ID}"
    assert helped["content"].startswith("Commands:") and "/whoami" in helped["content"]
    assert "openai/gpt-test" in model["content"]


async def test_new_with_message_runs_a_turn(
    tmp_path: Path, fake: FakeDiscord, llm: FakeLLM
) -> None:
    llm.script.append({"text": "fresh start, hello!"})
    async with started(tmp_path, config(llm, listed_users(fd.USER_ID))):
        body = await invoke(fake, fd.interaction("new", {"message": "hello again"}))
    assert body["content"] == "fresh start, hello!" and body["flags"] & EPHEMERAL
    assert "hello again" in json.dumps(llm.requests[-1])


async def test_new_is_open_to_admitted_senders_status_is_not(
    tmp_path: Path, fake: FakeDiscord, llm: FakeLLM
) -> None:
    # The Fly guide's guild has no users list: everyone may talk, nobody is allowlisted.
    async with started(tmp_path, config(llm)):
        new = await invoke(fake, fd.interaction("new"))
        status = await invoke(fake, fd.interaction("status"))
    assert new["content"] == NEW_SESSION_REPLY
    assert status["content"] == NOT_AUTHORIZED_REPLY and status["flags"] & EPHEMERAL


@pytest.mark.parametrize(
    ("payload", "section", "root"),
    [
        # Not in the guild's users list: the policy drops it.
        (fd.interaction("status", author=fd.user(43, "bob")), listed_users(fd.USER_ID), {}),
        # A channel outside the allowlist.
        (fd.interaction("new", channel_id=fd.OTHER_CH), listed_users(fd.USER_ID), {}),
        # commands.allowFrom is the only source: allowlisted in the guild is not enough.
        (fd.interaction("new"), listed_users(fd.USER_ID), {"commands": {"allowFrom": ["1"]}}),
        # DM under the default pairing policy, sender not approved: the pairing reply, privately.
        (fd.interaction("whoami", channel_id=fd.DM_CH, guild_id=None), {}, {}),
    ],
    ids=["user-not-listed", "channel-not-allowlisted", "commands-allowFrom", "dm-pairing"],
)
async def test_unauthorized_gets_private_answer(
    tmp_path: Path,
    fake: FakeDiscord,
    llm: FakeLLM,
    payload: Json,
    section: Json,
    root: Json,
) -> None:
    async with started(tmp_path, config(llm, section, **root)):
        body = await invoke(fake, payload)
    assert body["flags"] & EPHEMERAL
    if payload.get("guild_id") is None:
        assert "Pairing code:" in body["content"] and str(fd.USER_ID) in body["content"]
    else:
        assert body["content"] == NOT_AUTHORIZED_REPLY
    assert llm.requests == []
    assert len(fake.followups(payload)) == 1


async def test_ephemeral_false_answers_publicly(
    tmp_path: Path, fake: FakeDiscord, llm: FakeLLM
) -> None:
    section = {**listed_users(fd.USER_ID), "slashCommand": {"ephemeral": False}}
    async with started(tmp_path, config(llm, section)):
        payload = fd.interaction("whoami")
        body = await invoke(fake, payload)
        (callback,) = fake.callbacks(payload)
    assert callback["json"]["type"] == DEFERRED
    assert not (callback["json"].get("data") or {}).get("flags", 0) & EPHEMERAL
    assert not body.get("flags", 0) & EPHEMERAL
    assert body["content"] == f"Your Discord user id: {fd.USER_ID}"


async def test_duplicate_interaction_delivery_still_answered(
    tmp_path: Path, fake: FakeDiscord, llm: FakeLLM
) -> None:
    """A replayed INTERACTION_CREATE is acknowledged once (Discord refuses a second ack)."""
    async with started(tmp_path, config(llm, listed_users(fd.USER_ID))):
        payload = fd.interaction("whoami")
        await invoke(fake, payload)
        await fake.dispatch("INTERACTION_CREATE", payload)  # same id and token
        await fake.wait_rest(
            "POST", f"/interactions/{payload['id']}/{payload['token']}/callback", count=2
        )
    assert len(fake.followups(payload)) == 1


async def test_typed_command_in_guild_unauthorized_is_ignored(
    tmp_path: Path, fake: FakeDiscord, llm: FakeLLM
) -> None:
    """Text commands (§5.1) in a guild from a sender no allowlist names: ignored silently."""
    llm.script.append({"text": "plain reply"})
    async with started(tmp_path, config(llm)):
        await fake.message_create(fd.message("/status", fd.TEXT_CH, guild_id=fd.GUILD_ID))
        await fake.message_create(fd.message("just chatting", fd.TEXT_CH, guild_id=fd.GUILD_ID))
        reply = await fake.wait_rest("POST", f"/channels/{fd.TEXT_CH}/messages", timeout=15)
    assert reply["json"]["content"] == "plain reply"
    assert len(fake.rest_calls("POST", f"/channels/{fd.TEXT_CH}/messages")) == 1
    assert "/status" not in json.dumps(llm.requests)


# --- Telegram -------------------------------------------------------------------------------------


async def test_telegram_menu_is_the_core_set(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    cfg = gateway_config(fake_tg, fake_llm, {"dmPolicy": "open", "allowFrom": ["*"]})
    async with telegram_gateway(tmp_path, cfg):
        menu = await fake_tg.wait_for("setMyCommands")
    assert [c["command"] for c in menu["commands"]] == CORE
    assert all(c["description"] for c in menu["commands"])


@pytest.mark.parametrize(
    ("telegram", "root"),
    [({"commands": {"native": False}}, {}), ({}, {"commands": {"native": False}})],
    ids=["channel-native-false", "root-native-false"],
)
async def test_telegram_native_false_skips_set_my_commands(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM, telegram: Json, root: Json
) -> None:
    cfg = gateway_config(
        fake_tg, fake_llm, {"dmPolicy": "open", "allowFrom": ["*"], **telegram}, **root
    )
    async with telegram_gateway(tmp_path, cfg):
        # Polling starts after the (skipped) menu step, so this is a safe point to look.
        await fake_tg.wait_polls(1)
        fake_tg.text_update("/whoami")  # typed commands keep working
        await fake_tg.wait_for("sendMessage", lambda p: "user id: 42" in p["text"])
    assert fake_tg.calls("setMyCommands") == []


async def test_telegram_too_many_commands_trims_and_retries(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    fake_tg.fail_next("setMyCommands", 400, "Bad Request: BOT_COMMANDS_TOO_MUCH")
    fake_tg.fail_next("setMyCommands", 400, "Bad Request: BOT_COMMANDS_TOO_MUCH")
    cfg = gateway_config(fake_tg, fake_llm, {"dmPolicy": "open", "allowFrom": ["*"]})
    async with telegram_gateway(tmp_path, cfg) as live:
        await fake_tg.wait_polls(1)
        tg_runner = live.gateway.extensions["channels"].get("telegram").runner
        menus = [
            [c["command"] for c in call["commands"]] for call in fake_tg.calls("setMyCommands")
        ]
    assert [len(m) for m in menus] == [7, 5, 4]  # 4/5 of the list each time, first ones kept
    assert menus[-1] == CORE[:4]
    assert [n for n, _ in tg_runner.menu] == CORE[:4]  # what menu commands are matched against
