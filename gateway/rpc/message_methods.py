"""`message.action`: a channel action asked for by an operator client, as the reference's
`openclaw message <action>` sends it (the CLI hands Telegram actions to the gateway).

Only what our channel adapters can really do is carried out: `send` of text to a Telegram
chat or a Discord channel / user. Any other action, and any part of a send we cannot deliver
(media, buttons, polls, pins, silent sends), is refused with INVALID_REQUEST naming it: an
operator must never be told a message went out when it did not, or went out without its
attachment. Sending puts text on a platform as the bot, so the method needs operator.write
(the reference's scope) and every target is checked (channels.targets) before a request
leaves.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from channels.targets import TargetError, parse_target
from gateway.protocol.errors import INVALID_REQUEST, UNAVAILABLE, RpcError
from gateway.protocol.scopes import WRITE
from gateway.rpc import idempotency
from gateway.rpc.channels_methods import deliver_text
from gateway.rpc.registry import CallContext, method

if TYPE_CHECKING:
    from channels.manager import ChannelManager

log = logging.getLogger("gateway.rpc.message")

SUPPORTED_ACTIONS = ("send",)
CHANNELS = ("telegram", "discord")
MAX_TEXT = 200_000  # as `send`: far above both platforms' limits, chunked by the pipeline

# Send parameters whose meaning we cannot carry out; a truthy value is refused by name.
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


class SendAction(_Open):
    """`params` of a `send` action (the reference's message-tool names)."""

    to: str | None = Field(None, min_length=1, max_length=256)
    target: str | None = Field(None, min_length=1, max_length=256)
    message: str | None = Field(None, max_length=MAX_TEXT)
    content: str | None = Field(None, max_length=MAX_TEXT)
    account_id: str | None = Field(None, alias="accountId", max_length=128)
    thread_id: str | int | None = Field(None, alias="threadId")
    reply_to: str | int | None = Field(None, alias="replyTo")


def _manager(ctx: CallContext) -> ChannelManager | None:
    manager: ChannelManager | None = ctx.gateway.extensions.get("channels")
    return manager


def _invalid(text: str) -> RpcError:
    return RpcError(INVALID_REQUEST, f"invalid message.action params: {text}")


def _send_params(params: MessageActionParams) -> SendAction:
    try:
        send = SendAction.model_validate(params.params)
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
            f"message.action send: clawgate sends text only; {', '.join(refused)} "
            "are not supported",
        )
    return send


def _differ(channel: str, to: str, target: str) -> bool:
    try:
        return parse_target(channel, to) != parse_target(channel, target)
    except TargetError:
        return to.strip() != target.strip()  # the send names the malformed one


def _account(params: MessageActionParams, send: SendAction) -> str | None:
    outer, inner = params.account_id or None, send.account_id or None
    if outer and inner and outer != inner:
        raise _invalid(f"accountId {outer!r} does not match params.accountId {inner!r}")
    return outer or inner


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
    send = _send_params(params)
    # The reference CLI sends the target twice (`target`, and `to` as its plugins read it).
    to = send.to or send.target
    if to is None:
        raise _invalid("params.to (the target) is required")
    if send.to and send.target and _differ(channel, send.to, send.target):
        raise _invalid(f"params.to {send.to!r} and params.target {send.target!r} differ")
    text = send.message if send.message is not None else (send.content or "")
    account_id = _account(params, send)
    reply_to = params.reply.reply_to_id if params.reply is not None else None
    reply_to = reply_to or (str(send.reply_to) if send.reply_to is not None else None)
    thread_id = str(send.thread_id) if send.thread_id is not None else None

    async def deliver() -> dict[str, Any]:
        manager = _manager(ctx)
        if manager is None or not manager.accounts:
            raise RpcError(
                UNAVAILABLE,
                "no chat channels are running",
                details={"method": "message.action"},
            )
        delivered = await deliver_text(
            manager,
            "message.action",
            channel,
            to,
            text,
            account_id=account_id,
            thread_id=thread_id,
            reply_to_id=reply_to,
        )
        ids = [s.message_id for s in delivered.sent]
        who = ctx.conn.address if ctx.conn is not None else "local"
        # Who made the bot speak where (never the text: it may be private).
        log.info(
            "message.action send: %s account %s -> %s (%d message(s)) for %s",
            channel,
            delivered.account.account_id,
            delivered.target.chat_id,
            len(ids),
            who,
        )
        return {
            "ok": True,
            "channel": channel,
            "accountId": delivered.account.account_id,
            "to": to,
            "chatId": delivered.target.chat_id,
            **({"threadId": delivered.target.thread_id} if delivered.target.thread_id else {}),
            "messageId": ids[0] if ids else None,
            "messageIds": ids,
        }

    key = f"message.action:{action}:{params.idempotency_key}"
    return await idempotency.results(ctx.gateway).run(key, deliver)
