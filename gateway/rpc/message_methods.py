"""`message.action`: a channel action asked for by an operator client, as the reference's
`openclaw message <action>` sends it (the CLI hands Telegram actions to the gateway).

Only what our channel adapters can really do is carried out, on Telegram and Discord: `send`
(text, to a chat / topic / channel / user), `edit` and `delete` of a message, and `react`.
Any other action, and any part of a request we cannot carry out (media, buttons, polls, pins,
silent sends), is refused with INVALID_REQUEST naming it: an operator must never be told a
message went out when it did not, or went out without its attachment. This acts as the bot
on any chat it can reach, so the method needs operator.write (the reference's scope) and every
target and message id is checked (channels.targets) before a request leaves.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from channels.targets import TargetError, parse_target
from gateway.protocol.errors import INVALID_REQUEST, UNAVAILABLE, RpcError
from gateway.protocol.scopes import WRITE
from gateway.rpc import idempotency
from gateway.rpc.channels_methods import delivery_errors
from gateway.rpc.registry import CallContext, method

if TYPE_CHECKING:
    from channels.manager import ChannelManager, Delivered

log = logging.getLogger("gateway.rpc.message")

SUPPORTED_ACTIONS = ("send", "edit", "delete", "react")
CHANNELS = ("telegram", "discord")
MAX_TEXT = 200_000  # as `send`: far above both platforms' limits, chunked by the pipeline

# Parameters whose meaning we cannot carry out; a truthy value is refused by name.
_UNDELIVERABLE = {
    "media": "media attachments",
    "mediaUrl": "media attachments",
    "mediaUrls": "media attachments",
    "attachments": "media attachments",
    "buffer": "media attachments",
    "filePath": "media attachments",
    "path": "media attachments",
    "image": "media attachments",
    "presentation": "presentation blocks",
    "interactive": "buttons",
    "buttons": "buttons",
    "components": "Discord components",
    "location": "locations",
    "pin": "pinned delivery",
    "delivery": "delivery preferences",
    "silent": "silent sends",
    "asVoice": "voice notes",
    "asVideoNote": "video notes",
    "gifPlayback": "GIF playback",
    "forceDocument": "document sends",
    "sticker": "stickers",
    "stickerId": "stickers",
    "pollQuestion": "polls",
    "quoteText": "quoted replies",
}


class _Open(BaseModel):
    # Unknown optional params are accepted and ignored (protocol.md §6).
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class ExplicitReply(_Open):
    reply_to_id: str = Field(alias="replyToId", min_length=1, max_length=64)
    source: Literal["explicit", "implicit"]
    mode: Literal["first", "all"] | None = None


class MessageActionParams(_Open):
    channel: str = Field(min_length=1, max_length=64)
    action: str = Field(min_length=1, max_length=64)
    params: dict[str, Any]
    reply: ExplicitReply | None = None
    account_id: str | None = Field(None, alias="accountId", max_length=128)
    idempotency_key: str = Field(alias="idempotencyKey", min_length=1, max_length=256)
    # senderIsOwner, sessionKey, agentId, toolContext, …: the reference uses them for an
    # agent's own message tool (transcript mirroring, owner-only reads); an operator's
    # send needs none of them, and none of them widens what this method may do.


class _Targeted(_Open):
    # The reference CLI sends the target twice (`target`, and `to` as its plugins read it).
    to: str | None = Field(None, min_length=1, max_length=256)
    target: str | None = Field(None, min_length=1, max_length=256)
    account_id: str | None = Field(None, alias="accountId", max_length=128)


class SendAction(_Targeted):
    """`params` of `send` (the reference's message-tool names)."""

    message: str | None = Field(None, max_length=MAX_TEXT)
    content: str | None = Field(None, max_length=MAX_TEXT)
    thread_id: str | int | None = Field(None, alias="threadId")
    reply_to: str | int | None = Field(None, alias="replyTo")


class MessageRef(_Targeted):
    """`params` of `delete`: the chat (`to`) and the message in it."""

    message_id: str | int = Field(alias="messageId")


class EditAction(MessageRef):
    message: str | None = Field(None, max_length=MAX_TEXT)
    content: str | None = Field(None, max_length=MAX_TEXT)


class ReactAction(MessageRef):
    emoji: str = Field("", max_length=64)
    remove: bool = False


_PARAMS: dict[str, type[_Targeted]] = {
    "send": SendAction,
    "edit": EditAction,
    "delete": MessageRef,
    "react": ReactAction,
}


def _manager(ctx: CallContext) -> ChannelManager | None:
    manager: ChannelManager | None = ctx.gateway.extensions.get("channels")
    return manager


def _invalid(text: str) -> RpcError:
    return RpcError(INVALID_REQUEST, f"invalid message.action params: {text}")


def _action_params(action: str, params: MessageActionParams) -> _Targeted:
    try:
        parsed = _PARAMS[action].model_validate(params.params)
    except ValidationError as exc:
        where = [
            f"params.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors(include_url=False)[:5]
        ]
        raise _invalid("; ".join(where)) from exc
    refused = sorted({what for key, what in _UNDELIVERABLE.items() if params.params.get(key)})
    if refused:
        raise RpcError(
            INVALID_REQUEST,
            f"message.action {action}: clawgate carries text only; {', '.join(refused)} "
            "are not supported",
        )
    return parsed


def _differ(channel: str, to: str, target: str) -> bool:
    try:
        return parse_target(channel, to) != parse_target(channel, target)
    except TargetError:
        return to.strip() != target.strip()  # the send names the malformed one


def _account(params: MessageActionParams, inner_params: _Targeted) -> str | None:
    outer, inner = params.account_id or None, inner_params.account_id or None
    if outer and inner and outer != inner:
        raise _invalid(f"accountId {outer!r} does not match params.accountId {inner!r}")
    return outer or inner


def _text(p: SendAction | EditAction) -> str:
    return p.message if p.message is not None else (p.content or "")


async def _perform(
    manager: ChannelManager,
    action: str,
    channel: str,
    to: str,
    p: _Targeted,
    params: MessageActionParams,
    account_id: str | None,
) -> tuple[Delivered, dict[str, Any]]:
    """Carry out one supported action; returns what happened and the action's own fields."""
    with delivery_errors("message.action", channel, action):
        if isinstance(p, SendAction):
            reply_to = params.reply.reply_to_id if params.reply is not None else None
            if reply_to is None and p.reply_to is not None:
                reply_to = str(p.reply_to)
            delivered = await manager.send_text(
                channel,
                to,
                _text(p),
                account_id=account_id,
                thread_id=str(p.thread_id) if p.thread_id is not None else None,
                reply_to_id=reply_to,
            )
            ids = [s.message_id for s in delivered.sent]
            return delivered, {"messageId": ids[0] if ids else None, "messageIds": ids}
        assert isinstance(p, MessageRef)
        mid = str(p.message_id)
        if isinstance(p, EditAction):
            delivered = await manager.edit_text(channel, to, mid, _text(p), account_id=account_id)
            return delivered, {"messageId": mid}
        if isinstance(p, ReactAction):
            delivered = await manager.react(
                channel, to, mid, p.emoji, remove=p.remove, account_id=account_id
            )
            outcome: dict[str, Any] = {"removed": True} if p.remove else {"added": p.emoji}
            return delivered, {"messageId": mid, **outcome}
        delivered = await manager.delete_message(channel, to, mid, account_id=account_id)
        return delivered, {"messageId": mid, "deleted": True}


@method("message.action", scope=WRITE, params=MessageActionParams)
async def message_action(ctx: CallContext, params: MessageActionParams) -> dict[str, Any]:
    channel = params.channel.strip().lower()
    action = params.action.strip().lower()
    if channel not in CHANNELS:
        raise _invalid(f"unsupported channel {params.channel!r} (clawgate has telegram, discord)")
    if action not in SUPPORTED_ACTIONS:
        raise RpcError(
            INVALID_REQUEST,
            f"message action {params.action!r} is not supported by clawgate on {channel} "
            f"(supported: {', '.join(SUPPORTED_ACTIONS)})",
        )
    p = _action_params(action, params)
    to = p.to or p.target
    if to is None:
        raise _invalid("params.to (the target) is required")
    if p.to and p.target and _differ(channel, p.to, p.target):
        raise _invalid(f"params.to {p.to!r} and params.target {p.target!r} differ")
    account_id = _account(params, p)

    async def run() -> dict[str, Any]:
        manager = _manager(ctx)
        if manager is None or not manager.accounts:
            raise RpcError(
                UNAVAILABLE,
                "no chat channels are running",
                details={"method": "message.action"},
            )
        delivered, fields = await _perform(manager, action, channel, to, p, params, account_id)
        who = ctx.conn.address if ctx.conn is not None else "local"
        # Who made the bot act where (never the text: it may be private).
        log.info(
            "message.action %s: %s account %s -> %s (message %s) for %s",
            action,
            channel,
            delivered.account.account_id,
            delivered.target.chat_id,
            fields.get("messageId"),
            who,
        )
        thread = delivered.target.thread_id
        return {
            "ok": True,
            "channel": channel,
            "accountId": delivered.account.account_id,
            "to": to,
            "chatId": delivered.target.chat_id,
            **({"threadId": thread} if thread and action == "send" else {}),
            **fields,
        }

    key = f"message.action:{action}:{params.idempotency_key}"
    return await idempotency.results(ctx.gateway).run(key, run)
