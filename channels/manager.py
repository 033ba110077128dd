"""Start the configured chat channels with the gateway and expose their state.

One runner per configured and enabled channel account (`channels.<ch>.accounts.<id>`, or the
single `default` account; see `channels.accounts`), each
registered as a gateway `Service` whose `start` only spawns the connection task, so a slow
or broken channel never delays startup or the other channel. Health, `status`, `/readyz`
and the channel RPC methods read the runners through `gateway.extensions`.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from channels.accounts import account_ids, default_account_id
from channels.approvals import ChatApprovals
from channels.base import (
    AccountStatus,
    ButtonTransport,
    ChannelRunner,
    DeliveryError,
    EditingTransport,
    EditRejected,
    OutboundTarget,
    ReactingTransport,
    SentMessage,
    Transport,
)
from channels.command_auth import native_enabled
from channels.pairing import PairingStore
from channels.pipeline import Pipeline
from channels.targets import TargetError, check_message_id, parse_target
from gateway.agents.tools.approvals import broker
from gateway.runtime import Service

if TYPE_CHECKING:
    from gateway.runtime import Gateway

log = logging.getLogger("channels")

CHANNEL_ORDER = ("discord", "telegram")
CHANNEL_LABELS = {"discord": "Discord", "telegram": "Telegram"}
DEFAULT_ACCOUNT = "default"
SKIP_ENV = "OPENCLAW_SKIP_CHANNELS"


@dataclass
class AccountRuntime:
    channel: str
    account_id: str
    runner: ChannelRunner
    pipeline: Pipeline

    @property
    def status(self) -> AccountStatus:
        return self.runner.status()

    @property
    def transport(self) -> Transport | None:
        return self.runner.transport

    @property
    def failed(self) -> bool:
        """Gave up (bad/missing token, refused intent): enabled but not running, with an error."""
        s = self.status
        return s.enabled and not s.running and s.last_error is not None


@dataclass(frozen=True)
class Delivered:
    """What `ChannelManager.send_text` did: the account, the resolved target, the messages."""

    account: AccountRuntime
    target: OutboundTarget
    sent: list[SentMessage]


class ChannelManager:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.pairing = PairingStore(gateway.settings.state_dir)
        self.accounts: dict[str, dict[str, AccountRuntime]] = {}
        self.started = False
        self.approvals = ChatApprovals(self)  # exec approval buttons for the owner

    # --- building -------------------------------------------------------------------------------

    def _add(self, rt: AccountRuntime) -> None:
        self.accounts.setdefault(rt.channel, {})[rt.account_id] = rt

        async def start() -> None:
            self.started = True
            await rt.runner.start()

        async def stop() -> None:
            await rt.pipeline.drain()
            await rt.runner.stop()

        self.gateway.services.append(Service(f"{rt.channel}:{rt.account_id}", start, stop))

    def build(self) -> None:
        channels = self.gateway.loaded.config.channels
        if channels.telegram is not None and channels.telegram.enabled:
            tokens: dict[str, str] = {}
            for account_id in account_ids(channels.telegram):
                account = channels.telegram.account(account_id)
                if account.enabled:
                    self._build_telegram(account_id, tokens)
        if channels.discord is not None and channels.discord.enabled:
            tokens = {}
            for account_id in account_ids(channels.discord):
                if channels.discord.account(account_id).enabled:
                    self._build_discord(account_id, tokens)

    @staticmethod
    def _duplicate(
        channel: str, account_id: str, token: str | None, tokens: dict[str, str]
    ) -> str | None:
        """Two accounts resolving to one bot token (e.g. a literal and an env variable with
        the same value): the later one does not start (one bot, one connection)."""
        if token is None:
            return None
        first = tokens.setdefault(token, account_id)
        if first == account_id:
            return None
        return (
            f"{channel}: duplicate bot token — account {account_id} uses the same token as "
            f"account {first}; each account needs its own bot"
        )

    def _build_telegram(self, account_id: str, tokens: dict[str, str]) -> None:
        from channels.telegram import TelegramChannel, TokenError, resolve_token

        root = self.gateway.loaded.config.channels.telegram
        assert root is not None
        cfg = root.account(account_id)
        token_error: str | None = None
        try:
            token = resolve_token(cfg, env_fallback=account_id == DEFAULT_ACCOUNT)
        except TokenError as exc:
            token, token_error = None, f"telegram: {exc}"
        duplicate = self._duplicate("telegram", account_id, token, tokens)
        if duplicate is not None:
            token, token_error = None, duplicate
        pipeline = Pipeline(self.gateway, "telegram", account_id, pairing=self.pairing)

        async def on_message(msg: Any, transport: Transport) -> bool:
            # Waits only until the message is taken (queued, answered or dropped on purpose):
            # polling goes on while the turn runs; the update is confirmed after this.
            return await pipeline.accept(msg, transport)

        runner = TelegramChannel(
            account_id=account_id,
            token=token,
            config=cfg,
            on_message=on_message,
            token_error=token_error,
            native_commands=native_enabled(self.gateway.loaded.config, "telegram"),
            on_reaction=pipeline.handle_reaction,
        )
        runner.on_press = self.approvals.press
        pipeline.formatter = runner.format
        pipeline.status = runner.status()
        self._add(AccountRuntime("telegram", account_id, runner, pipeline))

    def _build_discord(self, account_id: str, tokens: dict[str, str]) -> None:
        try:
            from channels.discord import DiscordChannel
            from channels.discord import resolve_token as discord_token
        except ImportError as exc:  # adapter not installed in this build
            log.error("discord adapter unavailable: %s", exc)
            return
        root = self.gateway.loaded.config.channels.discord
        assert root is not None
        cfg = root.account(account_id)
        pipeline = Pipeline(self.gateway, "discord", account_id, pairing=self.pairing)
        token_error: str | None = None
        try:
            token = discord_token(cfg, env_fallback=account_id == DEFAULT_ACCOUNT)
        except ValueError as exc:  # SecretError: a SecretRef names an unset variable
            token, token_error = None, f"discord: {exc}"
        duplicate = self._duplicate("discord", account_id, token, tokens)
        if duplicate is not None:
            token, token_error = None, duplicate

        async def on_discord_message(msg: Any, transport: Transport) -> None:
            # A task of the pipeline's own, so stopping the channel can cancel it.
            pipeline.spawn(msg, transport)

        async def on_discord_command(msg: Any, transport: Transport) -> str | None:
            # A pipeline task too (cancelled with the channel); its outcome tells the adapter
            # what to answer when nothing was sent.
            return await pipeline.spawn(msg, transport)

        runner: Any = DiscordChannel(
            gateway=self.gateway,
            account_id=account_id,
            token=token,
            config=cfg,
            on_message=on_discord_message,
            token_error=token_error,
            on_command=on_discord_command,
            native_commands=native_enabled(self.gateway.loaded.config, "discord"),
            on_reaction=pipeline.handle_reaction,
        )
        runner.on_press = self.approvals.press
        pipeline.status = runner.status()
        self._add(AccountRuntime("discord", account_id, runner, pipeline))

    # --- lookups --------------------------------------------------------------------------------

    def default_account(self, channel: str) -> str:
        section = getattr(self.gateway.loaded.config.channels, channel, None)
        wanted = default_account_id(section)
        accounts = self.accounts.get(channel, {})
        if wanted in accounts or not accounts:
            return wanted
        return next(iter(accounts))

    def get(self, channel: str, account_id: str | None = None) -> AccountRuntime | None:
        accounts = self.accounts.get(channel, {})
        return accounts.get(account_id or self.default_account(channel))

    async def send_text(
        self,
        channel: str | None,
        to: str,
        text: str,
        *,
        account_id: str | None = None,
        thread_id: str | None = None,
        reply_to_id: str | None = None,
    ) -> Delivered:
        """Format, chunk and send `text` to the target `to` (channels.targets forms) on a
        running channel account.

        The one outbound path for everything that is not a reply to an inbound message (the
        `send` and `message.action` RPCs, hooks). `channel` None picks the only running
        channel. Raises DeliveryError naming what is missing or malformed; transport errors
        propagate.
        """
        if not text.strip():
            raise DeliveryError("message must not be empty", missing=True)
        rt, transport, target = await self.resolve(
            channel, to, account_id=account_id, thread_id=thread_id, reply_to_id=reply_to_id
        )
        sent = await rt.pipeline.send(transport, target, text)
        return Delivered(rt, target, sent)

    async def edit_text(
        self, channel: str, to: str, message_id: str, text: str, *, account_id: str | None = None
    ) -> Delivered:
        """Replace the text of one of the bot's messages, formatted as a send would be (it
        must fit one message: an edit cannot split). A refusal by the platform (not ours,
        too old, gone) is a DeliveryError naming it."""
        if not text.strip():
            raise DeliveryError("message must not be empty", missing=True)
        mid = _message_id(message_id)
        rt, transport, target = await self.resolve(channel, to, account_id=account_id)
        if not isinstance(transport, EditingTransport):
            raise DeliveryError(f"{rt.channel} cannot edit messages", missing=True)
        pieces = rt.pipeline.format(text)
        if len(pieces) != 1:
            raise DeliveryError(
                f"the new text needs {len(pieces)} messages after formatting; an edit must fit one",
                missing=True,
            )
        try:
            await transport.edit_text(target, mid, pieces[0])
        except EditRejected as exc:
            raise DeliveryError(f"{rt.channel} refused the edit: {exc}", missing=True) from exc
        return Delivered(rt, target, [SentMessage(mid)])

    async def delete_message(
        self, channel: str, to: str, message_id: str, *, account_id: str | None = None
    ) -> Delivered:
        """Delete a message in the chat `to` names (the platform decides whose it may)."""
        mid = _message_id(message_id)
        rt, transport, target = await self.resolve(channel, to, account_id=account_id)
        if not isinstance(transport, EditingTransport):
            raise DeliveryError(f"{rt.channel} cannot delete messages", missing=True)
        await transport.delete_text(target, mid)
        return Delivered(rt, target, [SentMessage(mid)])

    async def react(
        self,
        channel: str,
        to: str,
        message_id: str,
        emoji: str,
        *,
        remove: bool = False,
        account_id: str | None = None,
    ) -> Delivered:
        """Put the bot's `emoji` on a message, or take it off (`remove`; on Telegram, where a
        bot has one reaction per message, an empty `emoji` clears it)."""
        mid = _message_id(message_id)
        if not emoji.strip() and not (remove and channel == "telegram"):
            raise DeliveryError("emoji is required", missing=True)
        rt, transport, target = await self.resolve(channel, to, account_id=account_id)
        if not isinstance(transport, ReactingTransport):
            raise DeliveryError(f"{rt.channel} cannot react to messages", missing=True)
        if remove:
            await transport.unreact(target, mid, emoji.strip())
        else:
            await transport.react(target, mid, emoji.strip())
        return Delivered(rt, target, [SentMessage(mid)])

    async def resolve(
        self,
        channel: str | None,
        to: str,
        *,
        account_id: str | None = None,
        thread_id: str | None = None,
        reply_to_id: str | None = None,
    ) -> tuple[AccountRuntime, Transport, OutboundTarget]:
        """The running account and the platform target `to` names (a Discord user's DM is
        opened here). DeliveryError(missing=True) for a malformed target or an account that
        is not configured, DeliveryError for one that is not running."""
        if channel is None:
            running = self.channel_order()
            if len(running) != 1:
                raise DeliveryError("channel is required", missing=True)
            channel = running[0]
        try:
            dest = parse_target(channel, to) if channel in CHANNEL_LABELS else None
            thread = check_message_id(thread_id, "threadId") if thread_id else None
            reply_to = check_message_id(reply_to_id, "replyToId") if reply_to_id else None
        except TargetError as exc:
            raise DeliveryError(str(exc), missing=True) from exc
        if dest is not None and dest.thread_id and thread and dest.thread_id != thread:
            raise DeliveryError(
                f"target {to!r} names topic {dest.thread_id} but threadId is {thread}",
                missing=True,
            )
        rt = self.get(channel, account_id)
        if rt is None or dest is None:
            raise DeliveryError(
                f"channel {channel} account {account_id or self.default_account(channel)} "
                "is not configured",
                missing=True,
            )
        transport = rt.transport
        if transport is None or not rt.status.running:
            raise DeliveryError(f"{channel} is not running")
        if not dest.dm:
            return rt, transport, OutboundTarget(dest.chat_id, thread or dest.thread_id, reply_to)
        # A Discord user: messages go to the DM channel, opened (or found) first.
        if not isinstance(transport, ButtonTransport):
            raise DeliveryError(f"{channel} cannot open a direct message", missing=True)
        opened = await transport.dm_target(dest.chat_id)
        return rt, transport, OutboundTarget(opened.chat_id, None, reply_to)

    # --- reporting ------------------------------------------------------------------------------

    def account_snapshot(self, rt: AccountRuntime) -> dict[str, Any]:
        s = rt.status
        configured = getattr(self.gateway.loaded.config.channels, rt.channel, None) is not None
        cfg = rt.pipeline.section if configured else None  # the account's own settings
        if rt.failed:
            state = "failed"
        elif s.connected:
            state = "healthy"
        elif s.running:
            state = "connecting" if s.last_error is None else "degraded"
        else:
            state = "stopped"
        out: dict[str, Any] = {
            "accountId": rt.account_id,
            "enabled": s.enabled,
            "configured": s.configured,
            "running": s.running,
            "connected": s.connected,
            "lastError": s.last_error,
            "healthState": state,
            "reconnectAttempts": s.reconnects,
            "lastConnectedAt": s.last_connected_at,
            "lastInboundAt": s.last_inbound_at,
            "lastOutboundAt": s.last_outbound_at,
        }
        for key in ("mode", "lastStartAt", "lastStopAt"):
            if key in s.extra:
                out[key] = s.extra[key]
        if cfg is not None:
            out["dmPolicy"] = cfg.dm_policy
            out["allowFrom"] = [str(a) for a in cfg.allow_from]
        if s.bot_id or s.bot_name:
            out["bot"] = {"id": s.bot_id, "username": s.bot_name}
        return out

    def channels_snapshot(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for channel in self.channel_order():
            accounts = {
                aid: self.account_snapshot(rt) for aid, rt in self.accounts[channel].items()
            }
            default = accounts.get(self.default_account(channel)) or next(iter(accounts.values()))
            # Newcomers turned away while the pending pairing list was full (the Channels
            # page's badge); the per-channel summary is free-form in the reference's schema.
            turned_away = sum(
                o.count for (ch, _), o in self.pairing.overflow.items() if ch == channel
            )
            out[channel] = {**default, "accounts": accounts, "pairingTurnedAway": turned_away}
        return out

    def channel_order(self) -> list[str]:
        return [c for c in CHANNEL_ORDER if c in self.accounts]

    def health(self) -> dict[str, Any]:
        order = self.channel_order()
        return {
            "channels": self.channels_snapshot(),
            "channelOrder": order,
            "channelLabels": {c: CHANNEL_LABELS[c] for c in order},
        }

    def status_result(self, channel: str | None = None) -> dict[str, Any]:
        """`channels.status` result (schema ChannelsStatusResult)."""
        order = [c for c in self.channel_order() if channel in (None, c)]
        snapshot = self.channels_snapshot()
        return {
            "ts": int(time.time() * 1000),
            "channelOrder": order,
            "channelLabels": {c: CHANNEL_LABELS[c] for c in order},
            "channels": {c: snapshot[c] for c in order},
            "channelAccounts": {
                c: [self.account_snapshot(rt) for rt in self.accounts[c].values()] for c in order
            },
            "channelDefaultAccountId": {c: self.default_account(c) for c in order},
        }

    def summary(self) -> list[str]:
        """One line per account for `status` (`channelSummary`)."""
        lines = []
        for channel in self.channel_order():
            for aid, rt in self.accounts[channel].items():
                s = rt.status
                state = self.account_snapshot(rt)["healthState"]
                who = f" @{s.bot_name}" if s.bot_name else ""
                err = f" — {s.last_error}" if s.last_error else ""
                lines.append(f"{CHANNEL_LABELS[channel]} ({aid}){who}: {state}{err}")
        return lines

    def failing(self) -> list[str]:
        return [
            f"{channel}:{aid}"
            for channel in self.channel_order()
            for aid, rt in self.accounts[channel].items()
            if rt.failed
        ]


def _message_id(value: str) -> str:
    try:
        return check_message_id(value, "messageId")
    except TargetError as exc:
        raise DeliveryError(str(exc), missing=True) from exc


def attach(gateway: Gateway) -> ChannelManager | None:
    """Register each configured channel account as a gateway service."""
    if os.environ.get(SKIP_ENV, "").strip() not in ("", "0", "false"):
        log.info("channels skipped (%s is set)", SKIP_ENV)
        return None
    manager = ChannelManager(gateway)
    manager.build()
    broker(gateway).surfaces.append(manager.approvals)
    gateway.extensions["channels"] = manager
    gateway.extensions["channels.health"] = manager.health
    gateway.extensions["channels.summary"] = manager.summary
    gateway.extensions["channels.failing"] = manager.failing
    return manager
