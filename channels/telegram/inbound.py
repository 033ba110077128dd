"""Telegram `Message` → `InboundMessage` (mention detection, `/cmd@bot`, attachments)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from telegram import Message, MessageEntity, User

from channels.base import AttachmentKind, ChatType, InboundAttachment, InboundMessage


def _fetcher(message: Message, file_id: str) -> Callable[[Path], Awaitable[None]]:
    """Download through PTB: `getFile`, then the file endpoint (the library's own client)."""

    async def fetch(path: Path) -> None:
        found = await message.get_bot().get_file(file_id)
        await found.download_to_drive(path)

    return fetch


def _attachments(message: Message) -> tuple[tuple[InboundAttachment, ...], str | None]:
    """(the message's downloadable files, text standing in for a sticker that is not one)."""

    def one(
        kind: AttachmentKind,
        file_id: str,
        size: int | None,
        name: str | None = None,
        mime: str | None = None,
        voice: bool = False,
    ) -> tuple[InboundAttachment, ...]:
        return (InboundAttachment(kind, _fetcher(message, file_id), name, mime, size, voice),)

    if message.photo:
        best = message.photo[-1]  # Telegram lists the sizes smallest first
        return one("image", best.file_id, best.file_size, "photo.jpg", "image/jpeg"), None
    if message.sticker:
        sticker = message.sticker
        if sticker.is_animated or sticker.is_video:
            # TGS/WEBM stickers are not pictures a model reads: their emoji stands in.
            return (), sticker.emoji or "<media:sticker>"
        return one("image", sticker.file_id, sticker.file_size, "sticker.webp", "image/webp"), None
    if message.voice:
        v = message.voice
        return one("audio", v.file_id, v.file_size, "voice.ogg", v.mime_type, voice=True), None
    if message.audio:
        a = message.audio
        return one("audio", a.file_id, a.file_size, a.file_name or "audio", a.mime_type), None
    if message.document:
        d = message.document
        mime = d.mime_type or ""
        kind: AttachmentKind = "image" if mime.startswith("image/") else "document"
        return one(kind, d.file_id, d.file_size, d.file_name, d.mime_type), None
    for attr in ("video", "video_note", "animation"):
        clip = getattr(message, attr, None)
        if clip is not None:
            name = getattr(clip, "file_name", None) or f"{attr}.mp4"
            return one("video", clip.file_id, clip.file_size, name, "video/mp4"), None
    return (), None


def _chat_type(kind: str) -> ChatType | None:
    if kind == "private":
        return "direct"
    if kind in ("group", "supergroup"):
        return "group"
    return None  # channel posts are not conversations with the bot


def _strip_own_command(text: str, username: str) -> tuple[str, bool]:
    """`/cmd@ourbot args` → (`/cmd args`, True); `/cmd@otherbot` stays as is (not ours)."""
    if not text.startswith("/"):
        return text, False
    head, sep, rest = text.partition(" ")
    if "\n" in head:
        head, sep2, more = head.partition("\n")
        rest, sep = more + (sep + rest if sep else ""), sep2
    command, at, target = head.partition("@")
    if not at:
        return text, False
    if username and target.lower() == username.lower():
        return command + (sep + rest if sep else ""), True
    return text, False


def _mentions_bot(message: Message, bot: User) -> bool:
    username = (bot.username or "").lower()
    entities = message.parse_entities(
        [MessageEntity.MENTION, MessageEntity.TEXT_MENTION]
    ) or message.parse_caption_entities([MessageEntity.MENTION, MessageEntity.TEXT_MENTION])
    for entity, text in entities.items():
        if entity.type == MessageEntity.MENTION and username and text.lower() == f"@{username}":
            return True
        if entity.type == MessageEntity.TEXT_MENTION and entity.user and entity.user.id == bot.id:
            return True
    return False


def _is_menu_command(message: Message, text: str, names: frozenset[str] | None) -> bool:
    """A `bot_command` entity opening the message and naming one of our menu commands."""
    if not names or not text.startswith("/"):
        return False
    opening = any(e.type == MessageEntity.BOT_COMMAND and e.offset == 0 for e in message.entities)
    name = text[1:].split(maxsplit=1)[0].lower() if len(text) > 1 else ""
    return opening and name in names


def to_inbound(
    message: Message,
    *,
    bot: User,
    account_id: str,
    native_names: frozenset[str] | None = None,
) -> InboundMessage | None:
    """Map one message; `native_names` = the registered menu (None: native commands off)."""
    chat_type = _chat_type(message.chat.type)
    sender = message.from_user
    if chat_type is None or sender is None:
        return None
    text = message.text or message.caption or ""
    attachments, stand_in = _attachments(message)
    if stand_in:
        text = f"{stand_in} {text}".strip()
    raw = text
    text, command_for_us = _strip_own_command(text, bot.username or "")
    addressed_elsewhere = raw.startswith("/") and "@" in raw.split(maxsplit=1)[0]
    native = not addressed_elsewhere or command_for_us
    reply = message.reply_to_message
    reply_from = reply.from_user if reply is not None else None
    thread = message.message_thread_id if message.is_topic_message else None
    return InboundMessage(
        channel="telegram",
        account_id=account_id,
        chat_type=chat_type,
        chat_id=str(message.chat.id),
        message_id=str(message.message_id),
        sender_id=str(sender.id),
        sender_name=sender.full_name or sender.username or str(sender.id),
        sender_username=sender.username,
        sender_is_bot=bool(sender.is_bot) and sender.id != bot.id,
        from_self=sender.id == bot.id,
        text=text,
        mentioned=command_for_us or _mentions_bot(message, bot),
        reply_to_bot=reply_from is not None and reply_from.id == bot.id,
        reply_to_text=(reply.text or reply.caption) if reply is not None else None,
        reply_to_sender=reply_from.full_name if reply_from is not None else None,
        reply_to_id=str(reply.message_id) if reply is not None else None,
        chat_name=message.chat.title,
        thread_id=str(thread) if thread is not None else None,
        timestamp_ms=int(message.date.timestamp() * 1000) if message.date else 0,
        native_command=native and _is_menu_command(message, text, native_names),
        attachments=attachments,
    )
