"""Telegram account runner: python-telegram-bot's `Bot` with our own long-polling loop.

Our loop (instead of PTB's `Updater`) so each failure has one explicit answer: 401 → one
clear error and the account shows failed (the gateway keeps serving); 409 Conflict →
"another process is polling this bot token" and exponential back-off; 429 → wait
`retry_after`; network errors → short capped back-off. Updates go to the pipeline in
arrival order. Sends retry 429s/timeouts and fall back to plain text when Telegram rejects
our HTML (channels.md §1.2, §4.2, §6).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
import warnings
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TypeVar

# Opt in to PTB 22's future `timedelta` time periods now (we handle both): no deprecation noise.
os.environ.setdefault("PTB_TIMEDELTA", "1")

from telegram import (
    Bot,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
    Update,
    User,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest

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
from channels.chunking import chunk_text
from channels.reactions import ReactionEvent
from channels.telegram.inbound import to_inbound
from channels.telegram_html import html_to_plain, markdown_to_html
from gateway.agents.commands import NATIVE_COMMANDS as CORE_COMMANDS
from gateway.config.secrets import SecretError, resolve_secret
from gateway.logs import scrubber
from gateway.tls import client_context

if TYPE_CHECKING:
    from gateway.config.models import TelegramConfig
    from gateway.media.outbound import OutgoingFile

log = logging.getLogger("channels.telegram")

TOKEN_ENV = "TELEGRAM_BOT_TOKEN"
DEFAULT_API_ROOT = "https://api.telegram.org"
TELEGRAM_MAX_CHARS = 4096
ALLOWED_UPDATES = [
    "message",
    "edited_message",
    "callback_query",
    "my_chat_member",
    "message_reaction",
]
MISSING_TOKEN_ERROR = (
    "telegram: no bot token; set channels.telegram.botToken (or tokenFile) or " + TOKEN_ENV
)
BAD_TOKEN_ERROR = (
    "telegram getMe returned 401 Unauthorized: the bot token was rejected; check "
    f"channels.telegram.botToken or {TOKEN_ENV} (account blocked, polling not started)"
)
# The text commands the pipeline answers, offered in Telegram's command menu (§5.2).
NATIVE_COMMANDS = list(CORE_COMMANDS)
POLL_READ_TIMEOUT_S = 15.0  # on top of the long-poll timeout itself
MENU_LIMIT = 100  # Telegram's own cap on setMyCommands entries
_PARSE_ERRORS = ("can't parse entities", "find end of the entity", "unsupported start tag")
# An edit that changes nothing: Telegram calls it an error, for us it is done.
_NOT_MODIFIED = "message is not modified"
EDIT_TIMEOUT_S = 15.0  # the reference's editMessageText timeout (channels.md §1.2)

# Resolves once the message is taken (True) or the channel is stopping (False); None: taken.
OnMessage = Callable[[InboundMessage, "TelegramTransport"], Awaitable[bool | None]]
OnReaction = Callable[[ReactionEvent], object]
# A button press → the short answer shown to the presser (answerCallbackQuery).
OnPress = Callable[[ButtonPress], Awaitable[str]]
T = TypeVar("T")


class TokenError(ValueError):
    pass


def resolve_token(
    config: TelegramConfig, env: Mapping[str, str] | None = None, *, env_fallback: bool = True
) -> str | None:
    """`tokenFile` > `botToken` > env `TELEGRAM_BOT_TOKEN` (the default account only:
    `env_fallback` False for the others)."""
    env = os.environ if env is None else env
    token_file = config.token_file
    if isinstance(token_file, str) and token_file.strip():
        path = Path(token_file).expanduser()
        if path.is_symlink() or not path.is_file():
            raise TokenError(f"channels.telegram.tokenFile {path} is not a regular file")
        return path.read_text().strip() or None
    try:
        token = resolve_secret(config.bot_token, "channels.telegram.botToken", env)
    except SecretError as exc:
        raise TokenError(str(exc)) from exc
    if token or not env_fallback:
        return token or None
    return env.get(TOKEN_ENV, "").strip() or None


def retry_after_seconds(exc: RetryAfter) -> float:
    value = getattr(exc, "_retry_after", None)  # avoids PTB 22's int/timedelta deprecation noise
    if isinstance(value, timedelta):
        return value.total_seconds()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = exc.retry_after
    return raw.total_seconds() if isinstance(raw, timedelta) else float(raw)


def format_for_telegram(text: str, limit: int) -> list[str]:
    """Chunk the Markdown, then convert each piece; re-split a piece whose HTML is too long
    (the limit applies after escaping, channels.md §4.1)."""
    out: list[str] = []
    pending = chunk_text(text, limit)
    while pending:
        piece = pending.pop(0)
        html = markdown_to_html(piece)
        if len(html) <= min(limit, TELEGRAM_MAX_CHARS) or len(piece) < 64:
            if html:
                out.append(html)
            continue
        smaller = max(64, int(len(piece) * limit / len(html) * 0.9))
        pending[:0] = chunk_text(piece, smaller)
    return out


TELEGRAM_PHOTO_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
TELEGRAM_PHOTO_MAX_BYTES = 10 * 1024 * 1024  # sendPhoto's limit; bigger pictures go as files


class TelegramTransport:
    """Sends through PTB with retries (429 per `retry_after`, timeouts) and the HTML fallback."""

    attempts: ClassVar[int] = 3
    min_delay_s: ClassVar[float] = 0.4
    max_delay_s: ClassVar[float] = 30.0

    def __init__(self, bot: Bot, status: AccountStatus) -> None:
        self.bot = bot
        self.status = status

    async def _call(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        attempt = 0
        while True:
            attempt += 1
            try:
                return await fn()
            except RetryAfter as exc:
                if attempt >= self.attempts:
                    raise
                delay = min(self.max_delay_s, retry_after_seconds(exc))
                log.warning("telegram %s rate limited; retrying in %.1fs", what, delay)
            except (BadRequest, Forbidden, InvalidToken):
                raise  # not retryable
            except (TimedOut, NetworkError) as exc:
                if attempt >= self.attempts:
                    raise
                delay = min(self.max_delay_s, self.min_delay_s * 2 ** (attempt - 1))
                delay *= 1 + random.uniform(-0.1, 0.1)
                log.warning("telegram %s failed (%s); retrying in %.1fs", what, exc, delay)
            await asyncio.sleep(delay)

    def _kwargs(self, target: OutboundTarget, typing: bool = False) -> dict[str, object]:
        kwargs: dict[str, object] = {}
        # General topic (1) is addressed without a thread id, except for chat actions.
        if target.thread_id and (typing or target.thread_id != "1"):
            kwargs["message_thread_id"] = int(target.thread_id)
        if target.reply_to_message_id and not typing:
            kwargs["reply_parameters"] = ReplyParameters(
                message_id=int(target.reply_to_message_id), allow_sending_without_reply=True
            )
        return kwargs

    async def send_text(self, target: OutboundTarget, text: str) -> SentMessage:
        kwargs = self._kwargs(target)
        chat = target.chat_id
        try:
            sent: Message = await self._call(
                "sendMessage",
                lambda: self.bot.send_message(chat, text, parse_mode=ParseMode.HTML, **kwargs),  # type: ignore[arg-type]
            )
        except BadRequest as exc:
            if not any(marker in str(exc).lower() for marker in _PARSE_ERRORS):
                raise
            log.warning("telegram sendMessage degrade=plain-fallback:html-parse: %s", exc)
            plain = html_to_plain(text)
            sent = await self._call(
                "sendMessage",
                lambda: self.bot.send_message(chat, plain, **kwargs),  # type: ignore[arg-type]
            )
        return SentMessage(str(sent.message_id))

    async def send_typing(self, target: OutboundTarget) -> None:
        kwargs = self._kwargs(target, typing=True)
        await self.bot.send_chat_action(target.chat_id, ChatAction.TYPING, **kwargs)  # type: ignore[arg-type]

    # --- files (media helper: gateway.media.outbound) --------------------------------------

    async def send_file(
        self,
        target: OutboundTarget,
        file: OutgoingFile,
        caption: str | None = None,
        *,
        voice: bool = False,
    ) -> SentMessage:
        """A spoken reply goes as a voice note (sendVoice), a picture Telegram can show as a
        photo (sendPhoto), anything else as a document (sendDocument); the path is re-read
        on each retry."""
        kwargs = self._kwargs(target)
        chat = target.chat_id
        sent: Message
        if voice:
            sent = await self._call(
                "sendVoice",
                lambda: self.bot.send_voice(chat, file.path, caption=caption, **kwargs),  # type: ignore[arg-type]
            )
        elif file.mime in TELEGRAM_PHOTO_TYPES and file.size <= TELEGRAM_PHOTO_MAX_BYTES:
            sent = await self._call(
                "sendPhoto",
                lambda: self.bot.send_photo(chat, file.path, caption=caption, **kwargs),  # type: ignore[arg-type]
            )
        else:
            sent = await self._call(
                "sendDocument",
                lambda: self.bot.send_document(
                    chat,
                    file.path,
                    caption=caption,
                    filename=file.name,
                    **kwargs,  # type: ignore[arg-type]
                ),
            )
        return SentMessage(str(sent.message_id))

    async def edit_text(self, target: OutboundTarget, message_id: str, text: str) -> None:
        """`editMessageText` once (previews are throttled by the caller): a 429 raises
        `RateLimited`, "not modified" is success, an edit Telegram refuses (message gone,
        too old, not editable) raises `EditRejected`; HTML it cannot parse goes as plain."""
        chat, mid = target.chat_id, int(message_id)
        try:
            try:
                await self.bot.edit_message_text(
                    text,
                    chat_id=chat,
                    message_id=mid,
                    parse_mode=ParseMode.HTML,
                    read_timeout=EDIT_TIMEOUT_S,
                )
            except BadRequest as exc:
                if not any(marker in str(exc).lower() for marker in _PARSE_ERRORS):
                    raise
                log.warning("telegram editMessageText degrade=plain-fallback:html-parse: %s", exc)
                await self.bot.edit_message_text(
                    html_to_plain(text), chat_id=chat, message_id=mid, read_timeout=EDIT_TIMEOUT_S
                )
        except RetryAfter as exc:
            raise RateLimited(retry_after_seconds(exc), "telegram editMessageText") from exc
        except BadRequest as exc:
            if _NOT_MODIFIED in str(exc).lower():
                return
            raise EditRejected(f"telegram editMessageText: {exc}") from exc
        except Forbidden as exc:
            raise EditRejected(f"telegram editMessageText: {exc}") from exc

    async def send_buttons(
        self, target: OutboundTarget, text: str, buttons: list[tuple[str, str]]
    ) -> SentMessage:
        """One HTML message with an inline keyboard row; `buttons` are (label, callback data)."""
        kwargs = self._kwargs(target)
        markup = InlineKeyboardMarkup(
            [[InlineKeyboardButton(label, callback_data=data) for label, data in buttons]]
        )
        sent: Message = await self._call(
            "sendMessage",
            lambda: self.bot.send_message(
                target.chat_id,
                text,
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
                **kwargs,  # type: ignore[arg-type]
            ),
        )
        return SentMessage(str(sent.message_id))

    async def end_buttons(self, target: OutboundTarget, message_id: str, text: str) -> None:
        # An edit that sends no keyboard removes the message's inline keyboard.
        await self.edit_text(target, message_id, text)

    async def dm_target(self, user_id: str) -> OutboundTarget:
        return OutboundTarget(user_id)  # a private chat's id is the user's id

    async def answer_press(self, query_id: str, text: str) -> None:
        """`answerCallbackQuery`: stops the button's spinner and shows `text` to the presser."""
        await self._call(
            "answerCallbackQuery", lambda: self.bot.answer_callback_query(query_id, text=text)
        )

    async def delete_text(self, target: OutboundTarget, message_id: str) -> None:
        await self._call(
            "deleteMessage", lambda: self.bot.delete_message(target.chat_id, int(message_id))
        )

    async def react(self, target: OutboundTarget, message_id: str, emoji: str) -> None:
        """`setMessageReaction`: a bot has one reaction per message, so this replaces it."""
        await self._set_reaction(target, message_id, [emoji])

    async def unreact(self, target: OutboundTarget, message_id: str, emoji: str) -> None:
        await self._set_reaction(target, message_id, [])

    async def _set_reaction(
        self, target: OutboundTarget, message_id: str, emoji: list[str]
    ) -> None:
        try:
            await self._call(
                "setMessageReaction",
                lambda: self.bot.set_message_reaction(target.chat_id, int(message_id), emoji),
            )
        except RetryAfter as exc:
            raise RateLimited(retry_after_seconds(exc), "telegram setMessageReaction") from exc


class TelegramChannel:
    """One configured Telegram account, created and driven by `channels.manager`."""

    channel_id: ClassVar[str] = "telegram"
    poll_timeout_s: ClassVar[int] = 30
    # Restart back-off after a 409 / unexpected failure (channels.md §1.2); tests shorten it.
    restart_initial_s: ClassVar[float] = 30.0
    restart_max_s: ClassVar[float] = 600.0
    network_retry_max_s: ClassVar[float] = 30.0

    def __init__(
        self,
        *,
        account_id: str,
        token: str | None,
        config: TelegramConfig,
        on_message: OnMessage,
        token_error: str | None = None,
        native_commands: bool | None = None,
        on_reaction: OnReaction | None = None,
    ) -> None:
        self.account_id = account_id
        self._on_reaction = on_reaction
        self.on_press: OnPress | None = None  # set by the manager (approval buttons)
        self.config = config
        # Resolved by the manager from `commands.native` + `channels.telegram.commands.native`;
        # None (no root config at hand): the channel's own switch, "auto" meaning on.
        self.native_commands = (
            native_commands if native_commands is not None else config.commands.native is not False
        )
        self.menu: list[tuple[str, str]] = list(NATIVE_COMMANDS)
        self._token = token
        self._token_error = token_error
        self._on_message = on_message
        self._status = AccountStatus(
            account_id=account_id, configured=bool(token), enabled=config.enabled
        )
        self._status.extra["mode"] = "polling"
        self._bot: Bot | None = None
        self.transport: TelegramTransport | None = None
        self.bot_user: User | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._board = StatusBoard(self._status)
        self._offset = 0  # the next update to ask for: everything below it was handled
        self._confirmed = 0  # the offset Telegram last heard from us
        scrubber.add(token)

    @property
    def chunking(self) -> Chunking:
        return Chunking(min(self.config.text_chunk_limit, 4000))

    def format(self, text: str) -> list[str]:
        return format_for_telegram(text, self.chunking.limit)

    def status(self) -> AccountStatus:
        return self._status

    # --- lifecycle ----------------------------------------------------------------------------

    def _build_bot(self, token: str) -> Bot:
        root = (self.config.api_root or DEFAULT_API_ROOT).rstrip("/")
        # Both clients use the process's one TLS context instead of a CA bundle each.
        tls = {"verify": client_context()}
        request = HTTPXRequest(
            connection_pool_size=32,
            connect_timeout=10,
            read_timeout=60,
            write_timeout=60,
            pool_timeout=10,  # many chats answered at once queue here instead of failing
            httpx_kwargs=tls,
        )
        # _fetch_updates adds the long-poll timeout to this read timeout (→ 45 s with 30).
        poll_request = HTTPXRequest(
            connection_pool_size=1,
            connect_timeout=10,
            read_timeout=POLL_READ_TIMEOUT_S,
            httpx_kwargs=tls,
        )
        return Bot(
            token,
            base_url=f"{root}/bot",
            base_file_url=f"{root}/file/bot",
            request=request,
            get_updates_request=poll_request,
        )

    async def start(self) -> None:
        """Spawn the polling task and return at once."""
        if self._task is not None and not self._task.done():
            return
        if not self._token:
            self._fail(self._token_error or MISSING_TOKEN_ERROR)
            return
        self._stop.clear()
        self._status.running = True
        self._status.last_error = None
        self._status.extra["lastStartAt"] = int(time.time() * 1000)
        self._bot = self._build_bot(self._token)
        self.transport = TelegramTransport(self._bot, self._status)
        self._task = asyncio.create_task(self._run(), name=f"telegram:{self.account_id}")

    async def stop(self) -> None:
        self._stop.set()
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 5)
        if self._bot is not None:
            await self._confirm(self._bot)
            with contextlib.suppress(Exception):
                await self._bot.shutdown()
        self._status.running = False
        self._status.connected = False
        self._status.extra["lastStopAt"] = int(time.time() * 1000)
        await self._notify()

    async def wait_for_status(
        self, predicate: Callable[[AccountStatus], bool], timeout_s: float = 10.0
    ) -> AccountStatus:
        """Wait (bounded) until the status satisfies `predicate` (tests, manager)."""
        return await self._board.wait_for(predicate, timeout_s)

    async def _notify(self) -> None:
        await self._board.notify()

    def _fail(self, message: str) -> None:
        log.error("[%s] %s", self.account_id, message)
        self._status.last_error = message
        self._status.running = False
        self._status.connected = False

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    # --- polling ------------------------------------------------------------------------------

    async def _connect(self, bot: Bot) -> None:
        await bot.initialize()  # getMe; InvalidToken on 401
        me = bot.bot
        self.bot_user = me
        self._status.bot_id = str(me.id)
        self._status.bot_name = me.username
        log.info("[%s] starting provider (@%s)", self.account_id, me.username)
        try:
            await bot.delete_webhook(drop_pending_updates=False)
        except TelegramError as exc:  # transient: polling may still work
            log.warning("[%s] deleteWebhook failed: %s", self.account_id, exc)
        if self.native_commands:
            await self._register_menu(bot)
        else:
            log.info("[%s] native commands off: command menu not registered", self.account_id)

    async def _register_menu(self, bot: Bot) -> None:
        """`setMyCommands`: retried once on a timeout; BOT_COMMANDS_TOO_MUCH → trim and retry.

        The menu is a convenience (typed commands still work), so failures only warn.
        """
        menu = list(self.menu[:MENU_LIMIT])
        timeouts = 0
        while menu:
            try:
                await bot.set_my_commands(menu)
                self.menu = menu
                return
            except TimedOut as exc:
                timeouts += 1
                if timeouts > 1:
                    log.warning("[%s] setMyCommands timed out twice: %s", self.account_id, exc)
                    return
            except BadRequest as exc:
                if "bot_commands_too_much" not in str(exc).lower() or len(menu) == 1:
                    log.warning("[%s] setMyCommands failed: %s", self.account_id, exc)
                    return
                # Keep the first (most important) entries; the order is the menu order.
                menu = menu[: max(1, (len(menu) * 4) // 5)]
                log.warning(
                    "[%s] setMyCommands: too many commands; retrying with %d",
                    self.account_id,
                    len(menu),
                )
            except TelegramError as exc:
                log.warning("[%s] setMyCommands failed: %s", self.account_id, exc)
                return

    async def _run(self) -> None:
        bot = self._bot
        assert bot is not None
        restart_delay = self.restart_initial_s
        network_failures = 0
        connected_once = False
        while not self._stop.is_set():
            try:
                if not connected_once:
                    await self._connect(bot)
                    connected_once = True
                updates = await self._fetch_updates(bot)
            except asyncio.CancelledError:
                raise
            except InvalidToken:
                self._fail(BAD_TOKEN_ERROR)
                await self._notify()
                return
            except Conflict as exc:
                self._status.connected = False
                self._status.last_error = f"409 Conflict: {exc}"
                await self._notify()
                delay = restart_delay * random.uniform(0.8, 1.2)
                log.warning(
                    "[%s] another process is polling this bot token (409 Conflict); "
                    "retrying in %.1fs",
                    self.account_id,
                    delay,
                )
                restart_delay = min(self.restart_max_s, restart_delay * 2)
                await self._pause(delay)
                continue
            except RetryAfter as exc:
                delay = min(600.0, retry_after_seconds(exc))
                log.warning("[%s] getUpdates rate limited; waiting %.1fs", self.account_id, delay)
                await self._pause(delay)
                continue
            except TimedOut:
                continue  # a long poll that outlived its read timeout: just poll again
            except (NetworkError, TelegramError, OSError) as exc:
                network_failures += 1
                delay = min(self.network_retry_max_s, 2.0 ** min(network_failures, 5))
                if self._status.connected:
                    self._status.reconnects += 1
                self._status.connected = False
                self._status.last_error = f"{type(exc).__name__}: {exc}"
                await self._notify()
                log.warning(
                    "[%s] polling failed (%s); retrying in %.0fs",
                    self.account_id,
                    self._status.last_error,
                    delay,
                )
                await self._pause(delay)
                continue
            if not self._status.connected:
                self._status.connected = True
                self._status.last_error = None
                self._status.last_connected_at = int(time.time() * 1000)
                await self._notify()
            restart_delay = self.restart_initial_s
            network_failures = 0
            for uid, update in updates:
                if update is not None:
                    try:
                        if not await self._dispatch(update):
                            break  # stopping: left unconfirmed, Telegram sends it again
                    except Exception:  # one bad update must not end polling for the account
                        log.exception("[%s] update %s failed", self.account_id, uid)
                if uid is not None:
                    # Confirmed (by the next getUpdates) only now that it was handled.
                    self._offset = max(self._offset, uid + 1)

    async def _fetch_updates(self, bot: Bot) -> list[tuple[int | None, Update | None]]:
        """One long poll; each update parsed on its own (None when unreadable: confirmed and
        skipped, with a warning). The offset moves on only as updates are handled.

        `Bot.get_updates` parses the whole batch at once: one malformed update raised out of
        the poll for every update, was never confirmed, and ended the polling task.
        """
        offset = self._offset
        raw = await bot._post(  # the same request get_updates makes, minus the batch parse
            "getUpdates",
            {
                "offset": offset,
                "timeout": self.poll_timeout_s,
                "allowed_updates": ALLOWED_UPDATES,
            },
            read_timeout=POLL_READ_TIMEOUT_S + self.poll_timeout_s,
        )
        self._confirmed = offset
        if not isinstance(raw, list):
            raise NetworkError(f"getUpdates returned {type(raw).__name__}, not a list")
        updates: list[tuple[int | None, Update | None]] = []
        for item in raw:
            uid = item.get("update_id") if isinstance(item, dict) else None
            if not isinstance(uid, int) or isinstance(uid, bool):
                uid = None
            elif uid < self._offset:
                continue  # handled already (a redelivery after a partly handled batch)
            try:
                update = Update.de_json(item, bot) if isinstance(item, dict) else None
                if not isinstance(update, Update):
                    raise TypeError(f"not an object: {type(item).__name__}")
                updates.append((uid, update))
            except Exception as exc:
                log.warning(
                    "[%s] skipped unreadable update %s (%s: %s)",
                    self.account_id,
                    uid,
                    type(exc).__name__,
                    str(exc)[:200],
                )
                updates.append((uid, None))
        return updates

    async def _confirm(self, bot: Bot) -> None:
        """On stop: tell Telegram what was handled since the last poll (else it redelivers)."""
        if self._offset <= self._confirmed:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                bot._post(
                    "getUpdates",
                    {"offset": self._offset, "timeout": 0, "limit": 1},
                    read_timeout=5,
                ),
                5,
            )
            self._confirmed = self._offset

    async def _dispatch(self, update: Update) -> bool:
        """False only when the channel stopped before the message was taken."""
        if update.message_reaction is not None:
            self._dispatch_reaction(update)
            return True
        if update.callback_query is not None:
            await self._dispatch_press(update.callback_query)
            return True
        message = update.message
        me = self.bot_user
        if message is None or me is None or self.transport is None:
            return True  # edits, callbacks, membership changes: not turns (yet)
        try:
            inbound = to_inbound(
                message,
                bot=me,
                account_id=self.account_id,
                native_names=frozenset(n for n, _ in self.menu) if self.native_commands else None,
            )
        except Exception:
            log.exception("[%s] could not read update %s", self.account_id, update.update_id)
            return True
        if inbound is None:
            return True
        self._status.last_inbound_at = int(time.time() * 1000)
        return await self._on_message(inbound, self.transport) is not False

    async def _dispatch_press(self, query: CallbackQuery) -> None:
        """An inline-button press: the handler decides (and checks who pressed); Telegram is
        always answered so the button stops spinning."""
        transport = self.transport
        if transport is None:
            return
        answer = "This button is no longer active."
        message = query.message
        if self.on_press is not None and query.data and message is not None:
            press = ButtonPress(
                channel="telegram",
                account_id=self.account_id,
                chat_id=str(message.chat.id),
                message_id=str(message.message_id),
                user_id=str(query.from_user.id),
                data=query.data,
            )
            try:
                answer = await self.on_press(press)
            except Exception:
                log.exception("[%s] button press failed", self.account_id)
                answer = "That did not work; try again."
        try:
            await transport.answer_press(query.id, answer)
        except TelegramError as exc:
            log.warning("[%s] answerCallbackQuery failed: %s", self.account_id, exc)

    def _dispatch_reaction(self, update: Update) -> None:
        """A `message_reaction` update: each newly added emoji is one event."""
        changed = update.message_reaction
        me = self.bot_user
        if changed is None or self._on_reaction is None or me is None:
            return
        user = changed.user
        chat_type = {"private": "direct", "group": "group", "supergroup": "group"}.get(
            changed.chat.type
        )
        if user is None or chat_type is None or user.id == me.id:
            return  # anonymous admins / channels: no sender to check against the allowlists
        old = {getattr(r, "emoji", None) for r in changed.old_reaction}
        for reaction in changed.new_reaction:
            emoji = getattr(reaction, "emoji", None)  # custom/paid reactions carry no emoji
            if not emoji or emoji in old:
                continue
            event = ReactionEvent(
                channel="telegram",
                account_id=self.account_id,
                chat_type=chat_type,  # type: ignore[arg-type]
                chat_id=str(changed.chat.id),
                message_id=str(changed.message_id),
                user_id=str(user.id),
                user_name=user.full_name or user.username or str(user.id),
                username=user.username,
                user_is_bot=bool(user.is_bot),
                emoji=emoji,
            )
            try:
                self._on_reaction(event)
            except Exception:
                log.exception("[%s] reaction update %s failed", self.account_id, update.update_id)
