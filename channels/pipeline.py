"""The platform-neutral inbound pipeline (agents.md §1, channels.md §2–4).

An adapter turns each platform event into an `InboundMessage` and calls
`pipeline.spawn(msg, transport)` (or awaits `pipeline.handle(msg, transport)` in its own
task) in arrival order. Stages: dedupe → route → policy → pairing reply / pending group
history / command → agent run (typing indicator meanwhile) → chunk + format → deliver.

Everything up to handing the message to the agents service runs before the first `await`,
so messages of one chat reach the per-session queue in arrival order even though each is
handled in its own task.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from channels import reactions
from channels.accounts import channel_section, default_account_id
from channels.base import (
    AccountStatus,
    ChannelId,
    Chunking,
    EditingTransport,
    InboundMessage,
    OutboundTarget,
    SentMessage,
    Transport,
)
from channels.chunking import chunk_text
from channels.command_auth import (
    NOT_AUTHORIZED_REPLY,
    CommandAuth,
    authorize,
    commands_enabled,
)
from channels.context import Dedupe, HistoryEntry, PendingHistory, group_prompt, history_limit
from channels.media import MediaGate
from channels.pairing import FULL_REPLY, MAX_PENDING_PER_ACCOUNT, PairingStore, pairing_reply
from channels.policy import (
    WILDCARD,
    Decision,
    decide,
    discord_room_entry,
    id_set,
    normalize_id,
)
from channels.preview import PreviewEditor, settings_for
from channels.reactions import ReactionEvent, SentMessages, TurnReactions
from gateway.agents import commands as chan_commands
from gateway.agents import roster as rv
from gateway.agents.commands import Command
from gateway.agents.freshness import ResetPolicy, ResetRules, select_reset_policy
from gateway.agents.routing import NoOwner, Route, RouteInput, resolve_route
from gateway.agents.runner import QueueFull, RunHandle, RunResult, SubmitRequest
from gateway.agents.session_keys import build_session_key, may_update_last_route
from gateway.agents.tools.registry import Requester
from gateway.agents.usage_footer import turn_footer, with_footer
from gateway.config.models import DiscordConfig, OpenClawConfig, TelegramConfig
from gateway.media.outbound import split_media

if TYPE_CHECKING:
    from gateway.agents.service import AgentService
    from gateway.runtime import Gateway

TYPING_FAILURE_LIMIT = 5
# Transient local failures: retried from RETRY_FIRST_S, doubling up to RETRY_MAX_S, forever.
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0
TRANSIENT_ERRNOS = frozenset(
    {errno.EMFILE, errno.ENFILE, errno.ENOSPC, errno.EDQUOT, errno.ENOMEM, errno.EAGAIN}
)
TYPING_STOP_TIMEOUT_S = 5.0
# `streaming.mode` when unset (channels.md §4.5): Telegram's status draft, Discord none.
DEFAULT_STREAMING = {"telegram": "progress", "discord": "off"}
BUSY_REPLY = "⚠️ Too many messages are waiting for this conversation; please try again shortly."
Formatter = Callable[[str], list[str]]
# What became of one inbound message; callers that must answer something themselves (a
# Discord interaction) look at it when nothing was sent.
Outcome = Literal[
    "duplicate",
    "dropped",
    "pairing",
    "history",
    "unauthorized",
    "command",
    "turn",
    "no-agent",
    "no-owner",
    "error",
]


def is_transient(exc: BaseException) -> bool:
    """A failure of this machine that passes by itself (not a bug, not bad input)."""
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return any(m in text for m in ("locked", "busy", "disk", "unable to open"))
    if isinstance(exc, OSError):
        return exc.errno in TRANSIENT_ERRNOS
    return False


def _now_ms() -> int:
    return int(time.time() * 1000)


def markdown_passthrough(chunking: Chunking) -> Formatter:
    """Discord-style formatting: the model's Markdown as is, chunked."""

    def fmt(text: str) -> list[str]:
        return chunk_text(text, chunking.limit, chunking.max_lines)

    return fmt


def is_owner(
    msg: InboundMessage, config: OpenClawConfig, section: DiscordConfig | TelegramConfig
) -> bool:
    """tools.md §2.8: `commands.ownerAllowFrom` ("<channel>:<id>" or bare ids) when set;
    otherwise a sender the channel's `allowFrom` names by id (a `"*"` names nobody)."""
    sender = normalize_id(msg.channel, msg.sender_id)
    owners = config.commands.owner_allow_from
    if owners is not None:
        entries = owners if isinstance(owners, list) else [owners]
        return sender in id_set(msg.channel, [e for e in entries if isinstance(e, str | int)])
    listed = id_set(msg.channel, section.allow_from)
    return sender in listed and sender != WILDCARD


def requester_for(
    msg: InboundMessage, config: OpenClawConfig, section: DiscordConfig | TelegramConfig
) -> Requester:
    """Who asked, from the adapter's sender facts (never from the message text)."""
    return Requester(
        owner=is_owner(msg, config, section),
        channel=msg.channel,
        chat_type=msg.chat_type,
        chat_id=msg.chat_id,
        guild_id=msg.guild_id,
        thread_id=msg.thread_id,
        account_id=msg.account_id,
        sender_id=msg.sender_id,
        sender_username=msg.sender_username,
        sender_name=msg.sender_name,
    )


def _reset_rules(config: OpenClawConfig) -> ResetRules:
    def conv(p: object) -> ResetPolicy:
        return ResetPolicy(
            mode=getattr(p, "mode", "none"),
            at_hour=getattr(p, "at_hour", 4),
            idle_minutes=getattr(p, "idle_minutes", None),
        )

    s = config.session
    by_type = {
        kind: conv(pol)
        for kind, pol in (
            ("direct", s.reset_by_type.direct),
            ("group", s.reset_by_type.group),
            ("thread", s.reset_by_type.thread),
        )
        if pol is not None
    }
    return ResetRules(
        default=conv(s.reset),
        by_type=by_type,
        by_channel={k.lower(): conv(v) for k, v in s.reset_by_channel.items()},
    )


class Pipeline:
    """One channel account's inbound handling; adapters call `spawn`/`handle`."""

    def __init__(
        self,
        gateway: Gateway,
        channel: ChannelId,
        account_id: str = "default",
        *,
        formatter: Formatter | None = None,
        pairing: PairingStore | None = None,
        status: AccountStatus | None = None,
    ) -> None:
        self.gateway = gateway
        self.channel: ChannelId = channel
        self.account_id = account_id
        self.log = logging.getLogger(f"channels.{channel}")
        self.formatter = formatter
        self.pairing = pairing or PairingStore(gateway.settings.state_dir)
        self.status = status or AccountStatus(account_id=account_id)
        self.dedupe = Dedupe()
        self.history = PendingHistory()
        self.media = MediaGate(gateway, channel)
        self.sent = SentMessages()  # what this account sent (`own` reaction notifications)
        self._section_cache: tuple[OpenClawConfig, DiscordConfig | TelegramConfig] | None = None
        self._tasks: set[asyncio.Task[Outcome]] = set()
        self._warned_no_agents = False

    # --- config (read live so a saved config applies to the next message) -------------------

    @property
    def config(self) -> OpenClawConfig:
        return self.gateway.loaded.config

    @property
    def section(self) -> DiscordConfig | TelegramConfig:
        """This account's effective settings (its `accounts.<id>` over the channel root),
        merged once per loaded config."""
        cfg = self.config
        cached = self._section_cache
        if cached is None or cached[0] is not cfg:
            cached = self._section_cache = (
                cfg,
                channel_section(cfg, self.channel, self.account_id),
            )
        return cached[1]

    @property
    def is_default_account(self) -> bool:
        root = getattr(self.config.channels, self.channel, None)
        return self.account_id == default_account_id(root)

    @property
    def chunking(self) -> Chunking:
        section = self.section
        if isinstance(section, DiscordConfig):
            return Chunking(section.text_chunk_limit, section.max_lines_per_message)
        return Chunking(min(section.text_chunk_limit, 4000))

    def format(self, text: str) -> list[str]:
        """Model Markdown → ready-to-send pieces (per-channel hook; default: chunked as is)."""
        if self.formatter is not None:
            return self.formatter(text)
        return markdown_passthrough(self.chunking)(text)

    # --- entry points ----------------------------------------------------------------------------

    def spawn(
        self,
        msg: InboundMessage,
        transport: Transport,
        accepted: asyncio.Future[bool] | None = None,
    ) -> asyncio.Task[Outcome]:
        task = asyncio.create_task(
            self.handle(msg, transport, accepted), name=f"{self.channel}-inbound"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def accept(self, msg: InboundMessage, transport: Transport) -> bool:
        """Spawn the handling and wait until the message is safely taken: queued for its agent,
        answered, or deliberately dropped (True), or the channel stopped first (False). A
        platform that can redeliver (Telegram) confirms the message only then."""
        accepted: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.spawn(msg, transport, accepted)
        return await asyncio.shield(accepted)

    async def drain(self) -> None:
        """Cancel in-flight handlers (channel stopping)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def handle(
        self,
        msg: InboundMessage,
        transport: Transport,
        accepted: asyncio.Future[bool] | None = None,
    ) -> Outcome:
        """Handle one message; a transient local failure (no descriptors, a locked database, a
        full disk) is retried with back-off until it passes, never dropped."""
        self.status.last_inbound_at = _now_ms()
        key = f"{self.account_id}:{msg.chat_id}:{msg.thread_id or ''}:{msg.message_id}"
        taken = True
        try:
            if self.dedupe.seen(key):
                self.log.debug("duplicate message %s ignored", msg.message_id)
                return "duplicate"
            delay = RETRY_FIRST_S
            attempt = 0
            while True:
                try:
                    return await self._handle(msg, transport, accepted)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if not is_transient(exc) or (accepted is not None and accepted.done()):
                        # One bad message must never take the channel down.
                        self.log.exception(
                            "failed to handle %s message %s", self.channel, msg.message_id
                        )
                        return "error"
                    attempt += 1
                    self.log.warning(
                        "%s message %s hit a local failure (%s: %s); retrying in %.1fs"
                        " (attempt %d)",
                        self.channel,
                        msg.message_id,
                        type(exc).__name__,
                        exc,
                        delay,
                        attempt,
                    )
                await asyncio.sleep(delay)
                delay = min(RETRY_MAX_S, delay * 2)
        except asyncio.CancelledError:
            taken = False
            raise
        finally:
            if accepted is not None and not accepted.done():
                accepted.set_result(taken)

    # --- stages ----------------------------------------------------------------------------------

    def _route(self, msg: InboundMessage) -> Route | NoOwner:
        peer_id = msg.sender_id if msg.chat_type == "direct" else msg.chat_id
        parent_kind = "channel" if msg.parent_chat_id else None
        return resolve_route(
            rv.bindings(self.config),
            rv.roster(self.config),
            RouteInput(
                channel=self.channel,
                account_id=self.account_id,
                is_default_account=self.is_default_account,
                peer_kind=msg.chat_type,
                peer_id=peer_id,
                parent_peer_kind=parent_kind,
                parent_peer_id=msg.parent_chat_id,
                guild_id=msg.guild_id,
                member_role_ids=msg.member_role_ids,
            ),
        )

    def _mention_patterns(self, agent_id: str | None) -> list[str]:
        cfg = self.config
        entry = cfg.agents.entries.get(agent_id) if agent_id else None
        if entry is not None and entry.group_chat is not None:
            if "mention_patterns" in entry.group_chat.model_fields_set:
                return list(entry.group_chat.mention_patterns)
        return list(cfg.messages.group_chat.mention_patterns)

    def session_key(self, msg: InboundMessage, route: Route) -> str:
        cfg = self.config
        peer_id = msg.sender_id if msg.chat_type == "direct" else msg.chat_id
        topic = msg.thread_id if self.channel == "telegram" and msg.chat_type != "direct" else None
        return build_session_key(
            agent_id=route.agent_id,
            channel=self.channel,
            peer_kind=msg.chat_type,
            peer_id=peer_id,
            account_id=self.account_id,
            dm_scope=route.dm_scope(cfg.session.dm_scope),
            group_scope=route.group_scope(cfg.session.group_scope),
            identity_links=cfg.session.identity_links,
            topic_id=topic,
        )

    def _room(self, msg: InboundMessage) -> str:
        return f"{self.account_id}:{msg.chat_id}:{msg.thread_id or ''}"

    def authorize_command(self, msg: InboundMessage, command: Command) -> CommandAuth:
        """channels.md §5.1 for an admitted sender (the pairing store is read per command)."""
        return authorize(
            msg,
            command.name,
            config=self.config,
            section=self.section,
            store_allow=self.pairing.allowed(self.channel, self.account_id),
        )

    async def _handle(
        self,
        msg: InboundMessage,
        transport: Transport,
        accepted: asyncio.Future[bool] | None = None,
    ) -> Outcome:
        cfg = self.config
        command = chan_commands.parse(msg.text, cfg) if commands_enabled(cfg, msg) else None
        route = self._route(msg)
        agent_id = route.agent_id if isinstance(route, Route) else None
        # The approved-pairing store only matters to these DM policies (and is re-read per
        # message so a CLI approval applies at once).
        store_allow = (
            self.pairing.allowed(self.channel, self.account_id)
            if msg.chat_type == "direct"
            and self.section.dm_policy in ("pairing", "allowlist", "open")
            else frozenset()
        )
        decision = decide(
            msg,
            self.section,
            store_allow=store_allow,
            mention_patterns=self._mention_patterns(agent_id),
            default_group_policy=self.config.channels.defaults.group_policy,
        )
        target = OutboundTarget(chat_id=msg.chat_id, thread_id=msg.thread_id)
        if decision.kind == "drop":
            self.log.debug(
                "drop %s message from %s: %s", self.channel, msg.sender_id, decision.reason
            )
            if msg.private_reply:  # only the invoker sees it: say why nothing happens
                await self.deliver(transport, target, NOT_AUTHORIZED_REPLY)
            return "dropped"
        if decision.kind == "pair":
            await self._pair(msg, transport, target)
            return "pairing"
        auth: CommandAuth | None = None
        if command is not None:
            auth = self.authorize_command(msg, command)
            if decision.kind == "history" and auth.listed:
                # Command-only messages from allowlisted senders skip the mention gate.
                decision = Decision("admit", "allowlisted command", True, decision.system_prompt)
        if decision.kind == "history":
            limit = history_limit(self.config, self.channel)
            self.history.record(
                self._room(msg),
                HistoryEntry(
                    self._label(msg), msg.text_with_placeholders, msg.message_id, msg.timestamp_ms
                ),
                limit,
            )
            return "history"
        if auth is not None and not auth.authorized:
            self.log.debug(
                "unauthorized %s command from %s ignored: %s",
                self.channel,
                msg.sender_id,
                auth.reason,
            )
            # Groups: ignored, like the reference; DMs and private replies: told why.
            if msg.private_reply or msg.chat_type == "direct":
                await self.deliver(transport, target, NOT_AUTHORIZED_REPLY, reply_to=msg.message_id)
            return "unauthorized"
        if isinstance(route, NoOwner):
            self.log.warning(route.log_line)
            return "no-owner"
        return await self._admitted(msg, transport, target, route, decision, command, accepted)

    def _label(self, msg: InboundMessage) -> str:
        return msg.sender_name or (
            f"@{msg.sender_username}" if msg.sender_username else msg.sender_id
        )

    async def _pair(
        self, msg: InboundMessage, transport: Transport, target: OutboundTarget
    ) -> None:
        outcome = self.pairing.request(
            self.channel, self.account_id, msg.sender_id, self._label(msg)
        )
        if outcome.turned_away:
            # Told once (not silently ignored), and the owner hears of it (log + UI badge).
            self.log.warning(
                "%s pairing: the pending list is full (%d requests); turned away senderUserId=%s"
                " (review with: python -m gateway pairing list %s)",
                self.channel,
                MAX_PENDING_PER_ACCOUNT,
                msg.sender_id,
                self.channel,
            )
            await self.deliver(transport, target, FULL_REPLY)
            return
        if not outcome.created or outcome.request is None:
            return
        self.log.info(
            "%s pairing request senderUserId=%s (approve with: python -m gateway pairing approve"
            " %s %s)",
            self.channel,
            msg.sender_id,
            self.channel,
            outcome.request.code,
        )
        await self.deliver(
            transport, target, pairing_reply(self.channel, msg.sender_id, outcome.request.code)
        )

    async def _admitted(
        self,
        msg: InboundMessage,
        transport: Transport,
        target: OutboundTarget,
        route: Route,
        decision: Decision,
        command: Command | None,
        accepted: asyncio.Future[bool] | None = None,
    ) -> Outcome:
        svc: AgentService | None = self.gateway.extensions.get("agents")
        if svc is None:
            if not self._warned_no_agents:
                self._warned_no_agents = True
                self.log.warning(
                    "agents service is not running; %s messages are not answered", self.channel
                )
            return "no-agent"
        cfg = self.config
        msg, target = await self._auto_thread(msg, transport, target)
        session_key = self.session_key(msg, route)
        text = msg.text
        if command is not None:
            result = chan_commands.apply(
                command,
                svc=svc,
                config=cfg,
                session_key=session_key,
                agent_id=route.agent_id,
                channel=self.channel,
                sender_id=msg.sender_id,
            )
            if result.run_text is None:
                if result.reply:
                    await self.deliver(transport, target, result.reply, reply_to=msg.message_id)
                return "command"
            text = result.run_text
        if msg.chat_type != "direct":
            text = group_prompt(self.history.take(self._room(msg)), self._label(msg), text)
        if msg.reply_to_text:
            quoted = msg.reply_to_sender or "message"
            text = f"[Replying to {quoted}: {msg.reply_to_text}]\n{text}"
        self._record_inbound(svc, msg, session_key)
        # Reactions and other system events queued for this session reach the agent now.
        pending_events = reactions.take_system_events(self.gateway, session_key)
        if pending_events:
            text = "\n".join([*pending_events, "", text])
        ticket = self.media.ticket(session_key, msg)
        media: tuple[dict[str, Any], ...] = ()
        preview: PreviewEditor | None = None
        try:
            if ticket is not None:
                await ticket.turn()
            if msg.attachments:
                prepared = await self.media.prepare(msg, session_key, text, self.section)
                for notice in prepared.notices:
                    await self.deliver(transport, target, notice, reply_to=msg.message_id)
                if not prepared.usable:
                    for event in pending_events:  # no turn this time: the next one gets them
                        reactions.queue_system_event(self.gateway, session_key, event)
                    return "turn"
                text, media = prepared.text, tuple(prepared.media)
            preview = self._preview(transport, target, msg)
            handle = self._submit(svc, msg, route, decision, session_key, text, media, preview)
        except QueueFull:
            for event in pending_events:  # not lost: the next turn gets them
                reactions.queue_system_event(self.gateway, session_key, event)
            if preview is not None:
                await preview.discard()
            await self.deliver(transport, target, BUSY_REPLY, reply_to=msg.message_id)
            return "turn"
        finally:
            if ticket is not None:
                ticket.release()
        if accepted is not None and not accepted.done():
            accepted.set_result(True)  # queued for its agent: the platform may forget it now
        marks = reactions.plan(cfg, self.section, msg, route.agent_id, transport)
        if marks is not None:
            await marks.acknowledge()
        try:
            outcome = await self._with_typing(transport, target, handle.wait())
        except BaseException:
            if preview is not None:
                await preview.close()
            raise
        await self._deliver_result(
            outcome, msg, transport, target, decision, route.agent_id, preview, marks
        )
        return "turn"

    async def _auto_thread(
        self, msg: InboundMessage, transport: Transport, target: OutboundTarget
    ) -> tuple[InboundMessage, OutboundTarget]:
        """Discord `autoThread`: an admitted top-level message in such a channel opens its
        own thread; the turn (its session, its replies) lives there from now on."""
        section = self.section
        if (
            not isinstance(section, DiscordConfig)
            or msg.chat_type != "channel"
            or msg.thread_id is not None
            or msg.native_command
        ):
            return msg, target
        entry = discord_room_entry(section, msg)
        opener = getattr(transport, "open_thread", None)
        if entry is None or not entry.auto_thread or opener is None:
            return msg, target
        name = next((line.strip() for line in msg.text.splitlines() if line.strip()), "")
        archive = int(entry.auto_archive_duration) if entry.auto_archive_duration else None
        try:
            thread_id = str(await opener(msg.chat_id, msg.message_id, name, archive, msg.guild_id))
        except Exception as exc:  # no thread (permissions): answer in the channel instead
            self.log.warning("discord autoThread failed in %s: %s", msg.chat_id, exc)
            return msg, target
        threaded = replace(msg, chat_id=thread_id, thread_id=thread_id, parent_chat_id=msg.chat_id)
        return threaded, OutboundTarget(thread_id, thread_id)

    def _preview(
        self, transport: Transport, target: OutboundTarget, msg: InboundMessage
    ) -> PreviewEditor | None:
        """This turn's preview editor, when the channel streams previews and can edit."""
        if msg.private_reply or not isinstance(transport, EditingTransport):
            return None
        settings = settings_for(self.section.streaming, DEFAULT_STREAMING[self.channel])
        if settings is None:
            return None
        return PreviewEditor(
            transport,
            lambda i: self._piece_target(target, i, msg.message_id),
            self.format,
            settings,
        )

    def _piece_target(
        self, target: OutboundTarget, index: int, reply_to: str | None
    ) -> OutboundTarget:
        """Where outbound piece `index` goes: `replyToMode` decides which pieces reply."""
        mode = self.section.reply_to_mode
        reply = reply_to if (mode == "all" or (mode == "first" and index == 0)) else None
        return OutboundTarget(target.chat_id, target.thread_id, reply or target.reply_to_message_id)

    def _submit(
        self,
        svc: AgentService,
        msg: InboundMessage,
        route: Route,
        decision: Decision,
        session_key: str,
        text: str,
        media: tuple[dict[str, Any], ...],
        preview: PreviewEditor | None,
    ) -> RunHandle:
        cfg = self.config
        return svc.submit(
            SubmitRequest(
                session_key=session_key,
                text=text,
                agent_id=route.agent_id,
                channel=self.channel,
                chat_type=msg.chat_type,
                account_id=self.account_id,
                display_name=self._label(msg),
                metadata={
                    k: v
                    for k, v in {
                        "senderId": msg.sender_id,
                        "messageId": msg.message_id,
                        "chatId": msg.chat_id,
                        "groupSystemPrompt": decision.system_prompt,
                    }.items()
                    if v
                },
                requester=requester_for(msg, cfg, self.section),
                media=media,
            ),
            on_event=preview.on_run_event if preview is not None else None,
            on_agent_event=preview.on_agent_event if preview is not None else None,
        )

    def _record_inbound(self, svc: AgentService, msg: InboundMessage, session_key: str) -> None:
        """lastInteractionAt, daily/idle expiry and the reply route of the session row."""
        cfg = self.config
        route = {"channel": self.channel, "accountId": self.account_id, "to": msg.chat_id}
        if msg.thread_id:
            route["threadId"] = msg.thread_id
        allow = [str(a) for a in self.section.allow_from]
        keep_route = may_update_last_route(
            session_key=session_key, allow_from=allow, sender_id=msg.sender_id
        )
        policy = select_reset_policy(
            _reset_rules(cfg),
            channel=self.channel,
            chat_type=msg.chat_type,
            is_thread=bool(msg.parent_chat_id),
        )
        try:
            svc.store.record_inbound(
                session_key,
                last_route=route if keep_route else None,
                reset_policy=policy,
                channel=self.channel,
                chat_type=msg.chat_type,
                account_id=self.account_id,
                display_name=self._label(msg),
            )
        except Exception:
            self.log.exception("could not record the inbound message on %s", session_key)

    async def _with_typing(
        self, transport: Transport, target: OutboundTarget, waiting: Awaitable[RunResult]
    ) -> RunResult:
        interval = float(self.config.agents.defaults.typing_interval_seconds)
        done = asyncio.Event()

        async def keepalive() -> None:
            failures = 0
            while not done.is_set():
                try:
                    await transport.send_typing(target)
                    failures = 0
                except Exception as exc:  # typing is best effort (channels.md §4.4)
                    failures += 1
                    self.log.debug("typing indicator failed: %s", exc)
                    if failures >= TYPING_FAILURE_LIMIT:
                        return
                try:
                    await asyncio.wait_for(done.wait(), interval)
                except TimeoutError:
                    pass

        typing = asyncio.create_task(keepalive(), name=f"{self.channel}-typing")
        try:
            result = await waiting
        finally:
            done.set()
            # Let an in-flight typing call finish: cancelling HTTP requests mid-flight can
            # strand pooled connections in some client libraries.
            try:
                await asyncio.wait_for(asyncio.shield(typing), TYPING_STOP_TIMEOUT_S)
            except (TimeoutError, asyncio.CancelledError):
                typing.cancel()
            except Exception:
                pass
        return result

    async def _deliver_result(
        self,
        result: RunResult,
        msg: InboundMessage,
        transport: Transport,
        target: OutboundTarget,
        decision: Decision,
        agent_id: str | None = None,
        preview: PreviewEditor | None = None,
        marks: TurnReactions | None = None,
    ) -> None:
        if result.merged_into is not None or result.state == "aborted":
            if preview is not None:
                await preview.close()  # what was shown stays; the merged run answers
            return
        answer = result.state == "final" and not result.silent and bool(result.text.strip())
        if result.state == "final":
            if answer:
                text, files = split_media(result.text)  # `MEDIA:` lines: files to send back
                footer = self._usage_footer(result, agent_id)
                if text.strip():
                    # The footer joins the final text only: previews never showed it.
                    await self._deliver_answer(
                        transport, target, with_footer(text, footer), msg, preview
                    )
                    footer = None
                elif preview is not None:
                    await preview.discard()
                if files and agent_id is not None:
                    problems = await self.media.send_files(
                        transport, target, files, agent_id, self.section
                    )
                    if problems:
                        await self.deliver(transport, target, "\n".join(problems))
                elif text.strip() and self.media.wants_speech(msg):
                    await self.media.send_speech(transport, target, text)  # `tts`
                if footer:  # a files-only answer: the footer follows on its own
                    await self.deliver(transport, target, footer)
            elif preview is not None:
                await preview.discard()
        elif result.state == "error":
            if preview is not None:
                await preview.discard()
            # Failure text is the runner's friendly message, never a raw provider error;
            # unaddressed group turns stay silent (channels.md §4.8).
            if decision.addressed and result.text.strip():
                await self.deliver(transport, target, result.text, reply_to=msg.message_id)
        if marks is not None:
            await marks.finish("done" if result.state == "final" else "error")

    def _usage_footer(self, result: RunResult, agent_id: str | None) -> str | None:
        """`/usage tokens|full`: the turn's usage line for this session, if it wants one."""
        svc: AgentService | None = self.gateway.extensions.get("agents")
        if svc is None or agent_id is None:
            return None
        try:
            return turn_footer(
                self.config,
                svc.store.get(result.session_key),
                result.outcome,
                agent_id=agent_id,
                channel=self.channel,
            )
        except Exception:  # a footer is never worth losing the answer over
            self.log.exception("usage footer failed for %s", result.session_key)
            return None

    async def _deliver_answer(
        self,
        transport: Transport,
        target: OutboundTarget,
        text: str,
        msg: InboundMessage,
        preview: PreviewEditor | None,
    ) -> None:
        """The final answer: the preview finalised in place when there is one."""
        if preview is not None:
            try:
                sent = await preview.finish(text)
            except Exception as exc:
                self.log.warning("%s preview could not be finalised: %s", self.channel, exc)
                self.status.last_error = f"send failed: {exc}"
                return
            if sent is not None:
                for message in sent:
                    self.sent.add(target.chat_id, message.message_id, target.thread_id)
                self.status.last_outbound_at = _now_ms()
                return
        await self.deliver(transport, target, text, reply_to=msg.message_id)

    # --- outbound --------------------------------------------------------------------------------

    async def send(
        self,
        transport: Transport,
        target: OutboundTarget,
        text: str,
        *,
        reply_to: str | None = None,
    ) -> list[SentMessage]:
        """Format, chunk and send `text`, honouring `replyToMode`; errors propagate."""
        sent: list[SentMessage] = []
        for i, piece in enumerate(self.format(text)):
            message = await transport.send_text(self._piece_target(target, i, reply_to), piece)
            sent.append(message)
            self.sent.add(target.chat_id, message.message_id, target.thread_id)
            self.status.last_outbound_at = _now_ms()
        return sent

    async def deliver(
        self,
        transport: Transport,
        target: OutboundTarget,
        text: str,
        *,
        reply_to: str | None = None,
    ) -> list[SentMessage]:
        """`send` for replies: a failure is logged and recorded, never raised."""
        try:
            return await self.send(transport, target, text, reply_to=reply_to)
        except Exception as exc:
            self.log.warning("%s send to %s failed: %s", self.channel, target.chat_id, exc)
            self.status.last_error = f"send failed: {exc}"
            return []

    # --- reactions from users ----------------------------------------------------------------------

    def handle_reaction(self, event: ReactionEvent) -> str | None:
        """Queue a user's reaction for the routed session as a system event (the text queued,
        or None when it is ignored: notifications off, not our message, sender not admitted)."""
        if event.user_is_bot:
            return None
        section = self.section
        mode = reactions.notifications_mode(section, event.guild_id)
        if mode == "off":
            return None
        if mode == "own":
            own = event.on_own_message
            if own is None:  # the platform does not say: only messages we remember sending
                own = (event.chat_id, event.message_id) in self.sent
            if not own:
                return None  # not ours, or one we cannot see: ignored
        thread_id = event.thread_id
        if thread_id is None and self.channel == "telegram":
            thread_id = self.sent.thread_of(event.chat_id, event.message_id)
        probe = InboundMessage(
            channel=self.channel,
            account_id=self.account_id,
            chat_type=event.chat_type,
            chat_id=event.chat_id,
            message_id=f"reaction:{event.message_id}",
            sender_id=event.user_id,
            sender_name=event.user_name,
            sender_username=event.username,
            text="",
            mentioned=True,  # a reaction is addressed at the message, not gated by mentions
            guild_id=event.guild_id,
            thread_id=thread_id,
            parent_chat_id=event.parent_chat_id,
        )
        if mode == "allowlist":
            guild = (
                section.guilds.get(event.guild_id or "")
                if isinstance(section, DiscordConfig)
                else None
            )
            users = id_set(self.channel, guild.users or []) if guild is not None else frozenset()
            if normalize_id(self.channel, event.user_id) not in users:
                return None
        store_allow = (
            self.pairing.allowed(self.channel, self.account_id)
            if event.chat_type == "direct"
            else frozenset()
        )
        route = self._route(probe)
        if isinstance(route, NoOwner):
            return None
        decision = decide(
            probe,
            section,
            store_allow=store_allow,
            mention_patterns=[],
            default_group_policy=self.config.channels.defaults.group_policy,
        )
        if decision.kind not in ("admit", "history"):
            return None
        text = event.describe()
        reactions.queue_system_event(self.gateway, self.session_key(probe, route), text)
        self.log.debug("%s reaction queued as a system event", self.channel)
        return text
