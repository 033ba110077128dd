"""Who may run channel commands, and whether commands are on at all (channels.md §5).

Authorization (§5.1): when `commands.allowFrom` is set it is the only source (the entry for
the channel, else `"*"`; an id list there must name the sender or contain `"*"`). Otherwise
the sender must be named by one of the channel's allowlists (`policy.sender_allowlists`) or
the approved-pairing store; `/new` and `/reset` stay open to every admitted sender, and
`commands.useAccessGroups: false` opens every command to admitted senders.

Switches (§5.2): `commands.text` (default on) governs plain `/…` messages;
`commands.native` (`"auto"` = on for Discord and Telegram, per channel
`channels.<ch>.commands.native`) governs registration and messages sent through the
platform's command UI (`InboundMessage.native_command`).
"""

from __future__ import annotations

from dataclasses import dataclass

from channels.base import InboundMessage
from channels.policy import WILDCARD, id_set, normalize_id, sender_allowlists
from gateway.config.models import DiscordConfig, OpenClawConfig, TelegramConfig

NOT_AUTHORIZED_REPLY = "⛔ You are not authorized to use this command."
# Resetting your own conversation needs no extra rights (§5.1).
OPEN_COMMANDS = frozenset({"new", "reset"})


@dataclass(frozen=True)
class CommandAuth:
    authorized: bool
    reason: str
    # Named by an allowlist (not only let in by the open /new, /reset rule): such senders'
    # command-only messages skip the group mention gate.
    listed: bool = False


def native_enabled(config: OpenClawConfig, channel: str) -> bool:
    """`channels.<ch>.commands.native` when set, else `commands.native`; "auto" is on."""
    section = getattr(config.channels, channel, None)
    override = None
    if isinstance(section, DiscordConfig | TelegramConfig):
        override = section.commands.native
    value = override if override is not None else config.commands.native
    return value is not False


def commands_enabled(config: OpenClawConfig, msg: InboundMessage) -> bool:
    """Is this message looked at as a command at all?"""
    if msg.native_command and native_enabled(config, msg.channel):
        return True
    return config.commands.text


def command_allow_list(config: OpenClawConfig, channel: str) -> frozenset[str] | None:
    """The `commands.allowFrom` ids for `channel` (its own key beats "*"); None when unset."""
    allow_from = config.commands.allow_from
    if allow_from is None:
        return None
    entries = allow_from.get(channel)
    if entries is None:
        entries = allow_from.get(WILDCARD, [])
    return id_set(channel, entries)


def authorize(
    msg: InboundMessage,
    command_name: str,
    *,
    config: OpenClawConfig,
    section: DiscordConfig | TelegramConfig,
    store_allow: frozenset[str] = frozenset(),
) -> CommandAuth:
    """May this (already admitted) sender run `command_name` here?"""
    sender = normalize_id(msg.channel, msg.sender_id)
    only = command_allow_list(config, msg.channel)
    if only is not None:
        ok = WILDCARD in only or sender in only
        return CommandAuth(ok, "commands.allowFrom" if ok else "not in commands.allowFrom", ok)
    listed = sender in store_allow or any(
        WILDCARD in ids or sender in ids for ids in sender_allowlists(msg, section)
    )
    if listed:
        return CommandAuth(True, "channel allowlist or pairing store", True)
    if not config.commands.use_access_groups:
        return CommandAuth(True, "commands.useAccessGroups=false")
    if command_name in OPEN_COMMANDS:
        return CommandAuth(True, f"/{command_name} is open to admitted senders")
    return CommandAuth(False, "sender not in any allowlist or the pairing store")
