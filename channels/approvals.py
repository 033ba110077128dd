"""Exec approval prompts in chats (tools.md §3.4): buttons to the owner, answered by a press.

An approval asked by a Telegram turn is also offered as a message with two inline buttons,
"Allow once" and "Deny", posted where only the owner can press it: in the owner's own DM
when the turn came from there, else in each owner's DM with the bot (never in the group, so
strangers see no command and get no buttons). Owners are `commands.ownerAllowFrom` (or,
while that is unset, the ids `allowFrom` lists), as for the owner flag of a turn (§2.8).

A press counts only from an owner id on the account that posted the prompt; anyone else is
told they are not authorized and nothing is resolved. When the approval ends (answered
here or in the Control UI, expired, withdrawn), every prompt is edited to say how, which
also removes the buttons.
"""

from __future__ import annotations

import html
import logging
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
MAX_COMMAND_CHARS = 3000  # the prompt must stay under Telegram's 4096 characters
# Channels whose adapters post button prompts (Discord buttons: not yet).
BUTTON_CHANNELS = frozenset({"telegram"})
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
    targets: list[OutboundTarget]
    prompts: list[Prompt] = field(default_factory=list)


def prompt_text(pending: Pending) -> str:
    request = pending.request
    command = str(request.get("command", ""))
    if len(command) > MAX_COMMAND_CHARS:
        command = command[:MAX_COMMAND_CHARS] + f"… ({len(command) - MAX_COMMAND_CHARS} more)"
    minutes = max(1, round((pending.expires_at_ms - pending.created_at_ms) / 60_000))
    return (
        f"🔐 <b>Exec approval needed</b> (agent {html.escape(str(request.get('agentId')))})\n"
        f"<pre>{html.escape(command)}</pre>\n"
        f"cwd: <code>{html.escape(str(request.get('cwd', '')))}</code>\n"
        f"Expires unanswered in {minutes} min (denied). id: <code>{pending.id}</code>"
    )


def ended_text(pending: Pending, decision: str, reason: str, resolved_by: str | None) -> str:
    if reason in ENDED:
        outcome = ENDED[reason]
    elif decision == "allow-once":
        outcome = "✅ Allowed once"
    else:
        outcome = "❌ Denied"
    if resolved_by and reason not in ENDED:
        outcome += f" by {html.escape(resolved_by)}"
    command = str(pending.request.get("command", ""))[:MAX_COMMAND_CHARS]
    return f"{outcome}\n<pre>{html.escape(command)}</pre>"


class ChatApprovals:
    """The chat surface of the approval broker (`ApprovalSurface`)."""

    def __init__(self, manager: ChannelManager) -> None:
        self.manager = manager
        self.offers: dict[str, Offer] = {}

    def _plan(self, pending: Pending) -> tuple[AccountRuntime, Offer] | None:
        origin = pending.origin
        if origin is None or origin.channel not in BUTTON_CHANNELS:
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
        if origin.chat_type == "direct" and origin.chat_id and sender in owners:
            targets = [OutboundTarget(origin.chat_id, origin.thread_id)]
        else:  # a group or a stranger's DM: the owners' own DMs (Telegram: chat id = user id)
            targets = [OutboundTarget(o) for o in sorted(owners)[:MAX_OWNER_DMS]]
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
        text = prompt_text(pending)
        for target in offer.targets:
            try:
                sent = await transport.send_buttons(target, text, buttons)
            except Exception as exc:  # e.g. the owner never opened a DM with the bot
                log.warning(
                    "exec approval %s: prompt to %s %s failed: %s",
                    pending.id,
                    offer.channel,
                    target.chat_id,
                    exc,
                )
                continue
            offer.prompts.append(Prompt(transport, target, sent.message_id))
        if not offer.prompts:
            self.offers.pop(pending.id, None)
        return bool(offer.prompts)

    async def close(
        self, pending: Pending, decision: str, reason: str, resolved_by: str | None
    ) -> None:
        offer = self.offers.pop(pending.id, None)
        if offer is None:
            return
        text = ended_text(pending, decision, reason, resolved_by)
        for prompt in offer.prompts:
            try:  # an edit without a keyboard also removes the buttons
                await prompt.transport.edit_text(prompt.target, prompt.message_id, text)
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
