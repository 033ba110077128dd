"""Voice notes and audio files → text (`tools.media.audio`, media-understanding).

On unless `tools.media.audio.enabled` is false. The candidates are the `tools.media.models`
entries tagged (or known) for audio, in order; without any, the providers with a key are
tried in the reference's priority (Groq, then OpenAI). Each is called through the official
`openai` SDK (`audio.transcriptions.create`; Groq speaks the same API) with the provider's
configured key and base URL; a failure moves on to the next candidate. OGG/Opus voice
notes go up as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.config.models import OpenClawConfig
from gateway.tls import client_context
from providers.types import MissingCredentials, ProviderSettings

log = logging.getLogger("media")

# Providers with an OpenAI-style `/audio/transcriptions` endpoint, and their default model.
DEFAULT_MODELS = {"groq": "whisper-large-v3-turbo", "openai": "gpt-4o-transcribe"}
AUTO_ORDER = ("groq", "openai")
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
MIN_AUDIO_BYTES = 1024  # smaller is empty or broken (as the reference treats it)


@dataclass(frozen=True)
class Candidate:
    provider: str
    model: str
    settings: ProviderSettings
    language: str | None = None
    prompt: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_bytes: int = DEFAULT_MAX_BYTES


class NoTranscript(Exception):
    """Why there is no transcript (said to the agent in place of one)."""


def candidates(config: OpenClawConfig, env: Mapping[str, str]) -> list[Candidate]:
    """The usable transcription models, in the order to try them ([] when off or none)."""
    from gateway.agents.model_turn import provider_settings_from_config

    media = config.tools.media
    audio = media.audio
    if audio.enabled is False:
        return []
    timeout = audio.timeout_seconds or DEFAULT_TIMEOUT_S
    max_bytes = audio.max_bytes or DEFAULT_MAX_BYTES
    wanted: list[tuple[str, str | None, float | None, int | None, str | None, str | None]] = []
    for entry in media.models:
        if entry.type != "provider" or not entry.provider:
            continue
        tags = entry.capabilities
        if tags is not None and "audio" not in tags:
            continue
        if tags is None and entry.provider not in DEFAULT_MODELS:
            continue
        wanted.append(
            (entry.provider, entry.model, entry.timeout_seconds, entry.max_bytes,
             entry.language, entry.prompt)
        )  # fmt: skip
    explicit = bool(wanted)
    if not explicit:
        wanted = [(p, None, None, None, None, None) for p in AUTO_ORDER]
    out: list[Candidate] = []
    for provider, model, t, mb, language, prompt in wanted:
        if provider not in DEFAULT_MODELS:
            log.warning("tools.media.models: %s transcription is not supported; skipped", provider)
            continue
        try:
            settings = provider_settings_from_config(config, provider, env)
        except MissingCredentials as exc:
            if explicit:
                log.warning("audio transcription with %s unavailable: %s", provider, exc)
            continue
        if not settings.api_key:
            continue
        out.append(
            Candidate(
                provider,
                model or DEFAULT_MODELS[provider],
                settings,
                language or audio.language,
                prompt or audio.prompt,
                t or timeout,
                mb or max_bytes,
            )
        )
    return out


async def transcribe(path: Path, name: str, mime: str, size: int, chain: list[Candidate]) -> str:
    """The first transcript a candidate produces; NoTranscript says why there is none."""
    if size < MIN_AUDIO_BYTES:
        raise NoTranscript("the recording is empty or too short")
    if not chain:
        raise NoTranscript(
            "no transcription model is set up (an OpenAI or Groq key, or tools.media.models)"
        )
    reasons: list[str] = []
    for candidate in chain:
        if size > candidate.max_bytes:
            reasons.append(f"{candidate.provider}: over its {candidate.max_bytes} byte limit")
            continue
        try:
            text = await _call(candidate, path, name, mime)
        except Exception as exc:  # any SDK/HTTP failure: the next candidate, then a note
            log.warning(
                "transcription with %s/%s failed: %s", candidate.provider, candidate.model, exc
            )
            reasons.append(f"{candidate.provider} failed ({type(exc).__name__})")
            continue
        return text.strip()
    raise NoTranscript("; ".join(reasons))


async def _call(candidate: Candidate, path: Path, name: str, mime: str) -> str:
    import openai

    client = openai.AsyncOpenAI(
        api_key=candidate.settings.api_key,
        base_url=candidate.settings.base_url,
        timeout=candidate.timeout_s,
        max_retries=0,
        # A client per call, but the process's one TLS context: no CA bundle loaded per call.
        http_client=openai.DefaultAsyncHttpxClient(
            timeout=candidate.timeout_s, verify=client_context()
        ),
    )
    try:
        with path.open("rb") as fh:
            result = await client.audio.transcriptions.create(
                model=candidate.model,
                file=(name, fh, mime),
                language=candidate.language or openai.omit,
                prompt=candidate.prompt or openai.omit,
            )
    finally:
        await client.close()
    return str(result.text)
