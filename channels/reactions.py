"""Reactions both ways (channels.md §4.6).

Outbound: the ack reaction (👀 by default) when a message is picked up, and the status
reaction when the turn ends. Emoji: account → channel → `messages.ackReaction` → the agent's
identity emoji → 👀 (`""` disables). Scope: `messages.ackReactionScope` (Discord accounts may
override it), default `group-mentions` — never DMs unless `direct`/`all`.
Status reactions: Discord keeps the ack stable and marks failures (❌), on unless
`messages.statusReactions.enabled` is false; Telegram replaces its one reaction with 👍 / 😱
(Telegram accepts only its own reaction set) and only when `enabled` is explicitly true.
`messages.removeAckAfterReply` clears the ack once the answer is out.

Inbound: a user's reaction becomes a system event (`Telegram reaction added: 👍 by Ann
(@ann) on msg 42`) queued for the routed session's next turn, per the channel's
`reactionNotifications` (`own`, the default: only reactions on messages this bot sent and
still remembers; `all`; `off`; Discord `allowlist` = the guild's `users`).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from channels.base import ChannelId, ChatType, InboundMessage, OutboundTarget, ReactingTransport
from gateway.config.models import DiscordConfig, OpenClawConfig, TelegramConfig

if TYPE_CHECKING:
    from gateway.runtime import Gateway

log = logging.getLogger("channels.reactions")

DEFAULT_ACK = "👀"
STATUS_EMOJI: dict[str, dict[str, str]] = {
    "discord": {"done": "✅", "error": "❌"},
    "telegram": {"done": "👍", "error": "😱"},
}
SENT_CACHE_MAX = 5000
Status = Literal["done", "error"]


def ack_emoji(
    config: OpenClawConfig, section: DiscordConfig | TelegramConfig, agent_id: str
) -> str:
    """The configured ack emoji ("" = none)."""
    if section.ack_reaction is not None:
        return section.ack_reaction.strip()
    if config.messages.ack_reaction is not None:
        return config.messages.ack_reaction.strip()
    entry = config.agents.entries.get(agent_id)
    emoji = entry.identity.emoji if entry is not None and entry.identity is not None else None
    return (emoji or DEFAULT_ACK).strip()


def ack_scope(config: OpenClawConfig, section: DiscordConfig | TelegramConfig) -> str:
    if isinstance(section, DiscordConfig) and section.ack_reaction_scope is not None:
        return section.ack_reaction_scope
    return config.messages.ack_reaction_scope


def in_scope(scope: str, msg: InboundMessage) -> bool:
    if scope in ("off", "none"):
        return False
    if msg.chat_type == "direct":
        return scope in ("direct", "all")
    if scope in ("group-all", "all"):
        return True
    return scope == "group-mentions" and (msg.mentioned or msg.reply_to_bot)


@dataclass
class TurnReactions:
    """One turn's reactions on the inbound message."""

    transport: ReactingTransport
    target: OutboundTarget
    message_id: str
    channel: ChannelId
    ack: str
    status: bool
    remove_after: bool
    acked: bool = False

    async def _call(self, add: bool, emoji: str) -> bool:
        try:
            if add:
                await self.transport.react(self.target, self.message_id, emoji)
            else:
                await self.transport.unreact(self.target, self.message_id, emoji)
            return True
        except Exception as exc:  # reactions never fail a turn
            log.debug("%s reaction %s failed: %s", self.channel, emoji, exc)
            return False

    async def acknowledge(self) -> None:
        self.acked = await self._call(True, self.ack)

    async def finish(self, status: Status) -> None:
        if not self.acked:
            return
        emoji = STATUS_EMOJI[self.channel][status]
        if self.channel == "telegram":
            # One reaction per bot on Telegram: the status replaces the ack.
            if self.status:
                await self._call(True, emoji)
            elif self.remove_after and status == "done":
                await self._call(False, self.ack)
            return
        if self.status and status == "error":
            await self._call(False, self.ack)
            await self._call(True, emoji)
        elif self.remove_after and status == "done":
            await self._call(False, self.ack)


def plan(
    config: OpenClawConfig,
    section: DiscordConfig | TelegramConfig,
    msg: InboundMessage,
    agent_id: str,
    transport: object,
) -> TurnReactions | None:
    """The reactions this turn gets, or None (not configured, out of scope, unsupported)."""
    if not isinstance(transport, ReactingTransport) or msg.private_reply:
        return None
    if isinstance(section, TelegramConfig) and section.reaction_level == "off":
        return None
    emoji = ack_emoji(config, section, agent_id)
    if not emoji or not in_scope(ack_scope(config, section), msg):
        return None
    enabled = config.messages.status_reactions.enabled
    status = enabled is True or (enabled is None and msg.channel == "discord")
    return TurnReactions(
        transport=transport,
        target=OutboundTarget(msg.chat_id, msg.thread_id),
        message_id=msg.message_id,
        channel=msg.channel,
        ack=emoji,
        status=status,
        remove_after=config.messages.remove_ack_after_reply,
    )


# --- inbound reactions ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReactionEvent:
    """A user's reaction change on a message, as an adapter reports it."""

    channel: ChannelId
    account_id: str
    chat_type: ChatType
    chat_id: str
    message_id: str
    user_id: str
    user_name: str
    emoji: str
    added: bool = True
    username: str | None = None
    user_is_bot: bool = False
    guild_id: str | None = None
    thread_id: str | None = None
    parent_chat_id: str | None = None
    # True/False when the platform says who wrote the message (Discord); None: unknown.
    on_own_message: bool | None = None

    def describe(self) -> str:
        who = self.user_name + (f" (@{self.username})" if self.username else "")
        verb = "added" if self.added else "removed"
        return (
            f"{self.channel.capitalize()} reaction {verb}: {self.emoji} by {who} "
            f"on msg {self.message_id}"
        )


class SentMessages:
    """The ids of messages this account sent, newest kept (`own` notifications)."""

    def __init__(self, limit: int = SENT_CACHE_MAX) -> None:
        self.limit = limit
        # (chat, message) → the thread/topic it went to (Telegram reactions do not say).
        self._ids: OrderedDict[tuple[str, str], str | None] = OrderedDict()

    def add(self, chat_id: str, message_id: str, thread_id: str | None = None) -> None:
        self._ids[(chat_id, message_id)] = thread_id
        self._ids.move_to_end((chat_id, message_id))
        while len(self._ids) > self.limit:
            self._ids.popitem(last=False)

    def thread_of(self, chat_id: str, message_id: str) -> str | None:
        return self._ids.get((chat_id, message_id))

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._ids


def notifications_mode(section: DiscordConfig | TelegramConfig, guild_id: str | None) -> str:
    if isinstance(section, TelegramConfig):
        return section.reaction_notifications
    if guild_id is None:
        return "own"
    guild = section.guilds.get(guild_id)
    return guild.reaction_notifications if guild is not None else "own"


def queue_system_event(gateway: Gateway, session_key: str, text: str) -> None:
    """Queue `text` for the session's next turn (the scheduler's queue when it runs, so a
    heartbeat sees it too)."""
    events = _events(gateway)
    events.add(session_key, text, int(time.time() * 1000))


def take_system_events(gateway: Gateway, session_key: str) -> list[str]:
    return _events(gateway).take(session_key)


def _events(gateway: Gateway) -> SystemEventQueue:
    cron = gateway.extensions.get("cron")
    executor = getattr(cron, "executor", None)
    events = getattr(executor, "events", None)
    if events is not None:
        return events  # type: ignore[no-any-return]
    queue = gateway.extensions.get("channels.system-events")
    if queue is None:
        from gateway.cron.execute import SystemEvents

        queue = gateway.extensions["channels.system-events"] = SystemEvents()
    return queue


if TYPE_CHECKING:
    from gateway.cron.execute import SystemEvents as SystemEventQueue
