"""Exec approval prompts in chats (tools.md §3.4): buttons to the owner, answered by a press.

An approval asked by a Telegram or Discord turn is also offered as a message with two
buttons (Telegram inline keyboard, Discord message components), "Allow once" and "Deny",
posted where only the owner can press it: in the owner's own DM when the turn came from
there, else in each owner's DM with the bot (never in the group, so strangers see no
command and get no buttons). Owners are `commands.ownerAllowFrom` (or,
while that is unset, the ids `allowFrom` lists), as for the owner flag of a turn (§2.8).

A press counts only from an owner id on the account that posted the prompt; anyone else is
told they are not authorized and nothing is resolved. When the approval ends (answered
here or in the Control UI, expired, withdrawn), every prompt is edited to say how, which
also removes the buttons.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from channels.base import ButtonPress, ButtonTransport, OutboundTarget
from channels.policy import WILDCARD, id_set, normalize_id
from gateway.agents.tools.approvals import ApprovalError, Pending, broker

if TYPE_CHECKING:
    from channels.manager import AccountRuntime, ChannelManager
    from gateway.config.models import DiscordConfig, OpenClawConfig, TelegramConfig

log = logging.getLogger("channels.approvals")

PREFIX = "xa"  # callback data "xa:<approval id>:a|d" (Telegram allows 64 bytes)
DECISIONS = {"a": "allow-once", "d": "deny"}
MAX_OWNER_DMS = 3  # a prompt per owner DM, bounded
NOT_AUTHORIZED = "⛔ You are not authorized to answer this approval."
GONE = "This approval has already been answered or has expired."
ENDED = {
    "timeout": "⌛ Expired unanswered: denied.",
    "run-aborted": "Withdrawn: the run was stopped.",
    "no-route": "Could not be delivered: denied.",
}


def owner_ids(
    config: OpenClawConfig, channel: str, section: DiscordConfig | TelegramConfig
) -> frozenset[str]:
    """The numeric owner ids for `channel` (usernames cannot be checked against a press)."""
    owners = config.commands.owner_allow_from
    if owners is not None:
        entries = owners if isinstance(owners, list) else [owners]
        ids = id_set(channel, [e for e in entries if isinstance(e, str | int)])
    else:
        ids = id_set(channel, section.allow_from)
    return frozenset(i for i in ids if i != WILDCARD and i.isdigit())


@dataclass
class Prompt:
    transport: ButtonTransport
    target: OutboundTarget
    message_id: str


@dataclass
class Offer:
    channel: str
    account_id: str
    approvers: frozenset[str]
    targets: list[OutboundTarget | str]  # a str: an owner's user id, to reach in a DM
    prompts: list[Prompt] = field(default_factory=list)
    ended: str | None = None  # the closing text, once the approval ended


def _fit(command: str, limit: int, escape: Callable[[str], str]) -> str:
    """`command` escaped, cut so the escaped text stays within `limit`, saying how much is
    not shown (the full command is in the Control UI and `exec.approval.get`)."""
    shown = escape(command)
    if len(shown) <= limit:
        return shown
    keep = limit
    while keep > 0 and len(escape(command[:keep])) > limit:
        keep = keep * 3 // 4
    rest = len(command) - keep
    return escape(command[:keep]) + escape(f"\n… {rest} more characters, not shown here")


def _md_escape(text: str) -> str:
    # Inside a code block only a fence can end it: keep the backticks visible, unbroken.
    return text.replace("`", "\u02cb")


def _md_inline(text: str) -> str:
    return "`" + text.replace("`", "\u02cb") + "`"


@dataclass(frozen=True)
class Style:
    """How one channel shows the prompt (Telegram HTML, Discord Markdown)."""

    bold: Callable[[str], str]
    block: Callable[[str], str]
    inline: Callable[[str], str]
    escape: Callable[[str], str]
    command_limit: int


STYLES = {
    "telegram": Style(
        bold=lambda t: f"<b>{t}</b>",
        block=lambda t: f"<pre>{t}</pre>",
        inline=lambda t: f"<code>{html.escape(t)}</code>",
        escape=html.escape,
        command_limit=3000,  # Telegram: 4096 characters per message
    ),
    "discord": Style(
        bold=lambda t: f"**{t}**",
        block=lambda t: f"```\n{t}\n```",
        inline=_md_inline,
        escape=_md_escape,
        command_limit=1500,  # Discord: 2000 characters per message
    ),
}


def prompt_text(pending: Pending, channel: str) -> str:
    style = STYLES[channel]
    request = pending.request
    minutes = max(1, round((pending.expires_at_ms - pending.created_at_ms) / 60_000))
    agent = style.inline(str(request.get("agentId")))
    return (
        f"🔐 {style.bold('Exec approval needed')} (agent {agent})\n"
        f"{style.block(_fit(str(request.get('command', '')), style.command_limit, style.escape))}\n"
        f"cwd: {style.inline(str(request.get('cwd', '')))}\n"
        f"Expires unanswered in {minutes} min (denied). id: {style.inline(pending.id)}"
    )


def ended_text(
    pending: Pending, channel: str, decision: str, reason: str, resolved_by: str | None
) -> str:
    style = STYLES[channel]
    if reason in ENDED:
        outcome = ENDED[reason]
    elif decision == "allow-once":
        outcome = "✅ Allowed once"
    else:
        outcome = "❌ Denied"
    if resolved_by and reason not in ENDED:
        outcome += f" by {style.inline(resolved_by)}"
    command = _fit(str(pending.request.get("command", "")), style.command_limit, style.escape)
    return f"{outcome}\n{style.block(command)}"


class ChatApprovals:
    """The chat surface of the approval broker (`ApprovalSurface`)."""

    def __init__(self, manager: ChannelManager) -> None:
        self.manager = manager
        self.offers: dict[str, Offer] = {}

    def _plan(self, pending: Pending) -> tuple[AccountRuntime, Offer] | None:
        origin = pending.origin
        if origin is None or origin.channel not in STYLES:
            return None
        channel = origin.channel
        rt = self.manager.get(channel, origin.account_id)
        if rt is None or not rt.status.running or not isinstance(rt.transport, ButtonTransport):
            return None
        config = self.manager.gateway.loaded.config
        owners = owner_ids(config, channel, rt.pipeline.section)
        if not owners:
            return None
        sender = normalize_id(channel, origin.sender_id or "")
        targets: list[OutboundTarget | str]
        if origin.chat_type == "direct" and origin.chat_id and sender in owners:
            targets = [OutboundTarget(origin.chat_id, origin.thread_id)]
        else:  # a group or a stranger's DM: the owners' own DMs, opened when sending
            targets = [*sorted(owners)[:MAX_OWNER_DMS]]
        return rt, Offer(channel, rt.account_id, owners, targets)

    def routes(self, pending: Pending) -> bool:
        return self._plan(pending) is not None

    async def offer(self, pending: Pending) -> bool:
        plan = self._plan(pending)
        if plan is None:
            return False
        rt, offer = plan
        transport = rt.transport
        assert isinstance(transport, ButtonTransport)
        self.offers[pending.id] = offer
        buttons = [("Allow once", f"{PREFIX}:{pending.id}:a"), ("Deny", f"{PREFIX}:{pending.id}:d")]
        text = prompt_text(pending, offer.channel)
        for where in offer.targets:
            try:
                target = where if isinstance(where, OutboundTarget) else None
                if target is None:
                    target = await transport.dm_target(str(where))
                sent = await transport.send_buttons(target, text, buttons)
            except Exception as exc:  # e.g. the owner never opened a DM with the bot
                log.warning(
                    "exec approval %s: prompt to %s %s failed: %s",
                    pending.id,
                    offer.channel,
                    where.chat_id if isinstance(where, OutboundTarget) else f"DM of {where}",
                    exc,
                )
                continue
            prompt = Prompt(transport, target, sent.message_id)
            offer.prompts.append(prompt)
            if offer.ended is not None:  # answered elsewhere while this one was on its way
                await self._end(prompt, pending, offer.ended)
        if not offer.prompts:
            self.offers.pop(pending.id, None)
        return bool(offer.prompts)

    async def close(
        self, pending: Pending, decision: str, reason: str, resolved_by: str | None
    ) -> None:
        offer = self.offers.pop(pending.id, None)
        if offer is None:
            return
        offer.ended = ended_text(pending, offer.channel, decision, reason, resolved_by)
        for prompt in list(offer.prompts):
            await self._end(prompt, pending, offer.ended)

    @staticmethod
    async def _end(prompt: Prompt, pending: Pending, text: str) -> None:
        try:
            await prompt.transport.end_buttons(prompt.target, prompt.message_id, text)
        except Exception as exc:
            log.warning("exec approval %s: prompt update failed: %s", pending.id, exc)

    async def press(self, press: ButtonPress) -> str:
        """Resolve from a button press; the answer is shown to the presser only."""
        parts = press.data.split(":")
        if len(parts) != 3 or parts[0] != PREFIX or parts[2] not in DECISIONS:
            return "Unknown button."
        approval_id, decision = parts[1], DECISIONS[parts[2]]
        offer = self.offers.get(approval_id)
        if offer is None:
            return GONE
        sender = normalize_id(press.channel, press.user_id)
        if (
            press.channel != offer.channel
            or press.account_id != offer.account_id
            or sender not in offer.approvers
        ):
            log.warning(
                "exec approval %s: press by %s:%s refused (not an owner)",
                approval_id,
                press.channel,
                press.user_id,
            )
            return NOT_AUTHORIZED
        try:
            broker(self.manager.gateway).resolve(approval_id, decision, f"{press.channel}:{sender}")
        except ApprovalError:
            return GONE
        return "Allowed once." if decision == "allow-once" else "Denied."
