"""The pipeline's media steps: attachments fetched and prepared in order; files sent back.

Fetching a picture or transcribing a voice note takes time, so a later text message of the
same conversation could overtake it. `MediaGate` keeps arrival order per session: while
one message's files are being prepared, the messages after it wait for it before they are
handed to the agent. A text-only message with nothing ahead of it takes no ticket and
stays on the pipeline's synchronous path.

`MediaGate.send_files` delivers the files a reply names on `MEDIA:` lines
(gateway.media.outbound) through the transport's `send_file`; a file that cannot be sent
becomes a short line of text in the chat instead.

`MediaGate.send_speech` adds a spoken copy of an answer when `tts` asks for one
(gateway.media.speech): a voice note on Telegram, an audio attachment on Discord. It runs
after the text went out, so a synthesis or upload failure is logged and loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING

from channels.base import FileSender, InboundMessage, OutboundTarget, Transport
from gateway.agents.roster import workspace_dir
from gateway.media.inbound import Prepared, prepare
from gateway.media.outbound import Refused, resolve
from gateway.media.service import media_store
from gateway.media.settings import channel_max_bytes
from gateway.media.speech import SpeechFailed, speak, tts_section, wants_speech
from gateway.media.store import session_folder

if TYPE_CHECKING:
    from gateway.config.models import DiscordConfig, TelegramConfig
    from gateway.runtime import Gateway


log = logging.getLogger("media")

# Where a spoken reply is a native voice note (Opus); elsewhere an MP3 attachment.
VOICE_NOTE_CHANNELS = frozenset({"telegram"})


class Ticket:
    def __init__(self, gate: MediaGate, key: str, ahead: asyncio.Future[None] | None) -> None:
        self._gate, self._key, self._ahead = gate, key, ahead
        self._mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        gate._tail[key] = self._mine

    async def turn(self) -> None:
        """Wait until every earlier message of the session has been handed on."""
        if self._ahead is not None:
            await asyncio.shield(self._ahead)

    def release(self) -> None:
        if not self._mine.done():
            self._mine.set_result(None)
        if self._gate._tail.get(self._key) is self._mine:
            del self._gate._tail[self._key]


class MediaGate:
    def __init__(self, gateway: Gateway, channel: str) -> None:
        self.gateway = gateway
        self.channel = channel
        self._tail: dict[str, asyncio.Future[None]] = {}

    def ticket(self, session_key: str, msg: InboundMessage) -> Ticket | None:
        """A place in line when the message has files or waits behind one that has."""
        ahead = self._tail.get(session_key)
        if not msg.attachments and ahead is None:
            return None
        return Ticket(self, session_key, ahead)

    async def prepare(
        self,
        msg: InboundMessage,
        session_key: str,
        text: str,
        section: DiscordConfig | TelegramConfig,
    ) -> Prepared:
        return await prepare(
            msg.attachments,
            caption=text,
            store=media_store(self.gateway),
            folder=session_folder(session_key),
            max_bytes=channel_max_bytes(section),
            limit_key=f"channels.{self.channel}.mediaMaxMb",
            config=self.gateway.loaded.config,
            env=os.environ,
        )

    async def send_files(
        self,
        transport: Transport,
        target: OutboundTarget,
        refs: list[str],
        agent_id: str,
        section: DiscordConfig | TelegramConfig,
    ) -> list[str]:
        """Send each file; returns the lines to say instead for those that could not go."""
        if not isinstance(transport, FileSender):
            return [f"(Could not attach {ref}: files cannot be sent here)" for ref in refs]
        cfg = self.gateway.loaded.config
        state = self.gateway.settings.state_dir
        roots = [workspace_dir(cfg, agent_id, state), media_store(self.gateway).root]
        problems: list[str] = []
        for ref in refs:
            try:
                file = resolve(ref, roots, channel_max_bytes(section))
                await transport.send_file(target, file)
            except Refused as exc:
                log.warning("%s: not attaching %s", self.channel, exc)
                problems.append(f"(Could not attach {exc})")
            except Exception as exc:  # the platform refused or failed: said, not dropped
                log.warning("%s: sending %s failed: %s", self.channel, ref, exc)
                problems.append(f"(Could not send {ref}: {type(exc).__name__})")
        return problems

    def wants_speech(self, msg: InboundMessage) -> bool:
        """Whether `tts.auto` asks for a spoken copy of the answer to `msg`."""
        inbound_audio = any(a.kind == "audio" for a in msg.attachments)
        return wants_speech(tts_section(self.gateway.loaded.config), inbound_audio)

    async def send_speech(self, transport: Transport, target: OutboundTarget, text: str) -> bool:
        """Speak `text` and send it; False (logged) when nothing was sent."""
        if not isinstance(transport, FileSender):
            return False
        voice_note = self.channel in VOICE_NOTE_CHANNELS
        try:
            audio = await speak(
                self.gateway.loaded.config,
                os.environ,
                media_store(self.gateway),
                text,
                voice_note=voice_note,
            )
            if audio is None:
                return False
            await transport.send_file(target, audio, voice=voice_note)
        except SpeechFailed as exc:
            log.warning("%s: no spoken reply: %s", self.channel, exc)
            return False
        except Exception as exc:  # the platform refused the audio: the text reply stands
            log.warning("%s: sending the spoken reply failed: %s", self.channel, exc)
            return False
        return True
