"""Table-driven tests of the one admission function for both channels."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from channels.base import InboundMessage
from channels.policy import decide, normalize_id, slugify
from gateway.config.models import DiscordConfig, TelegramConfig

DM_TG = InboundMessage(
    channel="telegram",
    account_id="default",
    chat_type="direct",
    chat_id="42",
    message_id="1",
    sender_id="42",
    sender_name="Ann",
    text="hi",
)
GROUP_TG = replace(DM_TG, chat_type="group", chat_id="-100", sender_id="7")
DM_DC = replace(DM_TG, channel="discord", chat_id="900", sender_id="55")
GUILD_DC = replace(
    DM_DC,
    chat_type="channel",
    chat_id="c1",
    chat_name="General Chat",
    guild_id="g1",
    guild_name="My Guild",
)


def tg(**kw: Any) -> TelegramConfig:
    return TelegramConfig.model_validate(kw)


def dc(**kw: Any) -> DiscordConfig:
    return DiscordConfig.model_validate(kw)


CASES: list[tuple[str, InboundMessage, TelegramConfig | DiscordConfig, frozenset[str], str]] = [
    # --- authors
    (
        "own message",
        replace(DM_TG, from_self=True),
        tg(dmPolicy="open", allowFrom=["*"]),
        frozenset(),
        "drop",
    ),
    (
        "bot author dropped",
        replace(DM_DC, sender_is_bot=True),
        dc(dmPolicy="open", allowFrom=["*"]),
        frozenset(),
        "drop",
    ),
    (
        "bot allowed",
        replace(DM_DC, sender_is_bot=True),
        dc(dmPolicy="open", allowFrom=["*"], allowBots=True),
        frozenset(),
        "admit",
    ),
    (
        "bot mentions-only, no mention",
        replace(GUILD_DC, sender_is_bot=True),
        dc(allowBots="mentions", guilds={"g1": {"requireMention": False}}),
        frozenset(),
        "drop",
    ),
    (
        "bot mentions-only, mention",
        replace(GUILD_DC, sender_is_bot=True, mentioned=True),
        dc(allowBots="mentions", guilds={"g1": {}}),
        frozenset(),
        "admit",
    ),
    # --- DM policies
    ("pairing unknown", DM_TG, tg(), frozenset(), "pair"),
    ("pairing allowFrom", DM_TG, tg(allowFrom=[42]), frozenset(), "admit"),
    ("pairing prefixed allowFrom", DM_TG, tg(allowFrom=["TG:42"]), frozenset(), "admit"),
    ("pairing approved store", DM_TG, tg(), frozenset({"42"}), "admit"),
    ("allowlist unknown", DM_TG, tg(dmPolicy="allowlist", allowFrom=["1"]), frozenset(), "drop"),
    (
        "allowlist listed",
        DM_TG,
        tg(dmPolicy="allowlist", allowFrom=["telegram:42"]),
        frozenset(),
        "admit",
    ),
    (
        "allowlist store",
        DM_TG,
        tg(dmPolicy="allowlist", allowFrom=["1"]),
        frozenset({"42"}),
        "admit",
    ),
    ("open with star", DM_TG, tg(dmPolicy="open", allowFrom=["*"]), frozenset(), "admit"),
    ("open concrete other", DM_TG, tg(dmPolicy="open", allowFrom=["1"]), frozenset(), "drop"),
    ("open concrete listed", DM_TG, tg(dmPolicy="open", allowFrom=["42"]), frozenset(), "admit"),
    ("disabled", DM_TG, tg(dmPolicy="disabled", allowFrom=["42"]), frozenset(), "drop"),
    (
        "discord dm.enabled false",
        DM_DC,
        dc(dmPolicy="open", allowFrom=["*"], dm={"enabled": False}),
        frozenset(),
        "drop",
    ),
    (
        "discord user: prefix",
        DM_DC,
        dc(dmPolicy="allowlist", allowFrom=["user:55"]),
        frozenset(),
        "admit",
    ),
    ("discord pairing", DM_DC, dc(), frozenset(), "pair"),
    # --- Telegram groups
    ("tg no groups allowlist", GROUP_TG, tg(), frozenset(), "drop"),
    ("tg group listed, no mention", GROUP_TG, tg(groups={"-100": {}}), frozenset(), "history"),
    (
        "tg group listed, mention",
        replace(GROUP_TG, mentioned=True),
        tg(groups={"-100": {}}),
        frozenset(),
        "admit",
    ),
    (
        "tg group reply to bot",
        replace(GROUP_TG, reply_to_bot=True),
        tg(groups={"*": {}}),
        frozenset(),
        "admit",
    ),
    (
        "tg group no mention needed",
        GROUP_TG,
        tg(groups={"*": {"requireMention": False}}),
        frozenset(),
        "admit",
    ),
    (
        "tg group disabled entry",
        GROUP_TG,
        tg(groups={"-100": {"enabled": False}}, groupPolicy="open"),
        frozenset(),
        "drop",
    ),
    (
        "tg groupPolicy open",
        replace(GROUP_TG, mentioned=True),
        tg(groupPolicy="open"),
        frozenset(),
        "admit",
    ),
    (
        "tg groupPolicy disabled",
        replace(GROUP_TG, mentioned=True),
        tg(groupPolicy="disabled", groups={"*": {}}),
        frozenset(),
        "drop",
    ),
    (
        "tg per-group policy reopens",
        replace(GROUP_TG, mentioned=True),
        tg(groupPolicy="disabled", groups={"-100": {"groupPolicy": "allowlist"}}),
        frozenset(),
        "admit",
    ),
    (
        "tg groupAllowFrom other",
        replace(GROUP_TG, mentioned=True),
        tg(groups={"*": {}}, groupAllowFrom=["8"]),
        frozenset(),
        "drop",
    ),
    (
        "tg groupAllowFrom listed",
        replace(GROUP_TG, mentioned=True),
        tg(groups={"*": {}}, groupAllowFrom=["tg:7"]),
        frozenset(),
        "admit",
    ),
    (
        "tg falls back to allowFrom",
        replace(GROUP_TG, mentioned=True),
        tg(groups={"*": {}}, allowFrom=["9"]),
        frozenset(),
        "drop",
    ),
    (
        "tg store never grants groups",
        replace(GROUP_TG, mentioned=True),
        tg(groups={"*": {}}, allowFrom=["9"]),
        frozenset({"7"}),
        "drop",
    ),
    (
        "tg per-group allowFrom wins",
        replace(GROUP_TG, mentioned=True),
        tg(groups={"-100": {"allowFrom": ["7"]}}, groupAllowFrom=["8"]),
        frozenset(),
        "admit",
    ),
    (
        "channels.defaults open",
        replace(GROUP_TG, mentioned=True),
        tg(),
        frozenset(),
        "admit-default-open",
    ),
    # --- Discord guilds
    ("guild not listed", replace(GUILD_DC, mentioned=True), dc(), frozenset(), "drop"),
    ("guild listed, mention gate", GUILD_DC, dc(guilds={"g1": {}}), frozenset(), "history"),
    (
        "guild listed, mentioned",
        replace(GUILD_DC, mentioned=True),
        dc(guilds={"g1": {}}),
        frozenset(),
        "admit",
    ),
    (
        "guild by slug",
        replace(GUILD_DC, mentioned=True),
        dc(guilds={"my-guild": {}}),
        frozenset(),
        "admit",
    ),
    (
        "guild requireMention false",
        GUILD_DC,
        dc(guilds={"g1": {"requireMention": False}}),
        frozenset(),
        "admit",
    ),
    (
        "channel map: unlisted",
        GUILD_DC,
        dc(guilds={"g1": {"requireMention": False, "channels": {"other": {}}}}),
        frozenset(),
        "drop",
    ),
    (
        "channel map: by id",
        GUILD_DC,
        dc(guilds={"g1": {"requireMention": False, "channels": {"c1": {}}}}),
        frozenset(),
        "admit",
    ),
    (
        "channel map: by slug",
        GUILD_DC,
        dc(guilds={"g1": {"requireMention": False, "channels": {"general-chat": {}}}}),
        frozenset(),
        "admit",
    ),
    (
        "channel map: star",
        GUILD_DC,
        dc(guilds={"g1": {"requireMention": False, "channels": {"*": {}}}}),
        frozenset(),
        "admit",
    ),
    (
        "channel enabled false",
        GUILD_DC,
        dc(guilds={"g1": {"requireMention": False, "channels": {"c1": {"enabled": False}}}}),
        frozenset(),
        "drop",
    ),
    (
        "legacy allow false",
        GUILD_DC,
        dc(guilds={"g1": {"requireMention": False, "channels": {"c1": {"allow": False}}}}),
        frozenset(),
        "drop",
    ),
    (
        "legacy allow true",
        GUILD_DC,
        dc(guilds={"g1": {"requireMention": False, "channels": {"c1": {"allow": True}}}}),
        frozenset(),
        "admit",
    ),
    (
        "channel overrides requireMention",
        GUILD_DC,
        dc(guilds={"g1": {"channels": {"c1": {"requireMention": False}}}}),
        frozenset(),
        "admit",
    ),
    (
        "thread inherits parent entry",
        replace(GUILD_DC, chat_id="t9", chat_name="a thread", parent_chat_id="c1"),
        dc(guilds={"g1": {"requireMention": False, "channels": {"c1": {}}}}),
        frozenset(),
        "admit",
    ),
    (
        "guild users: other",
        GUILD_DC,
        dc(guilds={"g1": {"requireMention": False, "users": ["1"]}}),
        frozenset(),
        "drop",
    ),
    (
        "guild users: listed",
        GUILD_DC,
        dc(guilds={"g1": {"requireMention": False, "users": ["discord:55"]}}),
        frozenset(),
        "admit",
    ),
    (
        "channel users star opens room",
        GUILD_DC,
        dc(
            guilds={
                "g1": {
                    "requireMention": False,
                    "users": ["1"],
                    "channels": {"c1": {"users": ["*"]}},
                }
            }
        ),
        frozenset(),
        "admit",
    ),
    (
        "guild groupPolicy disabled",
        replace(GUILD_DC, mentioned=True),
        dc(groupPolicy="disabled", guilds={"g1": {}}),
        frozenset(),
        "drop",
    ),
    (
        "guild groupPolicy open",
        replace(GUILD_DC, mentioned=True),
        dc(groupPolicy="open"),
        frozenset(),
        "admit",
    ),
    (
        "mention pattern",
        replace(GUILD_DC, text="hey Claw, help"),
        dc(guilds={"g1": {}}),
        frozenset(),
        "admit-pattern",
    ),
    (
        "group DM ignored",
        replace(DM_DC, chat_type="group"),
        dc(dmPolicy="open", allowFrom=["*"]),
        frozenset(),
        "drop",
    ),
]


@pytest.mark.parametrize(
    ("name", "msg", "cfg", "store", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_decide(
    name: str,
    msg: InboundMessage,
    cfg: TelegramConfig | DiscordConfig,
    store: frozenset[str],
    expected: str,
) -> None:
    patterns: list[str] = []
    default_policy = None
    if expected == "admit-pattern":
        patterns, expected = [r"\bclaw\b", "(unclosed"], "admit"
    if expected == "admit-default-open":
        default_policy, expected = "open", "admit"
    decision = decide(
        msg,
        cfg,
        store_allow=store,
        mention_patterns=patterns,
        default_group_policy=default_policy,  # type: ignore[arg-type]
    )
    assert decision.kind == expected, decision.reason


def test_decision_details() -> None:
    cfg = tg(groups={"-100": {"systemPrompt": "Be brief."}})
    d = decide(replace(GROUP_TG, mentioned=True), cfg)
    assert d.admitted and d.addressed and d.system_prompt == "Be brief."
    open_room = tg(groups={"*": {"requireMention": False}})
    assert decide(GROUP_TG, open_room).addressed is False  # admitted, but not addressed
    assert decide(DM_TG, tg(allowFrom=["42"])).addressed is True


def test_ids_and_slugs() -> None:
    assert normalize_id("telegram", "Telegram:12") == "12"
    assert normalize_id("telegram", 12) == "12"
    assert normalize_id("discord", "user:9") == "9"
    assert normalize_id("discord", "tg:9") == "tg:9"
    assert slugify("#My  Cool Channel") == "my-cool-channel"
