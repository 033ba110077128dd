"""One Discord bot account: the discord.py client, its supervisor, status and transport.

The adapter is thin on purpose: inbound messages are mapped and handed to the pipeline
(`on_message`), which owns policy, commands, routing, the agent run and chunking; the pipeline
answers through `DiscordTransport`.

Resilience (spec §1.1, §6): socket drops are handled inside discord.py (RESUME, or re-IDENTIFY
with its jittered back-off, capped at 30 s by `library.configure_library`). Whatever escapes the
client (host unreachable at login, an unexpected close) restarts a fresh client after
`min(30 s, 2^n s)`. A bad token, refused privileged intent or bad `DISCORD_API_URL` is fatal for
this account only: one clear error, `running=False`, the gateway keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import discord
from discord import app_commands

from channels.base import (
    AccountStatus,
    ButtonPress,
    Chunking,
    EditRejected,
    InboundMessage,
    OutboundTarget,
    RateLimited,
    SentMessage,
    StatusBoard,
)
from channels.base import Transport as Transport
from channels.discord.inbound import interaction_to_inbound, to_inbound
from channels.discord.library import (
    API_URL_ENV,
    ApiUrlError,
    apply_api_url,
    connector,
    guard_parsers,
)
from channels.discord.native import (
    FALLBACK_REPLIES,
    UNAVAILABLE_REPLY,
    InteractionTransport,
    build_tree,
    sync_tree,
)
from channels.reactions import ReactionEvent
from gateway.config.secrets import resolve_secret
from gateway.logs import now_ms, scrubber

if TYPE_CHECKING:
    from gateway.config.models import DiscordConfig
    from gateway.media.outbound import OutgoingFile
    from gateway.runtime import Gateway

log = logging.getLogger("channels.discord")

TOKEN_ENV = "DISCORD_BOT_TOKEN"
OnMessage = Callable[[InboundMessage, Transport], Awaitable[None]]
# A slash command for the pipeline; returns its outcome (`pipeline.Outcome`) or None.
OnCommand = Callable[[InboundMessage, Transport], Awaitable[str | None]]
# A button press → the short answer shown to the presser only (ephemeral).
OnPress = Callable[[ButtonPress], Awaitable[str]]
OnReaction = Callable[[ReactionEvent], object]

# Gateway close codes after which reconnecting cannot help (auth failed, bad shard/version/intents).
_FATAL_CLOSE_CODES = {
    4004: "Discord rejected the bot token at the gateway (close 4004)",
    4010: "invalid shard (close 4010)",
    4011: "sharding required (close 4011)",
    4012: "invalid gateway API version (close 4012)",
    4013: "invalid intents (close 4013)",
}
BAD_TOKEN_ERROR = (
    "discord login failed: the bot token was rejected (401 Unauthorized); "
    f"check channels.discord.token or {TOKEN_ENV}"
)
MISSING_TOKEN_ERROR = f"discord: no bot token; set channels.discord.token or {TOKEN_ENV}"
INTENT_ERROR = (
    "discord gateway refused the Message Content intent (close 4014); enable "
    '"Message Content Intent" under Bot → Privileged Gateway Intents in the Discord Developer Portal'
)


class ChannelNotConnected(RuntimeError):
    """The account has no live client to send with."""


def resolve_token(
    config: DiscordConfig, env: Mapping[str, str] | None = None, *, env_fallback: bool = True
) -> str | None:
    """`channels.discord.token` (string or env SecretRef) wins; else `DISCORD_BOT_TOKEN`
    (the default account only: `env_fallback` False for the others).

    Raises `gateway.config.secrets.SecretError` when the SecretRef names an unset variable.
    """
    env = os.environ if env is None else env
    token = resolve_secret(config.token, "channels.discord.token", env)
    if not token and env_fallback:
        token = env.get(TOKEN_ENV)
    if not token:
        return None
    token = token.strip()
    # People paste the Authorization header value; discord.py adds "Bot " itself.
    if token.lower().startswith("bot "):
        token = token[4:].strip()
    return token or None


def intents() -> discord.Intents:
    """The reference's intent set (spec §1.1), Message Content included (privileged bit 15)."""
    return discord.Intents(
        guilds=True,
        guild_messages=True,
        dm_messages=True,
        guild_reactions=True,
        dm_reactions=True,
        emojis_and_stickers=True,
        message_content=True,
    )


class _Client(discord.Client):
    """discord.py client whose events go to the owning DiscordChannel."""

    def __init__(self, owner: DiscordChannel, **options: Any) -> None:
        super().__init__(**options)
        self._owner = owner
        self.tree: app_commands.CommandTree | None = None

    async def on_ready(self) -> None:
        self._owner._on_ready(self)

    async def on_resumed(self) -> None:
        self._owner._on_resumed()

    async def on_disconnect(self) -> None:
        self._owner._on_disconnect()

    async def on_message(self, message: discord.Message) -> None:
        await self._owner._on_discord_message(self, message)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await self._owner._on_discord_reaction(self, payload)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type == discord.InteractionType.component:
            await self._owner._on_component(interaction)


class DiscordTransport:
    """`channels.base.Transport` over discord.py's REST client (429s retried by discord.py)."""

    def __init__(self, owner: DiscordChannel) -> None:
        self._owner = owner

    def _messageable(self, target: OutboundTarget) -> discord.PartialMessageable:
        client = self._owner._client
        if client is None or client.is_closed() or client.user is None:
            raise ChannelNotConnected(f"discord account {self._owner.account_id} is not connected")
        # A thread is its own channel on Discord: send into it directly.
        return client.get_partial_messageable(int(target.thread_id or target.chat_id))

    async def send_text(self, target: OutboundTarget, text: str) -> SentMessage:
        channel = self._messageable(target)
        reference = None
        if target.reply_to_message_id:
            reference = discord.MessageReference(
                message_id=int(target.reply_to_message_id),
                channel_id=channel.id,
                fail_if_not_exists=False,  # the inbound message may be gone by now
            )
        sent = await channel.send(
            text,
            reference=reference,  # type: ignore[arg-type]
            # Model output must not ping @everyone/roles; a reply never pings its author.
            allowed_mentions=discord.AllowedMentions(
                everyone=False, roles=False, users=True, replied_user=False
            ),
            suppress_embeds=True,  # suppressEmbeds defaults to true in the reference
        )
        self._owner._status.last_outbound_at = now_ms()
        return SentMessage(message_id=str(sent.id))

    # --- files (media helper: gateway.media.outbound) --------------------------------------

    async def send_file(
        self,
        target: OutboundTarget,
        file: OutgoingFile,
        caption: str | None = None,
        *,
        voice: bool = False,
    ) -> SentMessage:
        """One attachment (Discord shows pictures inline and plays audio by themselves, so
        a spoken reply is an ordinary attachment too)."""
        channel = self._messageable(target)
        sent = await channel.send(
            caption or None,
            file=discord.File(file.path, filename=file.name),
            allowed_mentions=discord.AllowedMentions(everyone=False, roles=False, users=True),
        )
        self._owner._status.last_outbound_at = now_ms()
        return SentMessage(message_id=str(sent.id))

    async def send_typing(self, target: OutboundTarget) -> None:
        try:
            await self._messageable(target).typing()
        except Exception as exc:  # typing is best effort (spec §4.4)
            log.debug("typing failed in %s: %s", target.chat_id, exc)

    async def open_thread(
        self,
        chat_id: str,
        message_id: str,
        name: str,
        archive_minutes: int | None,
        guild_id: str | None = None,
    ) -> str:
        """Start a public thread from a message (`autoThread`); returns the thread's id."""
        client = self._owner._client
        if client is None or client.is_closed() or client.user is None:
            raise ChannelNotConnected(f"discord account {self._owner.account_id} is not connected")
        channel = client.get_partial_messageable(
            int(chat_id), guild_id=int(guild_id) if guild_id else None
        )
        starter = channel.get_partial_message(int(message_id))
        kwargs: dict[str, Any] = {"name": name[:100] or "Thread"}
        if archive_minutes:
            kwargs["auto_archive_duration"] = archive_minutes
        thread = await starter.create_thread(**kwargs)
        return str(thread.id)

    def _message(self, target: OutboundTarget, message_id: str) -> discord.PartialMessage:
        return self._messageable(target).get_partial_message(int(message_id))

    async def edit_text(self, target: OutboundTarget, message_id: str, text: str) -> None:
        """`PATCH` the message (discord.py waits out ordinary 429s itself; one longer than
        `max_ratelimit_timeout` raises `RateLimited`); a refused edit raises `EditRejected`."""
        try:
            await self._message(target, message_id).edit(
                content=text,
                allowed_mentions=discord.AllowedMentions(
                    everyone=False, roles=False, users=True, replied_user=False
                ),
            )
        except discord.RateLimited as exc:
            raise RateLimited(exc.retry_after, "discord message edit") from exc
        except (discord.NotFound, discord.Forbidden) as exc:
            raise EditRejected(f"discord message edit: {exc}") from exc
        except discord.HTTPException as exc:
            if exc.status == 429:
                raise RateLimited(1.0, "discord message edit") from exc
            if 400 <= exc.status < 500:
                raise EditRejected(f"discord message edit: {exc}") from exc
            raise

    async def delete_text(self, target: OutboundTarget, message_id: str) -> None:
        await self._message(target, message_id).delete()

    async def send_buttons(
        self, target: OutboundTarget, text: str, buttons: list[tuple[str, str]]
    ) -> SentMessage:
        """A message with one row of buttons; `buttons` are (label, custom_id)."""
        view = discord.ui.View(timeout=None)
        for n, (label, custom_id) in enumerate(buttons):
            style = discord.ButtonStyle.success if n == 0 else discord.ButtonStyle.danger
            view.add_item(discord.ui.Button(label=label, custom_id=custom_id, style=style))
        # Presses arrive through `on_interaction`; a stopped view is sent but not kept in
        # discord.py's view store (which would otherwise hold one per prompt).
        view.stop()
        sent = await self._messageable(target).send(
            text,
            view=view,
            allowed_mentions=discord.AllowedMentions.none(),
            suppress_embeds=True,
        )
        self._owner._status.last_outbound_at = now_ms()
        return SentMessage(message_id=str(sent.id))

    async def end_buttons(self, target: OutboundTarget, message_id: str, text: str) -> None:
        await self._message(target, message_id).edit(
            content=text, view=None, allowed_mentions=discord.AllowedMentions.none()
        )

    async def dm_target(self, user_id: str) -> OutboundTarget:
        client = self._owner._client
        if client is None or client.is_closed() or client.user is None:
            raise ChannelNotConnected(f"discord account {self._owner.account_id} is not connected")
        dm = await client.create_dm(discord.Object(id=int(user_id)))
        return OutboundTarget(str(dm.id))

    async def react(self, target: OutboundTarget, message_id: str, emoji: str) -> None:
        try:
            await self._message(target, message_id).add_reaction(emoji)
        except discord.RateLimited as exc:
            raise RateLimited(exc.retry_after, "discord reaction") from exc

    async def unreact(self, target: OutboundTarget, message_id: str, emoji: str) -> None:
        client = self._owner._client
        if client is None or client.user is None:
            raise ChannelNotConnected(f"discord account {self._owner.account_id} is not connected")
        await self._message(target, message_id).remove_reaction(emoji, client.user)


class DiscordChannel:
    """One configured Discord account, created and driven by `channels.manager`."""

    channel_id: ClassVar[str] = "discord"
    # discord.py waits this long after the last GUILD_CREATE before on_ready (tests shorten it).
    guild_ready_timeout: ClassVar[float] = 2.0
    ready_warning_s: ClassVar[float] = 15.0
    restart_cap_s: ClassVar[float] = 30.0
    max_ratelimit_timeout_s: ClassVar[float] = 30.0

    def __init__(
        self,
        *,
        gateway: Gateway | None,
        account_id: str,
        token: str | None,
        config: DiscordConfig,
        on_message: OnMessage,
        env: Mapping[str, str] | None = None,
        token_error: str | None = None,
        on_command: OnCommand | None = None,
        native_commands: bool = True,
        on_reaction: OnReaction | None = None,
    ) -> None:
        self.gateway = gateway
        self._on_reaction = on_reaction
        self.on_press: OnPress | None = None  # set by the manager (approval buttons)
        # Slash commands: answered only with a handler; registered only when native is on.
        self._on_command = on_command
        self.native_commands = native_commands
        self.account_id = account_id
        self.config = config
        self._token = token
        self._on_message = on_message
        self._env = env
        self._token_error = token_error  # why `token` is None (e.g. an unset SecretRef variable)
        self.transport = DiscordTransport(self)
        self.chunking = Chunking(
            limit=config.text_chunk_limit, max_lines=config.max_lines_per_message
        )
        self._status = AccountStatus(
            account_id=account_id, configured=bool(token), enabled=config.enabled
        )
        self._status.extra["mode"] = "gateway"
        self._client: _Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._board = StatusBoard(self._status)
        self._ready_timer: asyncio.TimerHandle | None = None
        self._logged_in = False
        self._pending: set[asyncio.Task[None]] = set()
        self._pending_sync: set[asyncio.Task[None]] = set()
        scrubber.add(token)  # never in a log line, whoever logs it

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Spawn the client supervisor and return at once (login happens in the background)."""
        if self._task is not None and not self._task.done():
            return
        if not self._token:
            self._fail(self._token_error or MISSING_TOKEN_ERROR)
            await self._notify()
            return
        log.info("[%s] starting provider", self.account_id)
        self._status.extra["lastStartAt"] = now_ms()
        self._stop.clear()
        self._status.running = True
        self._status.last_error = None
        self._task = asyncio.create_task(self._supervise(), name=f"discord:{self.account_id}")

    async def stop(self) -> None:
        self._stop.set()
        client, task = self._client, self._task
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), 5)
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(task, 5)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
        self._cancel_ready_timer()
        if self._status.running:
            self._status.extra["lastStopAt"] = now_ms()
        self._status.running = False
        self._status.connected = False
        await self._notify()

    def status(self) -> AccountStatus:
        return self._status

    async def wait_for_status(
        self, predicate: Callable[[AccountStatus], bool], timeout_s: float = 10.0
    ) -> AccountStatus:
        """Wait (bounded) until the status satisfies `predicate`; for the manager and tests."""
        return await self._board.wait_for(predicate, timeout_s)

    # --- supervisor -------------------------------------------------------------------------

    async def _supervise(self) -> None:
        failures = 0
        while not self._stop.is_set():
            env = os.environ if self._env is None else self._env
            client: _Client | None = None
            try:
                await apply_api_url(env.get(API_URL_ENV))
                client = self._client = self._new_client()
                self._arm_ready_timer()
                assert self._token is not None
                await client.start(self._token, reconnect=True)
                if self._stop.is_set():
                    return
                raise ConnectionError("discord client stopped unexpectedly")
            except discord.LoginFailure:
                return await self._fatal(client, BAD_TOKEN_ERROR)
            except discord.PrivilegedIntentsRequired:
                return await self._fatal(client, INTENT_ERROR)
            except discord.ConnectionClosed as exc:
                if exc.code in _FATAL_CLOSE_CODES:
                    return await self._fatal(client, f"discord: {_FATAL_CLOSE_CODES[exc.code]}")
                failures = await self._retry_later(client, exc, failures)
            except ApiUrlError as exc:
                return await self._fatal(client, f"discord: {exc}")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures = await self._retry_later(client, exc, failures)

    def _new_client(self) -> _Client:
        self._logged_in = False
        client = _Client(
            self,
            intents=intents(),
            guild_ready_timeout=self.guild_ready_timeout,
            # A rate limit longer than this raises instead of stalling a reply for minutes.
            max_ratelimit_timeout=self.max_ratelimit_timeout_s,
            chunk_guilds_at_startup=False,
            connector=connector(),
        )
        guard_parsers(client)
        if self._on_command is not None:
            # Also with native off: commands registered earlier stay usable until removed.
            client.tree = build_tree(client, self._on_slash_command)
        return client

    async def _retry_later(self, client: _Client | None, exc: BaseException, failures: int) -> int:
        if self._stop.is_set():
            return failures
        if self._logged_in:
            failures = 0  # it worked for a while: start the back-off over
        failures += 1
        delay = min(self.restart_cap_s, float(2 ** min(failures, 5)))
        self._status.last_error = f"{type(exc).__name__}: {exc}"
        if self._status.connected:
            self._status.reconnects += 1
        self._status.connected = False
        log.warning(
            "discord connection failed (%s); restarting the client in %.0fs (attempt %d)",
            self._status.last_error,
            delay,
            failures,
        )
        await self._close_client(client)
        await self._notify()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), delay)
        return failures

    async def _fatal(self, client: _Client | None, message: str) -> None:
        await self._close_client(client)
        self._fail(message)
        await self._notify()

    def _fail(self, message: str) -> None:
        log.error("%s", message)
        self._status.last_error = message
        self._status.running = False
        self._status.connected = False

    async def _close_client(self, client: _Client | None) -> None:
        self._cancel_ready_timer()
        if client is not None and not client.is_closed():
            with contextlib.suppress(Exception):
                await client.close()

    def _arm_ready_timer(self) -> None:
        self._cancel_ready_timer()
        loop = asyncio.get_running_loop()
        self._ready_timer = loop.call_later(self.ready_warning_s, self._ready_overdue)

    def _cancel_ready_timer(self) -> None:
        if self._ready_timer is not None:
            self._ready_timer.cancel()
            self._ready_timer = None

    def _ready_overdue(self) -> None:
        self._ready_timer = None
        log.warning(
            "discord: gateway READY wait timed out after %dms; discord.py keeps reconnecting with backoff",
            int(self.ready_warning_s * 1000),
        )

    def _register_commands(self, client: _Client) -> None:
        """Once per client (READY after a fresh login): sync the slash commands."""
        tree = client.tree
        if tree is None:
            return
        if not self.native_commands:
            self._status.extra["nativeCommands"] = "off"
            log.info("native commands off: slash commands not registered")
            return

        async def sync() -> None:
            try:
                count = await sync_tree(tree)
                self._status.extra["nativeCommands"] = count
            except Exception as exc:  # typed commands still work; say why slash ones may not
                self._status.extra["nativeCommands"] = f"failed: {exc}"
                log.warning("could not register discord slash commands: %s", exc)
            await self._notify()

        task = asyncio.get_running_loop().create_task(sync(), name="discord-command-sync")
        self._pending_sync.add(task)
        task.add_done_callback(self._pending_sync.discard)

    async def _on_slash_command(
        self, interaction: discord.Interaction, command: str, args: str
    ) -> None:
        handler = self._on_command
        client = self._client
        if handler is None or client is None:
            return
        ephemeral = self.config.slash_command.ephemeral
        try:
            # Acknowledge within Discord's 3 s window; the answer follows as follow-ups.
            await interaction.response.defer(ephemeral=ephemeral, thinking=True)
        except discord.HTTPException as exc:
            log.warning("could not acknowledge discord interaction %s: %s", interaction.id, exc)
            return
        transport = InteractionTransport(interaction, ephemeral=ephemeral)
        outcome: str | None = "dropped"
        try:
            inbound = interaction_to_inbound(
                interaction,
                account_id=self.account_id,
                command=command,
                args=args,
                channel=await self._interaction_channel(client, interaction),
                private_reply=ephemeral,
            )
            if inbound is not None:
                self._status.last_inbound_at = now_ms()
                outcome = await handler(inbound, transport)
            if not transport.sent:
                await transport.send_text(
                    OutboundTarget(chat_id=str(interaction.channel_id)),
                    FALLBACK_REPLIES.get(outcome or "", UNAVAILABLE_REPLY),
                )
        except Exception:
            log.exception("handling discord slash command /%s failed", command)

    async def _interaction_channel(
        self, client: _Client, interaction: discord.Interaction
    ) -> object | None:
        channel = interaction.channel
        if interaction.guild_id is not None and (
            channel is None or isinstance(channel, discord.PartialMessageable)
        ):
            # Not cached: policy needs the name (allowlists by name) and a thread's parent.
            try:
                return await client.fetch_channel(int(interaction.channel_id or 0))
            except discord.HTTPException as exc:
                log.debug("could not fetch discord channel %s: %s", interaction.channel_id, exc)
        return channel

    def _notify_soon(self) -> None:
        # From synchronous event callbacks; keep a reference so the task is not collected.
        task = asyncio.get_running_loop().create_task(self._notify())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _notify(self) -> None:
        await self._board.notify()

    # --- client events ----------------------------------------------------------------------

    def _on_ready(self, client: _Client) -> None:
        me = client.user
        if me is None:
            return
        self._cancel_ready_timer()
        st = self._status
        st.connected = True
        st.last_error = None
        st.bot_id, st.bot_name = str(me.id), me.name
        st.last_connected_at = now_ms()
        if not self._logged_in:
            self._logged_in = True
            log.info("logged in to discord as %s (%s)", me.id, me.name)
            self._register_commands(client)
        else:
            log.info("gateway session re-established (new session)")
        self._notify_soon()

    def _on_resumed(self) -> None:
        self._status.connected = True
        self._status.last_connected_at = now_ms()
        log.info("gateway session resumed")
        self._notify_soon()

    def _on_disconnect(self) -> None:
        # discord.py may dispatch several disconnects for one outage: count the first.
        if not self._status.connected or self._stop.is_set():
            return
        self._status.connected = False
        self._status.reconnects += 1
        log.warning("gateway disconnected; discord.py is reconnecting")
        self._notify_soon()

    async def _on_discord_message(self, client: _Client, message: discord.Message) -> None:
        me = client.user
        if me is None:
            return
        channel: object | None = None
        if message.guild is not None and isinstance(message.channel, discord.PartialMessageable):
            # Not in the cache (e.g. a thread created while we were away): ask REST once so
            # the policy sees its name and, for a thread, its parent channel.
            try:
                channel = await client.fetch_channel(message.channel.id)
            except discord.HTTPException as exc:
                log.debug("could not fetch discord channel %s: %s", message.channel.id, exc)
        try:
            inbound = to_inbound(message, account_id=self.account_id, bot_user=me, channel=channel)
        except Exception:
            log.exception("could not read discord message %s", message.id)
            return
        if inbound is None:
            return
        self._status.last_inbound_at = now_ms()
        try:
            await self._on_message(inbound, self.transport)
        except Exception:
            # A failing turn must not surface as discord.py's "Ignoring exception" traceback.
            log.exception("handling discord message %s failed", inbound.message_id)

    async def _on_discord_reaction(
        self, client: _Client, payload: discord.RawReactionActionEvent
    ) -> None:
        """A user's reaction (REACTION_ADD) → `ReactionEvent` for the pipeline."""
        me = client.user
        handler = self._on_reaction
        if me is None or handler is None or payload.user_id == me.id:
            return
        member = payload.member
        if member is not None and member.bot:
            return
        channel: object | None = client.get_channel(payload.channel_id)
        if payload.guild_id is not None and channel is None:
            try:
                channel = await client.fetch_channel(payload.channel_id)
            except discord.HTTPException as exc:
                # A channel this bot cannot see: the reaction is not ours to report.
                log.debug("reaction in unknown channel %s ignored: %s", payload.channel_id, exc)
                return
        thread_id = parent_id = None
        if isinstance(channel, discord.Thread):
            thread_id, parent_id = str(channel.id), str(channel.parent_id)
        user = member or client.get_user(payload.user_id)
        author = payload.message_author_id
        event = ReactionEvent(
            channel="discord",
            account_id=self.account_id,
            chat_type="direct" if payload.guild_id is None else "channel",
            chat_id=str(payload.channel_id),
            message_id=str(payload.message_id),
            user_id=str(payload.user_id),
            user_name=user.display_name if user is not None else str(payload.user_id),
            username=user.name if user is not None else None,
            emoji=str(payload.emoji),
            guild_id=str(payload.guild_id) if payload.guild_id is not None else None,
            thread_id=thread_id,
            parent_chat_id=parent_id,
            on_own_message=None if author is None else author == me.id,
        )
        try:
            handler(event)
        except Exception:
            log.exception("handling discord reaction on %s failed", payload.message_id)

    async def _on_component(self, interaction: discord.Interaction) -> None:
        """A message-button press: the handler decides (and checks who pressed); the
        interaction is always answered, visible to the presser only."""
        data: Mapping[str, object] = interaction.data or {}
        custom_id = data.get("custom_id")
        answer = "This button is no longer active."
        if self.on_press is not None and isinstance(custom_id, str):
            message = interaction.message
            press = ButtonPress(
                channel="discord",
                account_id=self.account_id,
                chat_id=str(interaction.channel_id),
                message_id=str(message.id) if message is not None else None,
                user_id=str(interaction.user.id),
                data=custom_id,
            )
            try:
                answer = await self.on_press(press)
            except Exception:
                log.exception("discord button press failed")
                answer = "That did not work; try again."
        try:
            await interaction.response.send_message(answer, ephemeral=True)
        except discord.HTTPException as exc:
            log.warning("could not answer discord interaction %s: %s", interaction.id, exc)
