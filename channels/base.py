"""The platform-neutral shapes shared by every channel adapter and the inbound pipeline.

An adapter (Discord, Telegram) turns a platform event into an `InboundMessage` and implements
`Transport` for the way back; everything between (policy, pairing, commands, routing, agent
run, chunking, delivery) is the pipeline's job and is written once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from gateway.media.outbound import OutgoingFile

ChannelId = Literal["discord", "telegram"]
# Peer kinds as routing and session keys use them: Discord DMs are "direct" and guild
# channels/threads "channel"; Telegram DMs are "direct" and groups/supergroups "group".
ChatType = Literal["direct", "group", "channel"]


AttachmentKind = Literal["image", "audio", "video", "document", "sticker"]


@dataclass(frozen=True)
class InboundAttachment:
    """A file that came with a message, fetched only once the message is admitted.

    `fetch(path)` downloads it through the platform library into `path`; `size` and `mime`
    are what the platform declared (the bytes decide in the end, see gateway.media.sniff).
    """

    kind: AttachmentKind
    fetch: Callable[[Path], Awaitable[None]] = field(repr=False, compare=False)
    name: str | None = None
    mime: str | None = None
    size: int | None = None
    voice: bool = False  # a voice note (recorded in the app), not an audio file

    @property
    def placeholder(self) -> str:
        """How the file reads where only text goes (group history, logs)."""
        return f"<media:{self.kind}>"


@dataclass(frozen=True)
class InboundMessage:
    channel: ChannelId
    account_id: str
    chat_type: ChatType
    chat_id: str  # where to reply: DM channel id / chat id / guild channel id
    message_id: str
    sender_id: str
    sender_name: str
    text: str
    sender_username: str | None = None
    sender_is_bot: bool = False
    from_self: bool = False  # authored by this bot's own account
    mentioned: bool = False  # explicit bot mention (<@id>, @botname, entity)
    reply_to_bot: bool = False  # a reply to one of the bot's messages (implicit mention)
    reply_to_text: str | None = None
    reply_to_sender: str | None = None
    reply_to_id: str | None = None
    guild_id: str | None = None  # Discord
    guild_name: str | None = None
    chat_name: str | None = None  # channel / group title (untrusted context)
    thread_id: str | None = None  # Discord thread channel id / Telegram forum topic id
    parent_chat_id: str | None = None  # Discord thread's parent channel
    member_role_ids: tuple[str, ...] = ()
    timestamp_ms: int = 0
    # Invoked through the platform's command UI (Telegram menu `bot_command`, Discord slash
    # command): runs even with `commands.text: false` when native commands are on.
    native_command: bool = False
    # Replies reach only the invoker (a Discord interaction's ephemeral follow-up), so a
    # "not authorized" answer leaks nothing even in a guild channel.
    private_reply: bool = False
    # Pictures, voice notes and files; `text` is the caption (or empty).
    attachments: tuple[InboundAttachment, ...] = ()

    @property
    def text_with_placeholders(self) -> str:
        """`text` with a `<media:kind>` mark per attachment (text-only uses: group history)."""
        return join_nonempty([*(a.placeholder for a in self.attachments), self.text])


@dataclass(frozen=True)
class OutboundTarget:
    chat_id: str
    thread_id: str | None = None
    reply_to_message_id: str | None = None


@dataclass(frozen=True)
class SentMessage:
    message_id: str


class DeliveryError(Exception):
    """An outbound message could not be handed to a channel (`missing`: the request is wrong)."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


class EditRejected(Exception):
    """The platform refused to edit or react (message deleted, too old, not ours): send anew."""


class RateLimited(Exception):
    """The platform asked us to wait `retry_after` seconds before the next call of this kind."""

    def __init__(self, retry_after: float, message: str = "rate limited") -> None:
        super().__init__(f"{message} (retry after {retry_after:.1f}s)")
        self.retry_after = retry_after


class Transport(Protocol):
    """The way back to a platform, implemented by each adapter."""

    async def send_text(self, target: OutboundTarget, text: str) -> SentMessage:
        """Send one already-chunked, already-formatted piece of text."""
        ...

    async def send_typing(self, target: OutboundTarget) -> None:
        """Show a typing indicator (best effort)."""
        ...


@runtime_checkable
class FileSender(Protocol):
    """A transport that can also send files (the agent's `MEDIA:` attachments)."""

    async def send_file(
        self,
        target: OutboundTarget,
        file: OutgoingFile,
        caption: str | None = None,
        *,
        voice: bool = False,
    ) -> SentMessage:
        """Send one file: a picture as a photo where the platform has them, else a document;
        `voice`: a spoken reply, as a voice note where the platform has them."""


@runtime_checkable
class EditingTransport(Transport, Protocol):
    """A transport that can edit and delete its own messages (preview streaming)."""

    async def edit_text(self, target: OutboundTarget, message_id: str, text: str) -> None:
        """Replace a sent message's text; "not modified" is success. Raises `EditRejected`
        when the message can no longer be edited, `RateLimited` on a 429."""
        ...

    async def delete_text(self, target: OutboundTarget, message_id: str) -> None:
        """Delete one of our messages (best effort: errors are the caller's to ignore)."""
        ...


@dataclass(frozen=True)
class ButtonPress:
    """Someone pressed one of our message buttons (Telegram callback query, Discord
    component interaction); `data` is the button's own payload, never trusted as identity."""

    channel: str
    account_id: str
    chat_id: str
    message_id: str | None
    user_id: str
    data: str


@runtime_checkable
class ButtonTransport(EditingTransport, Protocol):
    """A transport that can send a message with buttons (approval prompts)."""

    async def send_buttons(
        self, target: OutboundTarget, text: str, buttons: list[tuple[str, str]]
    ) -> SentMessage:
        """Send formatted `text` with one row of (label, payload) buttons."""
        ...

    async def end_buttons(self, target: OutboundTarget, message_id: str, text: str) -> None:
        """Replace the text of a message sent by `send_buttons` and remove its buttons."""
        ...

    async def dm_target(self, user_id: str) -> OutboundTarget:
        """Where to reach `user_id` privately (opening the DM where the platform needs it)."""
        ...


@runtime_checkable
class ReactingTransport(Transport, Protocol):
    """A transport that can put the bot's reaction on a message."""

    async def react(self, target: OutboundTarget, message_id: str, emoji: str) -> None:
        """Add the bot's `emoji` reaction (Telegram: replaces the bot's reaction)."""
        ...

    async def unreact(self, target: OutboundTarget, message_id: str, emoji: str) -> None:
        """Remove the bot's `emoji` reaction."""
        ...


@dataclass
class AccountStatus:
    """What `channels.status` and health report for one channel account."""

    account_id: str
    configured: bool = False
    enabled: bool = True
    running: bool = False
    connected: bool = False
    last_error: str | None = None
    bot_id: str | None = None
    bot_name: str | None = None
    last_connected_at: int | None = None
    last_inbound_at: int | None = None
    last_outbound_at: int | None = None
    reconnects: int = 0
    extra: dict[str, object] = field(default_factory=dict)


class StatusBoard:
    """An account's live status plus a way to await a change to it (manager, tests)."""

    def __init__(self, status: AccountStatus) -> None:
        self.status = status
        self._changed = asyncio.Condition()

    async def notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(
        self, predicate: Callable[[AccountStatus], bool], timeout_s: float = 10.0
    ) -> AccountStatus:
        """Wait (bounded) until the status satisfies `predicate`."""

        async def _wait() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: predicate(self.status))

        await asyncio.wait_for(_wait(), timeout_s)
        return self.status


@dataclass(frozen=True)
class Chunking:
    limit: int
    max_lines: int | None = None


def join_nonempty(parts: Sequence[str | None], sep: str = " ") -> str:
    return sep.join(p for p in parts if p)


class ChannelRunner(Protocol):
    """One running channel account (created by `channels.manager`, one per enabled account).

    `start` must not block: it spawns the connection task and returns. `transport` is what
    the `send` RPC delivers through; `status()` is the live status the manager reports.
    """

    account_id: str

    @property
    def transport(self) -> Transport | None: ...

    def status(self) -> AccountStatus: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
