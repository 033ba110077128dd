"""discord.py `Message` → platform-neutral `InboundMessage` (no policy decisions here)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import discord

from channels.base import AttachmentKind, InboundAttachment, InboundMessage

# Only user-authored text: joins, pins, boosts and application-command echoes
# (chat_input_command / context_menu_command, spec §2.5) never reach the pipeline.
_USER_TYPES = frozenset({discord.MessageType.default, discord.MessageType.reply})


_KINDS: dict[str, AttachmentKind] = {"image": "image", "video": "video", "audio": "audio"}


def _fetcher(att: discord.Attachment) -> Callable[[Path], Awaitable[None]]:
    async def fetch(path: Path) -> None:
        data = await att.read()  # discord.py's CDN client (the size was checked before)
        await asyncio.to_thread(path.write_bytes, data)

    return fetch


def _cdn_fetcher(message: discord.Message, url: str) -> Callable[[Path], Awaitable[None]]:
    async def fetch(path: Path) -> None:
        # discord.py's own CDN client, the one `Attachment.read` uses. Only Discord's media
        # proxy URL is fetched (never the embed's original host), so no other site is reached.
        data = await message._state.http.get_from_cdn(url)
        await asyncio.to_thread(path.write_bytes, data)

    return fetch


def _embed_images(message: discord.Message) -> list[InboundAttachment]:
    """Pictures shown in the message's embeds (an image link, a link preview's image)."""
    out: list[InboundAttachment] = []
    for embed in message.embeds:
        for media in (embed.image, embed.thumbnail):
            url = getattr(media, "proxy_url", None)
            if url:
                name = url.split("?", 1)[0].rsplit("/", 1)[-1] or "embed-image"
                out.append(InboundAttachment("image", _cdn_fetcher(message, url), name))
                break  # one picture per embed: the image, else its thumbnail
    return out


def _attachments(message: discord.Message) -> tuple[InboundAttachment, ...]:
    out: list[InboundAttachment] = []
    for att in message.attachments:
        major = (att.content_type or "").split("/", 1)[0]
        kind = _KINDS.get(major, "document")
        voice = att.is_voice_message()
        out.append(
            InboundAttachment(kind, _fetcher(att), att.filename, att.content_type, att.size, voice)
        )
    out += _embed_images(message)
    return tuple(out)


def _sticker_placeholders(message: discord.Message) -> list[str]:
    """Stickers are not downloaded: a placeholder keeps a sticker-only turn from being empty."""
    return ["<media:sticker>" for _ in message.stickers]


def _mentions_bot(message: discord.Message, bot_id: int, bot_role_ids: set[int]) -> bool:
    """An explicit `<@bot>`/`<@!bot>` in the text or a mention of one of the bot's roles.

    The raw text is checked first because without the Message Content intent `mentions` may be
    all there is; a reply-ping (Discord adds the replied-to author to `mentions`) is not an
    explicit mention, it is reported as `reply_to_bot`.
    """
    if re.search(rf"<@!?{bot_id}>", message.content):
        return True
    if bot_role_ids and any(role.id in bot_role_ids for role in message.role_mentions):
        return True
    ref = message.reference
    is_reply = ref is not None and ref.message_id is not None
    return not is_reply and any(u.id == bot_id for u in message.mentions)


def _replied(message: discord.Message) -> discord.Message | None:
    ref = message.reference
    if ref is None:
        return None
    resolved = ref.resolved if isinstance(ref.resolved, discord.Message) else None
    return resolved or ref.cached_message


def to_inbound(
    message: discord.Message,
    *,
    account_id: str,
    bot_user: discord.ClientUser,
    channel: object | None = None,
) -> InboundMessage | None:
    """Map one message; None for what the pipeline never sees (system types, group DMs).

    `channel` replaces `message.channel` when the adapter had to fetch it (a channel or thread
    missing from discord.py's cache arrives as a bare `PartialMessageable`).
    """
    if message.type not in _USER_TYPES:
        return None
    if channel is None:
        channel = message.channel
    if isinstance(channel, discord.GroupChannel):
        return None  # group DMs are a later feature (dm.groupEnabled)
    author = message.author
    guild = message.guild
    bot_role_ids: set[int] = set()
    if guild is not None and guild.me is not None:
        bot_role_ids = {r.id for r in guild.me.roles if not r.is_default()}
    role_ids = _role_ids(author) if guild is not None else ()
    thread_id, parent_id = _thread_ids(channel)
    replied = _replied(message)
    ref_id = message.reference.message_id if message.reference else None
    text = "\n".join(p for p in [message.content, *_sticker_placeholders(message)] if p)
    return InboundMessage(
        channel="discord",
        account_id=account_id,
        chat_type="direct" if guild is None else "channel",
        chat_id=str(message.channel.id),
        message_id=str(message.id),
        sender_id=str(author.id),
        sender_name=author.display_name,
        sender_username=author.name,
        text=text,
        sender_is_bot=author.bot,
        from_self=author.id == bot_user.id,
        mentioned=_mentions_bot(message, bot_user.id, bot_role_ids),
        reply_to_bot=replied is not None and replied.author.id == bot_user.id,
        reply_to_text=replied.content if replied is not None else None,
        reply_to_sender=replied.author.display_name if replied is not None else None,
        reply_to_id=str(ref_id) if ref_id is not None else None,
        guild_id=str(guild.id) if guild is not None else None,
        guild_name=guild.name if guild is not None else None,
        chat_name=getattr(channel, "name", None),
        thread_id=thread_id,
        parent_chat_id=parent_id,
        member_role_ids=role_ids,
        timestamp_ms=int(message.created_at.timestamp() * 1000),
        attachments=_attachments(message),
    )


def interaction_to_inbound(
    interaction: discord.Interaction,
    *,
    account_id: str,
    command: str,
    args: str,
    channel: object | None = None,
    private_reply: bool = True,
) -> InboundMessage | None:
    """A slash-command invocation as the message `/command args` (None: group DMs, later).

    It is explicitly addressed to the bot (`mentioned`), so the group mention gate never
    holds it back; `channel` replaces `interaction.channel` when the adapter had to fetch it.
    """
    if channel is None:
        channel = interaction.channel
    if isinstance(channel, discord.GroupChannel) or interaction.channel_id is None:
        return None
    author = interaction.user
    guild = interaction.guild
    role_ids = _role_ids(author)
    thread_id, parent_id = _thread_ids(channel)
    in_guild = interaction.guild_id is not None
    return InboundMessage(
        channel="discord",
        account_id=account_id,
        chat_type="channel" if in_guild else "direct",
        chat_id=str(interaction.channel_id),
        message_id=str(interaction.id),
        sender_id=str(author.id),
        sender_name=author.display_name,
        sender_username=author.name,
        text=f"/{command} {args}".strip(),
        sender_is_bot=author.bot,
        mentioned=True,
        guild_id=str(interaction.guild_id) if in_guild else None,
        guild_name=guild.name if guild is not None else None,
        chat_name=getattr(channel, "name", None),
        thread_id=thread_id,
        parent_chat_id=parent_id,
        member_role_ids=role_ids,
        timestamp_ms=int(interaction.created_at.timestamp() * 1000),
        native_command=True,
        private_reply=private_reply,
    )


def _role_ids(author: object) -> tuple[str, ...]:
    """A guild member's role ids (not @everyone); nothing for users outside a guild."""
    if isinstance(author, discord.Member):
        return tuple(str(r.id) for r in author.roles if not r.is_default())
    return ()


def _thread_ids(channel: object) -> tuple[str | None, str | None]:
    """(thread id, parent channel id) when `channel` is a thread, else (None, None)."""
    if isinstance(channel, discord.Thread):
        return str(channel.id), str(channel.parent_id)
    return None, None
