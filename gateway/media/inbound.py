"""A channel message's attachments → stored references, transcripts and notes.

Runs once a message is admitted (strangers' files are never downloaded). Every failure
becomes words, never a lost message: a file over the limit is named to the sender with the
limit (and the agent hears of it when the message carries anything else); a download that
fails or times out, a damaged picture, or audio that could not be transcribed is told to
the agent in the message text.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from channels.base import InboundAttachment
from gateway.config.models import OpenClawConfig
from gateway.media.refs import MediaRef, human_size
from gateway.media.sniff import BadImage
from gateway.media.store import MediaStore, TooLarge
from gateway.media.transcribe import NoTranscript, candidates, transcribe

log = logging.getLogger("media")

DOWNLOAD_TIMEOUT_S = 60.0
MAX_ATTACHMENTS = 10  # per message; more are named, not fetched


@dataclass
class Prepared:
    text: str  # the message text the agent gets (caption, transcripts, notes)
    media: list[dict[str, Any]] = field(default_factory=list)  # transcript blocks
    notices: list[str] = field(default_factory=list)  # told to the sender at once
    usable: bool = True  # False: nothing left for the agent (only refused files)


def _name(att: InboundAttachment) -> str:
    return att.name or {"image": "a picture", "audio": "an audio file"}.get(att.kind, "a file")


def transcript_text(name: str, transcript: str, voice: bool) -> str:
    what = "Voice note" if voice else f"Audio {name}"
    return f'[{what}, transcribed automatically — the words may be imperfect]\n"{transcript}"'


async def prepare(
    attachments: Sequence[InboundAttachment],
    *,
    caption: str,
    store: MediaStore,
    folder: str,
    max_bytes: int,
    limit_key: str,
    config: OpenClawConfig,
    env: Mapping[str, str],
    timeout_s: float = DOWNLOAD_TIMEOUT_S,
) -> Prepared:
    """Fetch, check and store each attachment; transcribe audio (see module doc)."""
    notes: list[str] = []
    texts: list[str] = []
    out = Prepared(text=caption)
    refused = 0
    for index, att in enumerate(attachments):
        name = _name(att)
        if index >= MAX_ATTACHMENTS:
            notes.append(f"[{len(attachments) - index} more attachment(s) were not processed]")
            break
        if att.size is not None and att.size > max_bytes:
            out.notices.append(_too_big(name, att.size, max_bytes, limit_key))
            notes.append(f"[{name} was not processed: over the size limit]")
            refused += 1
            continue
        try:
            async with asyncio.timeout(timeout_s):
                checked = await store.ingest(
                    att.fetch, folder=folder, max_bytes=max_bytes, name=att.name, declared=att.mime
                )
        except TooLarge as exc:
            out.notices.append(_too_big(name, exc.size, max_bytes, limit_key))
            notes.append(f"[{name} was not processed: over the size limit]")
            refused += 1
            continue
        except BadImage as exc:
            notes.append(f"[The picture {exc}; ask the sender for it again if it matters]")
            continue
        except TimeoutError:
            log.warning("download of %s timed out after %.0fs", name, timeout_s)
            notes.append(f"[{name} could not be downloaded (timed out)]")
            continue
        except Exception as exc:  # a library or network failure: the message still goes on
            log.warning("download of %s failed: %s", name, exc)
            notes.append(f"[{name} could not be downloaded ({type(exc).__name__})]")
            continue
        ref = checked.ref
        out.media.append(ref.block())
        if ref.kind == "audio":
            texts.append(await _transcribe(store, ref, att, config, env))
    out.text = "\n\n".join(p for p in [caption, *texts, *notes] if p)
    out.usable = bool(caption.strip() or out.media or refused < len(attachments))
    return out


async def _transcribe(
    store: MediaStore,
    ref: MediaRef,
    att: InboundAttachment,
    config: OpenClawConfig,
    env: Mapping[str, str],
) -> str:
    name = ref.name or "audio"
    try:
        text = await transcribe(store.path(ref), name, ref.mime, ref.size, candidates(config, env))
    except NoTranscript as exc:
        what = "a voice note" if att.voice else f"the audio file {name}"
        return f"[The user sent {what}, but it could not be transcribed: {exc}]"
    if not text:
        return "[The voice note holds no speech]" if att.voice else f"[{name} holds no speech]"
    return transcript_text(name, text, att.voice)


def _too_big(name: str, size: int | None, limit: int, key: str) -> str:
    what = f"{name} ({human_size(size)})" if size is not None else name
    return (
        f"⚠️ {what} is too large: the limit here is {human_size(limit)} ({key}). "
        "It was not processed."
    )
