"""Who may run text commands (channels.md §5.1): a table for the rule, then end to end on Telegram.

The table drives `channels.command_auth.authorize` directly; the end-to-end tests run the real
python-telegram-bot against the fake Bot API through the real gateway, so the pipeline's
handling of each answer (reply, "not authorized", ignored, mention-gate bypass, text commands
off) is what a user would see.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from channels.base import InboundMessage
from channels.command_auth import NOT_AUTHORIZED_REPLY, authorize
from gateway.agents.commands import NEW_SESSION_REPLY
from gateway.config.models import DiscordConfig, OpenClawConfig, TelegramConfig
from tests.channels.conftest import gateway_config, telegram_gateway
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import FakeTelegram

DM_TG = InboundMessage(
    channel="telegram",
    account_id="default",
    chat_type="direct",
    chat_id="42",
    message_id="1",
    sender_id="42",
    sender_name="Ann",
    text="/status",
)
GROUP_TG = replace(DM_TG, chat_type="group", chat_id="-100", sender_id="7")
DM_DC = replace(DM_TG, channel="discord", chat_id="900", sender_id="55")
GUILD_DC = replace(
    DM_DC, chat_type="channel", chat_id="c1", chat_name="general", guild_id="g1", guild_name="G"
)


def root(**commands: Any) -> OpenClawConfig:
    return OpenClawConfig.model_validate({"commands": commands})


def tg(**kw: Any) -> TelegramConfig:
    return TelegramConfig.model_validate(kw)


def dc(**kw: Any) -> DiscordConfig:
    return DiscordConfig.model_validate(kw)


NONE: frozenset[str] = frozenset()
Case = tuple[
    str, InboundMessage, str, OpenClawConfig, TelegramConfig | DiscordConfig, frozenset[str], bool
]
CASES: list[Case] = [
    # --- no commands.allowFrom: channel allowlists + pairing store
    ("dm listed in allowFrom", DM_TG, "status", root(), tg(allowFrom=["42"]), NONE, True),
    ("dm prefixed id", DM_TG, "status", root(), tg(allowFrom=["tg:42"]), NONE, True),
    ("dm approved by pairing", DM_TG, "status", root(), tg(), frozenset({"42"}), True),
    ("dm open with *", DM_TG, "status", root(), tg(dmPolicy="open", allowFrom=["*"]), NONE, True),
    ("dm not listed", DM_TG, "status", root(), tg(allowFrom=["9"]), NONE, False),
    ("dm /new open to admitted", DM_TG, "new", root(), tg(allowFrom=["9"]), NONE, True),
    ("dm /reset open to admitted", DM_TG, "reset", root(), tg(), NONE, True),
    ("group no lists: /status", GROUP_TG, "status", root(), tg(groups={"*": {}}), NONE, False),
    ("group no lists: /new", GROUP_TG, "new", root(), tg(groups={"*": {}}), NONE, True),
    (
        "group groupAllowFrom",
        GROUP_TG,
        "status",
        root(),
        tg(groups={"*": {}}, groupAllowFrom=["7"]),
        NONE,
        True,
    ),
    (
        "group per-group allowFrom beats groupAllowFrom",
        GROUP_TG,
        "status",
        root(),
        tg(groups={"-100": {"allowFrom": ["8"]}}, groupAllowFrom=["7"]),
        NONE,
        False,
    ),
    (
        "group: channel allowFrom also counts",
        GROUP_TG,
        "model",
        root(),
        tg(groups={"*": {}}, allowFrom=["7"]),
        NONE,
        True,
    ),
    ("group: pairing store counts", GROUP_TG, "help", root(), tg(), frozenset({"7"}), True),
    (
        "useAccessGroups=false opens commands",
        GROUP_TG,
        "status",
        root(useAccessGroups=False),
        tg(groups={"*": {}}),
        NONE,
        True,
    ),
    (
        "discord guild users",
        GUILD_DC,
        "status",
        root(),
        dc(guilds={"g1": {"users": ["55"]}}),
        NONE,
        True,
    ),
    (
        "discord channel users override guild users",
        GUILD_DC,
        "status",
        root(),
        dc(guilds={"g1": {"users": ["55"], "channels": {"general": {"users": ["66"]}}}}),
        NONE,
        False,
    ),
    (
        "discord allowFrom is a command-auth list in guilds",
        GUILD_DC,
        "whoami",
        root(),
        dc(allowFrom=["discord:55"], guilds={"g1": {}}),
        NONE,
        True,
    ),
    ("discord guild, no lists", GUILD_DC, "stop", root(), dc(guilds={"g1": {}}), NONE, False),
    # --- commands.allowFrom set: the only source
    (
        "allowFrom: channel key",
        DM_DC,
        "status",
        root(allowFrom={"discord": ["user:55"]}),
        dc(),
        NONE,
        True,
    ),
    (
        "allowFrom: * default",
        GROUP_TG,
        "status",
        root(allowFrom={"*": ["7"]}),
        tg(),
        NONE,
        True,
    ),
    (
        "allowFrom: channel key beats *",
        GROUP_TG,
        "status",
        root(allowFrom={"*": ["7"], "telegram": ["9"]}),
        tg(),
        NONE,
        False,
    ),
    (
        "allowFrom: channel allowlists ignored",
        DM_TG,
        "status",
        root(allowFrom={"telegram": ["9"]}),
        tg(allowFrom=["42"]),
        frozenset({"42"}),
        False,
    ),
    (
        "allowFrom: /new no longer open",
        DM_TG,
        "new",
        root(allowFrom={"telegram": ["9"]}),
        tg(dmPolicy="open", allowFrom=["*"]),
        NONE,
        False,
    ),
    ("allowFrom: list form", DM_TG, "help", root(allowFrom=["telegram:42"]), tg(), NONE, True),
    ("allowFrom: wildcard", DM_DC, "help", root(allowFrom={"discord": ["*"]}), dc(), NONE, True),
    (
        "allowFrom: other channel only",
        DM_DC,
        "help",
        root(allowFrom={"telegram": ["55"]}),
        dc(allowFrom=["55"]),
        NONE,
        False,
    ),
]


@pytest.mark.parametrize(
    ("name", "msg", "command", "config", "section", "store", "expected"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_authorize(
    name: str,
    msg: InboundMessage,
    command: str,
    config: OpenClawConfig,
    section: TelegramConfig | DiscordConfig,
    store: frozenset[str],
    expected: bool,
) -> None:
    auth = authorize(msg, command, config=config, section=section, store_allow=store)
    assert auth.authorized is expected, auth.reason


def test_listed_only_for_allowlisted_senders() -> None:
    open_new = authorize(GROUP_TG, "new", config=root(), section=tg(groups={"*": {}}))
    assert open_new.authorized and not open_new.listed
    listed = authorize(GROUP_TG, "new", config=root(), section=tg(groupAllowFrom=["7"]))
    assert listed.authorized and listed.listed


# --- end to end (Telegram) -------------------------------------------------------------------


def to_chat(chat: int):  # type: ignore[no-untyped-def]
    return lambda p: p.get("chat_id") == str(chat)


def texts_to(fake: FakeTelegram, chat: int) -> list[str]:
    return [p["text"] for p in fake.calls("sendMessage") if p["chat_id"] == str(chat)]


async def test_group_unauthorized_command_is_ignored(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    # Group open to every member, no sender list: only /new and /reset are open to all.
    cfg = gateway_config(
        fake_tg, fake_llm, {"groupPolicy": "open", "groups": {"*": {"requireMention": False}}}
    )
    async with telegram_gateway(tmp_path, cfg):
        fake_tg.text_update("/status", chat_id=-100, user_id=7, chat_type="supergroup")
        fake_tg.text_update("/new", chat_id=-100, user_id=7, chat_type="supergroup")
        await fake_tg.wait_for("sendMessage", lambda p: p["text"] == NEW_SESSION_REPLY)
    assert texts_to(fake_tg, -100) == [NEW_SESSION_REPLY]
    assert fake_llm.requests == []  # ignored, not sent to the model as text either


async def test_group_allowlisted_command_skips_mention_gate(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    cfg = gateway_config(
        fake_tg,
        fake_llm,
        {"groups": {"-100": {"requireMention": True}}, "groupAllowFrom": ["7", "8"]},
        commands={"allowFrom": {"telegram": ["7"]}},
    )
    async with telegram_gateway(tmp_path, cfg):
        # 8 may talk here but is not in commands.allowFrom; unmentioned: only group history.
        fake_tg.text_update("/status", chat_id=-100, user_id=8, chat_type="supergroup")
        fake_tg.text_update("/status", chat_id=-100, user_id=7, chat_type="supergroup")
        status = await fake_tg.wait_for("sendMessage", to_chat(-100))
    assert "clawgate status" in status["text"]
    assert len(texts_to(fake_tg, -100)) == 1 and fake_llm.requests == []


async def test_commands_allow_from_is_the_only_source_in_dms(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    fake_llm.script.append({"text": "plain chat still works"})
    cfg = gateway_config(
        fake_tg,
        fake_llm,
        {"dmPolicy": "open", "allowFrom": ["*"]},
        commands={"allowFrom": {"*": ["telegram:99"]}},
    )
    async with telegram_gateway(tmp_path, cfg):
        fake_tg.text_update("/new")
        refused = await fake_tg.wait_for("sendMessage", to_chat(42))
        fake_tg.text_update("/whoami", user_id=99, chat_id=99)
        who = await fake_tg.wait_for("sendMessage", to_chat(99))
        fake_tg.text_update("hello")
        await fake_tg.wait_for("sendMessage", lambda p: p["text"] == "plain chat still works")
    assert refused["text"] == NOT_AUTHORIZED_REPLY
    assert who["text"] == "Your Telegram user id: 99"
    assert texts_to(fake_tg, 42) == [NOT_AUTHORIZED_REPLY, "plain chat still works"]


async def test_text_commands_off_native_off_goes_to_the_model(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    fake_llm.script.append({"text": "the model saw it"})
    cfg = gateway_config(
        fake_tg,
        fake_llm,
        {"dmPolicy": "open", "allowFrom": ["*"], "commands": {"native": False}},
        commands={"text": False},
    )
    async with telegram_gateway(tmp_path, cfg):
        fake_tg.text_update("/status")
        await fake_tg.wait_for("sendMessage", lambda p: p["text"] == "the model saw it")
    assert fake_tg.calls("setMyCommands") == []
    assert len(fake_llm.requests) == 1 and "/status" in str(fake_llm.bodies[-1])


async def test_text_commands_off_menu_commands_still_work(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    fake_llm.script.append({"text": "typed, not a command"})
    cfg = gateway_config(
        fake_tg, fake_llm, {"dmPolicy": "open", "allowFrom": ["*"]}, commands={"text": False}
    )
    async with telegram_gateway(tmp_path, cfg):
        fake_tg.text_update("/whoami")  # a menu command: bot_command entity, registered name
        await fake_tg.wait_for("sendMessage", lambda p: "user id: 42" in p["text"])
        # Without the entity it is plain text typed by the user: the model gets it.
        fake_tg.text_update("/status please", entities=[])
        await fake_tg.wait_for("sendMessage", lambda p: p["text"] == "typed, not a command")
    assert len(fake_llm.requests) == 1
