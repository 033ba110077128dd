"""The provider interface: one small shape shared by every model API we speak."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

Api = Literal["anthropic-messages", "openai-completions", "openai-responses"]
DEFAULT_API: dict[str, Api] = {"anthropic": "anthropic-messages", "openai": "openai-completions"}
ENV_KEYS: dict[str, str] = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}


@dataclass(frozen=True)
class ProviderSettings:
    provider: str
    api: Api
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    bearer_token: str | None = field(default=None, repr=False)  # Anthropic token mode
    timeout_s: float | None = None


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["user", "assistant"]
    text: str


@dataclass(frozen=True)
class TurnRequest:
    model: str
    messages: tuple[ChatMessage, ...]
    system: str | None = None
    max_tokens: int = 8192


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read: int = 0
    cache_write: int = 0


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class Completion:
    text: str
    usage: Usage
    stop_reason: str
    model: str
    response_id: str | None = None


StreamEvent = TextDelta | Completion


class Provider(Protocol):
    settings: ProviderSettings

    def stream(self, request: TurnRequest) -> AsyncIterator[StreamEvent]:
        """Text deltas as they arrive, then exactly one Completion."""
        ...


class MissingCredentials(Exception):
    """No key for a provider; classified as `auth`. Names the env var, never a value."""


class StreamFailure(Exception):
    """The provider reported an error inside a stream that had already started (HTTP 200).

    `error_type` is the provider's structured type/code (e.g. `overloaded_error`).
    """

    def __init__(self, error_type: str | None, message: str = "") -> None:
        super().__init__(
            f"{error_type or 'error'}: {message}" if message else error_type or "error"
        )
        self.error_type = error_type
        self.message = message


class EmptyResponse(Exception):
    """The model finished without producing any text."""
