"""Access policy for both channels: one pure decision per inbound message (channels.md §2).

`decide()` answers, for one `InboundMessage`, whether it starts an agent turn (`admit`), gets
a pairing reply (`pair`), is only kept as group context (`history`) or is dropped (`drop`,
with a reason for the debug log). Evaluation order in groups: groupPolicy → room allowlist →
sender allowlist → mention gate. The approved-pairing store is passed in as a set so this
module stays free of I/O.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from channels.base import InboundMessage
from gateway.config.models import (
    DiscordConfig,
    DiscordGuild,
    DiscordGuildChannel,
    GroupPolicy,
    TelegramConfig,
    TelegramGroup,
)

log = logging.getLogger("channels.policy")

DecisionKind = Literal["admit", "pair", "drop", "history"]
WILDCARD = "*"
_PREFIXES = {
    "discord": ("discord:", "user:"),
    "telegram": ("telegram:", "tg:"),
}


@dataclass(frozen=True)
class Decision:
    kind: DecisionKind
    reason: str = ""
    # The message explicitly addressed the bot (DM, mention, reply, pattern): failure
    # replies are only sent for addressed turns (channels.md §4.8).
    addressed: bool = True
    system_prompt: str | None = None  # per-room prompt (Discord channel / Telegram group)

    @property
    def admitted(self) -> bool:
        return self.kind == "admit"


def _admit(addressed: bool = True, system_prompt: str | None = None) -> Decision:
    return Decision("admit", "", addressed, system_prompt)


def _drop(reason: str) -> Decision:
    return Decision("drop", reason, False)


def normalize_id(channel: str, value: str | int) -> str:
    """`telegram:123`, `tg:123`, `discord:456`, `user:456` → bare id (case-insensitive prefix)."""
    text = str(value).strip()
    lowered = text.lower()
    for prefix in _PREFIXES.get(channel, ()):
        if lowered.startswith(prefix):
            return text[len(prefix) :].strip()
    return text


def id_set(channel: str, values: Iterable[str | int] | None) -> frozenset[str]:
    return frozenset(n for n in (normalize_id(channel, v) for v in values or ()) if n)


def slugify(name: str) -> str:
    """Discord slug: lowercase, whitespace runs → `-`, leading `#` dropped."""
    return re.sub(r"\s+", "-", name.strip().lstrip("#").strip().lower())


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error:
        log.warning("ignoring invalid mention pattern %r", pattern)
        return None


def matches_mention_pattern(text: str, patterns: Sequence[str]) -> bool:
    for pattern in patterns:
        compiled = _compile(pattern)
        if compiled is not None and compiled.search(text):
            return True
    return False


def _sender_listed(sender: str, allowed: frozenset[str]) -> bool:
    return WILDCARD in allowed or sender in allowed


# --- DMs -------------------------------------------------------------------------------------


def _dm(
    msg: InboundMessage,
    cfg: DiscordConfig | TelegramConfig,
    store_allow: frozenset[str],
) -> Decision:
    if isinstance(cfg, DiscordConfig) and not cfg.dm.enabled:
        return _drop("dm disabled (dm.enabled=false)")
    policy = cfg.dm_policy
    allow = id_set(msg.channel, cfg.allow_from)
    sender = normalize_id(msg.channel, msg.sender_id)
    if policy == "disabled":
        return _drop("dmPolicy=disabled")
    if policy == "open":
        # `open` only opens up with "*"; concrete ids keep it an allowlist.
        if _sender_listed(sender, allow) or sender in store_allow:
            return _admit()
        return _drop("dmPolicy=open without '*' in allowFrom and sender not listed")
    if _sender_listed(sender, allow) or sender in store_allow:
        return _admit()
    if policy == "allowlist":
        return _drop("dmPolicy=allowlist and sender not in allowFrom")
    return Decision("pair", "unknown sender (dmPolicy=pairing)", True)


# --- groups ----------------------------------------------------------------------------------


def _mention_gate(
    msg: InboundMessage,
    require_mention: bool,
    patterns: Sequence[str],
    system_prompt: str | None,
) -> Decision:
    addressed = msg.mentioned or msg.reply_to_bot or matches_mention_pattern(msg.text, patterns)
    if require_mention and not addressed:
        return Decision("history", "not mentioned (requireMention)", False, system_prompt)
    return _admit(addressed, system_prompt)


def _discord_guild(cfg: DiscordConfig, msg: InboundMessage) -> DiscordGuild | None:
    guilds = cfg.guilds
    if msg.guild_id and msg.guild_id in guilds:
        return guilds[msg.guild_id]
    if msg.guild_name:
        slug = slugify(msg.guild_name)
        for key, guild in guilds.items():
            if key == slug or (guild.slug and guild.slug == slug) or slugify(key) == slug:
                return guild
    return guilds.get(WILDCARD)


def _discord_room(
    guild: DiscordGuild, msg: InboundMessage
) -> tuple[DiscordGuildChannel | None, bool]:
    """(entry, found): lookup by id, name, slug; a thread falls back to its parent; then "*"."""
    channels = guild.channels
    names = [msg.chat_id]
    if msg.chat_name:
        names += [msg.chat_name, slugify(msg.chat_name)]
    if msg.parent_chat_id:
        names.append(msg.parent_chat_id)
    for name in names:
        if name in channels:
            return channels[name], True
    slugs = {slugify(k): v for k, v in channels.items()}
    if msg.chat_name and slugify(msg.chat_name) in slugs:
        return slugs[slugify(msg.chat_name)], True
    if WILDCARD in channels:
        return channels[WILDCARD], True
    return None, False


def discord_room_entry(cfg: DiscordConfig, msg: InboundMessage) -> DiscordGuildChannel | None:
    """The `guilds.<g>.channels.<c>` entry that applies to a guild message (or None)."""
    guild = _discord_guild(cfg, msg)
    return _discord_room(guild, msg)[0] if guild is not None else None


def _discord_group(
    msg: InboundMessage,
    cfg: DiscordConfig,
    policy: GroupPolicy,
    patterns: Sequence[str],
) -> Decision:
    if msg.guild_id is None:
        # A group DM: ignored unless dm.groupEnabled (group-DM allowlists are later).
        if not cfg.dm.group_enabled:
            return _drop("group DM (dm.groupEnabled=false)")
        return _mention_gate(msg, True, patterns, None)
    guild = _discord_guild(cfg, msg)
    if guild is None and policy == "allowlist":
        return _drop(f"guild {msg.guild_id} not in channels.discord.guilds")
    room: DiscordGuildChannel | None = None
    if guild is not None and guild.channels:
        room, found = _discord_room(guild, msg)
        if not found and policy == "allowlist":
            return _drop(f"channel {msg.chat_id} not in the guild's channels allowlist")
    if room is not None and (room.enabled is False or room.allow is False):
        return _drop(f"channel {msg.chat_id} disabled")
    users = room.users if room is not None and room.users is not None else None
    if users is None and guild is not None:
        users = guild.users
    if users:
        if not _sender_listed(normalize_id("discord", msg.sender_id), id_set("discord", users)):
            return _drop("sender not in the guild/channel users allowlist")
    require = True
    if guild is not None:
        require = guild.require_mention
    if room is not None and room.require_mention is not None:
        require = room.require_mention
    return _mention_gate(msg, require, patterns, room.system_prompt if room else None)


def _telegram_group(
    msg: InboundMessage,
    cfg: TelegramConfig,
    policy: GroupPolicy,
    patterns: Sequence[str],
) -> Decision:
    entry: TelegramGroup | None = cfg.groups.get(msg.chat_id) or cfg.groups.get(WILDCARD)
    if entry is not None and entry.group_policy is not None:
        policy = entry.group_policy
    if policy == "disabled":
        return _drop("groupPolicy=disabled")
    if entry is not None and not entry.enabled:
        return _drop(f"group {msg.chat_id} disabled")
    if entry is None and policy == "allowlist":
        return _drop(f"group {msg.chat_id} not in channels.telegram.groups")
    # Sender list: per-group allowFrom → groupAllowFrom → allowFrom (never the pairing store).
    if entry is not None and entry.allow_from is not None:
        senders: Sequence[str | int] = entry.allow_from
    elif cfg.group_allow_from is not None:
        senders = cfg.group_allow_from
    else:
        senders = cfg.allow_from
    allowed = id_set("telegram", senders)
    if allowed and not _sender_listed(normalize_id("telegram", msg.sender_id), allowed):
        return _drop("sender not in groupAllowFrom/allowFrom")
    require = entry.require_mention if entry is not None else True
    return _mention_gate(msg, require, patterns, entry.system_prompt if entry else None)


def sender_allowlists(
    msg: InboundMessage, cfg: DiscordConfig | TelegramConfig
) -> list[frozenset[str]]:
    """The configured id lists that name who may talk here (command auth, channels.md §5.1).

    DMs: `allowFrom`. Discord rooms: channel/guild `users` plus `allowFrom` (the reference's
    command-auth list). Telegram groups: per-group `allowFrom` → `groupAllowFrom` → `allowFrom`,
    plus `allowFrom`. Only lists that are set are returned.
    """
    ch = msg.channel
    lists: list[Sequence[str | int] | None] = [cfg.allow_from]
    if msg.chat_type != "direct":
        if isinstance(cfg, DiscordConfig):
            guild = _discord_guild(cfg, msg) if msg.guild_id else None
            room = _discord_room(guild, msg)[0] if guild is not None and guild.channels else None
            users = room.users if room is not None and room.users is not None else None
            lists.append(users if users is not None else (guild.users if guild else None))
        else:
            entry = cfg.groups.get(msg.chat_id) or cfg.groups.get(WILDCARD)
            if entry is not None and entry.allow_from is not None:
                lists.append(entry.allow_from)
            else:
                lists.append(cfg.group_allow_from)
    return [id_set(ch, values) for values in lists if values]


def decide(
    msg: InboundMessage,
    cfg: DiscordConfig | TelegramConfig,
    *,
    store_allow: frozenset[str] = frozenset(),
    mention_patterns: Sequence[str] = (),
    default_group_policy: GroupPolicy | None = None,
) -> Decision:
    """The one admission decision for both channels (see module docstring)."""
    if msg.from_self:
        return _drop("own message")
    if msg.sender_is_bot:
        allow_bots = cfg.allow_bots if isinstance(cfg, DiscordConfig) else False
        if allow_bots is False:
            return _drop("bot author (allowBots=false)")
        if allow_bots == "mentions" and not msg.mentioned:
            return _drop("bot author without a mention (allowBots=mentions)")
    if msg.chat_type == "direct":
        return _dm(msg, cfg, store_allow)
    policy: GroupPolicy = cfg.group_policy or default_group_policy or "allowlist"
    if policy == "disabled":
        # Telegram groups may re-open per group entry; Discord has no per-guild policy.
        if isinstance(cfg, DiscordConfig):
            return _drop("groupPolicy=disabled")
    if isinstance(cfg, DiscordConfig):
        return _discord_group(msg, cfg, policy, mention_patterns)
    return _telegram_group(msg, cfg, policy, mention_patterns)
