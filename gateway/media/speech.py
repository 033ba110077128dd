"""Spoken replies (`tts`, legacy `messages.tts`): the answer's text → a voice note.

`tts.auto` decides which replies are spoken: `off` (the default), `always`, or `inbound`
(only a reply to a message that came with a voice note or audio). `tagged` (replies with
`[[tts:...]]` directives) is not supported yet and speaks nothing. Only final answers are
spoken (`mode: "all"` is treated as `final`). As in the reference, a reply that carries
files, a very short reply and one that is mostly fenced code stay text-only; a reply over
`maxTextLength` is cut there (no summary model yet).

Synthesis goes through the official `openai` SDK (`audio.speech.create`): key from
`tts.providers.openai.apiKey`, else the OpenAI model provider's key; base URL from
`tts.providers.openai.baseUrl`, else `OPENAI_TTS_BASE_URL`, else the OpenAI model
provider's, else api.openai.com. Voice-note channels (Telegram) get Opus, others MP3, unless `responseFormat`
says otherwise. The audio is kept in the media store (`speech/`), pruned like the rest.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.config.models import OpenClawConfig, TtsConfig, TtsOpenAIConfig
from gateway.config.secrets import SecretError, resolve_secret
from gateway.media.outbound import OutgoingFile
from gateway.media.store import MediaStore
from gateway.tls import client_context
from providers.types import MissingCredentials

log = logging.getLogger("media")

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini-tts"
DEFAULT_VOICE = "coral"
MIN_CHARS = 10  # shorter replies stay text-only
FOLDER = "speech"
MAX_AUDIO_BYTES = 50 * 1024 * 1024
_FENCED = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.MULTILINE | re.DOTALL)
_MIME = {"opus": "audio/ogg", "mp3": "audio/mpeg", "wav": "audio/wav"}
_SUFFIX = {"opus": ".ogg", "mp3": ".mp3", "wav": ".wav"}


class SpeechFailed(Exception):
    """Why no audio was made (logged; the text reply stands)."""


@dataclass(frozen=True)
class Voice:
    """How to speak: the resolved OpenAI speech settings."""

    api_key: str
    base_url: str
    model: str
    voice: str
    instructions: str | None
    response_format: str | None
    speed: float | None
    timeout_s: float
    max_chars: int


def tts_section(config: OpenClawConfig) -> TtsConfig | None:
    """The top-level `tts`, else the legacy `messages.tts`."""
    return config.tts if config.tts is not None else config.messages.tts


def wants_speech(section: TtsConfig | None, inbound_audio: bool) -> bool:
    """Whether `tts.auto` asks for this reply to be spoken."""
    if section is None:
        return False
    mode = section.auto_mode
    return mode == "always" or (mode == "inbound" and inbound_audio)


def speakable(text: str, max_chars: int) -> str | None:
    """The text to speak, or None when the reply should stay text-only."""
    stripped = text.strip()
    if len(stripped) < MIN_CHARS:
        return None
    prose = _FENCED.sub("", stripped).strip()
    if len(prose) * 2 < len(stripped):  # mostly fenced code: nothing worth hearing
        return None
    spoken = prose if len(prose) >= MIN_CHARS else stripped
    return spoken[:max_chars].rstrip()


def resolve_voice(config: OpenClawConfig, env: Mapping[str, str]) -> Voice:
    """The OpenAI speech settings; SpeechFailed names what is missing (never a secret)."""
    from gateway.agents.model_turn import provider_settings_from_config

    section = tts_section(config) or TtsConfig()
    if section.provider not in (None, "openai"):
        raise SpeechFailed(f"tts.provider {section.provider!r} is not supported (only openai)")
    own = section.providers.openai or section.openai or TtsOpenAIConfig()
    try:
        key = resolve_secret(own.api_key, "tts.providers.openai.apiKey", env)
    except SecretError as exc:
        raise SpeechFailed(str(exc)) from exc
    base = own.base_url or env.get("OPENAI_TTS_BASE_URL") or None
    if key is None or base is None:
        try:
            settings = provider_settings_from_config(config, "openai", env)
        except MissingCredentials as exc:
            if key is None:
                raise SpeechFailed(str(exc)) from exc
            entry = config.models.providers.get("openai")
            base = base or (entry.base_url if entry is not None else None)
        else:
            key = key or settings.api_key
            base = base or settings.base_url
    if not key:
        raise SpeechFailed("no OpenAI key for speech (tts.providers.openai.apiKey)")
    return Voice(
        api_key=key,
        base_url=base or DEFAULT_BASE_URL,
        model=own.model or DEFAULT_MODEL,
        voice=own.speaker_voice or own.voice or DEFAULT_VOICE,
        instructions=own.instructions,
        response_format=own.response_format,
        speed=own.speed,
        timeout_s=section.timeout_ms / 1000,
        max_chars=section.max_text_length,
    )


async def synthesize(voice: Voice, text: str, *, voice_note: bool) -> tuple[bytes, str]:
    """(audio bytes, format): Opus for a voice note, MP3 otherwise, unless configured."""
    import openai

    fmt = voice.response_format or ("opus" if voice_note else "mp3")
    client = openai.AsyncOpenAI(
        api_key=voice.api_key,
        base_url=voice.base_url,
        timeout=voice.timeout_s,
        max_retries=0,
        # A client per call, but the process's one TLS context: no CA bundle loaded per call.
        http_client=openai.DefaultAsyncHttpxClient(
            timeout=voice.timeout_s, verify=client_context()
        ),
    )
    try:
        response = await client.audio.speech.create(
            model=voice.model,
            voice=voice.voice,
            input=text,
            response_format=fmt,  # type: ignore[arg-type]
            instructions=voice.instructions or openai.omit,
            speed=voice.speed if voice.speed is not None else openai.omit,
        )
        data = response.content
    except Exception as exc:  # any SDK/HTTP failure: the caller keeps the text reply
        raise SpeechFailed(f"speech synthesis failed ({type(exc).__name__})") from exc
    finally:
        await client.close()
    if not data:
        raise SpeechFailed("speech synthesis returned no audio")
    return data, fmt


async def speak(
    config: OpenClawConfig,
    env: Mapping[str, str],
    store: MediaStore,
    text: str,
    *,
    voice_note: bool,
) -> OutgoingFile | None:
    """The reply as an audio file in the store, or None when it stays text-only.

    Raises SpeechFailed when speech was wanted but could not be made."""
    voice = resolve_voice(config, env)
    spoken = speakable(text, voice.max_chars)
    if spoken is None:
        return None
    data, fmt = await synthesize(voice, spoken, voice_note=voice_note)
    name = "voice" + _SUFFIX.get(fmt, ".ogg")
    try:
        checked = store.save_bytes(
            data, folder=FOLDER, max_bytes=MAX_AUDIO_BYTES, name=name, declared=_MIME.get(fmt)
        )
    except ValueError as exc:
        raise SpeechFailed(f"speech audio could not be stored: {exc}") from exc
    ref = checked.ref
    return OutgoingFile(store.path(ref), name, ref.mime, ref.size)
