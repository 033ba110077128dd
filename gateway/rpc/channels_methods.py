"""Channel methods: `channels.status`, `send` (and its error mapping, shared with
`message.action`), `channels.pairing.list` / `.approve` / `.dismiss`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from channels.base import DeliveryError
from channels.pairing import MAX_PENDING_PER_ACCOUNT, TTL_MS, PairingStore
from gateway.auth import FailedAuthLimiter
from gateway.protocol.errors import INVALID_REQUEST, NOT_FOUND, UNAVAILABLE, RpcError
from gateway.protocol.scopes import PAIRING, READ, WRITE
from gateway.rpc import idempotency
from gateway.rpc.registry import CallContext, method

if TYPE_CHECKING:
    from channels.manager import ChannelManager

LABELS = {"discord": "Discord", "telegram": "Telegram"}


class _Params(BaseModel):
    # Reference fields we do not act on (media, silent, ...) are accepted and ignored.
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class ChannelsStatusParams(_Params):
    probe: bool | None = None
    timeout_ms: int | None = Field(None, alias="timeoutMs", ge=0)
    channel: str | None = Field(None, min_length=1)


class SendParams(_Params):
    to: str = Field(min_length=1, max_length=256)
    message: str | None = Field(None, max_length=200_000)
    channel: str | None = None
    account_id: str | None = Field(None, alias="accountId")
    thread_id: str | None = Field(None, alias="threadId")
    reply_to_id: str | None = Field(None, alias="replyToId")
    idempotency_key: str = Field(alias="idempotencyKey", min_length=1, max_length=256)


class PairingListParams(_Params):
    channel: str | None = Field(None, min_length=1)
    account_id: str | None = Field(None, alias="accountId", min_length=1)


class PairingApproveParams(_Params):
    channel: str = Field(min_length=1)
    account_id: str | None = Field(None, alias="accountId", min_length=1)
    request_id: str | None = Field(None, alias="requestId", min_length=1)
    code: str | None = Field(None, min_length=1)  # our CLI's word for the same thing
    notify: bool = False
    bootstrap_command_owner: bool = Field(False, alias="bootstrapCommandOwner")


def _manager(ctx: CallContext) -> ChannelManager | None:
    manager: ChannelManager | None = ctx.gateway.extensions.get("channels")
    return manager


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


@method("channels.status", scope=READ, params=ChannelsStatusParams)
async def channels_status(ctx: CallContext, params: ChannelsStatusParams) -> dict[str, Any]:
    manager = _manager(ctx)
    if manager is None:
        return {
            "ts": int(datetime.now(UTC).timestamp() * 1000),
            "channelOrder": [],
            "channelLabels": {},
            "channels": {},
            "channelAccounts": {},
            "channelDefaultAccountId": {},
        }
    return manager.status_result(params.channel)


@method("send", scope=WRITE, params=SendParams)
async def send(ctx: CallContext, params: SendParams) -> dict[str, Any]:
    # Per gateway: a retried `send` with the same key is answered, not delivered twice.
    async def deliver() -> dict[str, Any]:
        manager = _manager(ctx)
        if manager is None or not manager.accounts:
            raise RpcError(UNAVAILABLE, "no chat channels are running")
        with delivery_errors("send", params.channel):
            delivered = await manager.send_text(
                params.channel,
                params.to,
                params.message or "",
                account_id=params.account_id,
                thread_id=params.thread_id,
                reply_to_id=params.reply_to_id,
            )
        sent = delivered.sent
        return {
            "ok": True,
            "channel": delivered.account.channel,
            "accountId": delivered.account.account_id,
            "to": params.to,
            "messageId": sent[0].message_id if sent else None,
            "messageIds": [s.message_id for s in sent],
        }

    return await idempotency.results(ctx.gateway).run("send:" + params.idempotency_key, deliver)


@contextlib.contextmanager
def delivery_errors(method: str, channel: str | None, what: str = "send") -> Iterator[None]:
    """ChannelManager failures inside the block as the RPC errors `method` answers with."""
    try:
        yield
    except DeliveryError as exc:
        if not exc.missing:
            # Nothing was sent (the channel is down): `details.method` tells the reference
            # client the gateway itself refused, so it is safe to try again later.
            raise RpcError(
                UNAVAILABLE,
                str(exc),
                details={"method": method},
                retryable=True,
                retry_after_ms=5000,
            ) from exc
        code = NOT_FOUND if "not configured" in str(exc) else INVALID_REQUEST
        prefix = "" if code == NOT_FOUND else f"invalid {method} params: "
        raise RpcError(code, prefix + str(exc)) from exc
    except RpcError:
        raise
    except Exception as exc:
        # The platform's own answer (a 4xx names what it refused); a send may be retried.
        raise RpcError(
            UNAVAILABLE, f"{channel or 'channel'} {what} failed: {exc}", retryable=what == "send"
        ) from exc


# Codes are 8 characters from 32 (2^40): guessing one over RPC is hopeless at this rate, and
# the throttle keeps a leaked low-scope token from trying.
APPROVE_MISSES = 5
APPROVE_WINDOW_S = 60.0
APPROVE_LOCKOUT_S = 60.0


def _approve_limiter(ctx: CallContext) -> FailedAuthLimiter:
    limiter = ctx.gateway.extensions.get("pairing.approveLimiter")
    if not isinstance(limiter, FailedAuthLimiter):
        limiter = FailedAuthLimiter(
            max_attempts=APPROVE_MISSES,
            window_s=APPROVE_WINDOW_S,
            lockout_s=APPROVE_LOCKOUT_S,
            exempt_loopback=False,
        )
        ctx.gateway.extensions["pairing.approveLimiter"] = limiter
    return limiter


def _store(ctx: CallContext) -> PairingStore:
    manager = _manager(ctx)
    return manager.pairing if manager is not None else PairingStore(ctx.gateway.settings.state_dir)


@method("channels.pairing.list", scope=PAIRING, params=PairingListParams)
async def pairing_list(ctx: CallContext, params: PairingListParams) -> dict[str, Any]:
    store = _store(ctx)
    requests = store.pending(params.channel, params.account_id)
    manager = _manager(ctx)
    accounts = []
    if manager is not None:
        for channel in manager.channel_order():
            if params.channel in (None, channel):
                for aid in manager.accounts[channel]:
                    accounts.append(
                        {
                            "channel": channel,
                            "channelLabel": LABELS[channel],
                            "accountId": aid,
                            "notifySupported": False,
                        }
                    )
    return {
        "accounts": accounts,
        "requests": [
            {
                "requestId": r.code,
                "channel": r.channel,
                "channelLabel": LABELS.get(r.channel, r.channel),
                "accountId": r.account_id,
                "senderId": r.sender_id,
                "senderLabel": r.sender_label or r.sender_id,
                "metadata": {"code": r.code},
                "createdAt": _iso(r.created_at),
                "lastSeenAt": _iso(r.last_seen_at),
                "expiresAt": _iso(r.expires_at),
                "notifySupported": False,
            }
            for r in requests
        ],
        "commandOwnerConfigured": False,
        "limits": {"pendingPerAccount": MAX_PENDING_PER_ACCOUNT, "ttlMs": TTL_MS},
    }


@method("channels.pairing.approve", scope=PAIRING, params=PairingApproveParams)
async def pairing_approve(ctx: CallContext, params: PairingApproveParams) -> dict[str, Any]:
    code = params.request_id or params.code
    if not code:
        raise RpcError(
            INVALID_REQUEST, "invalid channels.pairing.approve params: requestId is required"
        )
    limiter = _approve_limiter(ctx)
    who = ctx.conn.address if ctx.conn is not None else "local"
    throttled = limiter.throttled_for(who)
    if throttled > 0:
        raise RpcError(
            UNAVAILABLE,
            "too many unknown pairing codes; try again later",
            details={"code": "PAIRING_RATE_LIMITED"},
            retryable=True,
            retry_after_ms=int(throttled * 1000) + 1,
        )
    approved = _store(ctx).approve(params.channel, code, params.account_id)
    if approved is None:
        limiter.failure(who)
        raise RpcError(NOT_FOUND, f"no pending {params.channel} pairing request {code.upper()}")
    return {
        "requestId": approved.code,
        "senderId": approved.sender_id,
        "notification": "unsupported" if params.notify else "not-requested",
        "commandOwnerBootstrap": "unavailable"
        if params.bootstrap_command_owner
        else "not-requested",
    }


class PairingDismissParams(_Params):
    channel: str = Field(min_length=1)
    account_id: str | None = Field(None, alias="accountId", min_length=1)
    request_id: str = Field(alias="requestId", min_length=1)


@method("channels.pairing.dismiss", scope=PAIRING, params=PairingDismissParams)
async def pairing_dismiss(ctx: CallContext, params: PairingDismissParams) -> dict[str, Any]:
    dismissed = _store(ctx).dismiss(params.channel, params.request_id, params.account_id)
    if dismissed is None:
        raise RpcError(
            NOT_FOUND, f"no pending {params.channel} pairing request {params.request_id.upper()}"
        )
    return {"requestId": dismissed.code, "senderId": dismissed.sender_id}
