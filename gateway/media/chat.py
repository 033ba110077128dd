"""`chat.send` attachments (Control UI, official clients) → stored files, transcript blocks.

The protocol shape is `{type, mimeType, fileName, content}` with `content` base64. Each is
decoded, size-checked against the limits hello-ok advertises, sniffed and stored in the
session's media folder; a bad one fails the whole call with an error naming its index and
file name (nothing is half-sent).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import AsyncIterator, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.media.sniff import BadImage
from gateway.media.store import MediaStore, TooLarge, session_folder

MAX_ATTACHMENTS = 10
DECODE_CHUNK = 1024 * 1024  # base64 characters per step (a multiple of 4)


class ChatAttachment(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    type: str | None = Field(None, max_length=64)
    mime_type: str | None = Field(None, alias="mimeType", max_length=256)
    file_name: str | None = Field(None, alias="fileName", max_length=512)
    content: Any = None


class AttachmentError(ValueError):
    """What is wrong with which attachment (safe to show the caller)."""


async def store_attachments(
    attachments: Sequence[ChatAttachment],
    *,
    store: MediaStore,
    session_key: str,
    max_bytes: int,
    max_image_bytes: int,
) -> list[dict[str, Any]]:
    if len(attachments) > MAX_ATTACHMENTS:
        raise AttachmentError(f"at most {MAX_ATTACHMENTS} attachments per message")
    blocks: list[dict[str, Any]] = []
    for index, att in enumerate(attachments):
        where = f"attachments[{index}]" + (f" ({att.file_name})" if att.file_name else "")
        text = _payload(att.content, where, max_bytes)
        name = _safe_name(att.file_name)
        try:
            checked = await store.save_stream(
                _decoded(text, where),
                folder=session_folder(session_key),
                max_bytes=max_bytes,
                name=name,
                declared=att.mime_type,
            )
        except AttachmentError:
            raise
        except (TooLarge, BadImage, ValueError) as exc:
            raise AttachmentError(f"{where}: {exc}") from exc
        ref = checked.ref
        if ref.kind == "image" and ref.size > max_image_bytes:
            store.path(ref).unlink(missing_ok=True)
            raise AttachmentError(
                f"{where}: the image is {ref.size} bytes, over the {max_image_bytes} byte"
                " image limit"
            )
        blocks.append(ref.block())
    return blocks


def _payload(content: Any, where: str, max_bytes: int) -> str:
    if not isinstance(content, str) or not content:
        raise AttachmentError(f"{where}: content must be a non-empty base64 string")
    text: str = content
    if text.startswith("data:"):
        text = text.partition(",")[2]  # a data URL: its payload
    if len(text) > (max_bytes + 2) // 3 * 4 + 4:
        raise AttachmentError(f"{where}: over the {max_bytes} byte limit")
    return text


async def _decoded(text: str, where: str) -> AsyncIterator[bytes]:
    """Decode piece by piece on the event loop: no second whole copy, no long stall."""
    for start in range(0, len(text), DECODE_CHUNK):
        try:
            yield base64.b64decode(text[start : start + DECODE_CHUNK], validate=True)
        except (binascii.Error, ValueError):
            raise AttachmentError(f"{where}: content is not valid base64") from None
        await asyncio.sleep(0)


def _safe_name(name: str | None) -> str | None:
    """The last path part only: a file name is a label, never a place to write."""
    if not name:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return base[:200] or None
