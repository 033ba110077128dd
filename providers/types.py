"""The provider interface: one small shape shared by every model API we speak."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Api = Literal[
    "anthropic-messages", "openai-completions", "openai-responses", "google-generative-ai"
]
DEFAULT_API: dict[str, Api] = {"anthropic": "anthropic-messages", "openai": "openai-completions"}
ENV_KEYS: dict[str, str] = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
# Hosted and local providers known by name (providers/endpoints.py has their base URLs).
DEFAULT_API |= {
    "google": "google-generative-ai",
    **dict.fromkeys(
        (
            "openrouter", "groq", "xai", "mistral", "deepseek", "together", "cerebras",
            "fireworks", "nvidia", "moonshot", "deepinfra", "huggingface",
            "ollama", "lmstudio", "vllm", "sglang",
        ),
        "openai-completions",
    ),
}  # fmt: skip
ENV_KEYS |= {
    "google": "GEMINI_API_KEY",  # then GOOGLE_API_KEY (endpoints.EXTRA_ENV_KEYS)
    "huggingface": "HUGGINGFACE_HUB_TOKEN",  # then HF_TOKEN
    "lmstudio": "LM_API_TOKEN",
}


@dataclass(frozen=True)
class ProviderSettings:
    provider: str
    api: Api
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    bearer_token: str | None = field(default=None, repr=False)  # Anthropic token mode
    timeout_s: float | None = None


# --- content blocks: one neutral shape, mapped once per API (tools.md §5.5) ----------------------


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class ToolCall:
    """A model's request to run a tool.

    `arguments` is the parsed JSON object; when the model sent something that is not a JSON
    object, `arguments` is empty and `raw_arguments` keeps the text so the tool loop can answer
    with an error result naming it.
    """

    id: str
    name: str
    arguments: Mapping[str, Any]
    raw_arguments: str | None = None


@dataclass(frozen=True)
class ToolResult:
    """The answer to one ToolCall, sent back in the next user message."""

    call_id: str
    name: str
    text: str
    is_error: bool = False


@dataclass(frozen=True)
class Image:
    media_type: str  # image/png, image/jpeg, image/gif, image/webp
    data: bytes = field(repr=False)
    name: str | None = None  # the file name, for notes about the image


@dataclass(frozen=True)
class Document:
    media_type: str  # application/pdf, text/plain, ...
    data: bytes = field(repr=False)
    name: str | None = None


Block = Text | ToolCall | ToolResult | Image | Document


@dataclass(frozen=True)
class Message:
    role: Literal["user", "assistant"]
    content: tuple[Block, ...]

    @classmethod
    def text(cls, role: Literal["user", "assistant"], text: str) -> Message:
        return cls(role, (Text(text),))

    @property
    def plain_text(self) -> str:
        return "".join(b.text for b in self.content if isinstance(b, Text))


@dataclass(frozen=True)
class ToolSpec:
    """What the model sees of a tool: its name, description and JSON-Schema parameters."""

    name: str
    description: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True)
class TurnRequest:
    model: str
    messages: tuple[Message, ...]
    system: str | None = None
    max_tokens: int = 8192
    tools: tuple[ToolSpec, ...] = ()
    # "none": the tools stay declared (history may hold calls) but the model must answer in
    # text, e.g. the last call of a turn that hit its step cap.
    tool_choice: Literal["auto", "none"] = "auto"


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
    """One finished model response: text and tool calls in the order the model produced them."""

    content: tuple[Block, ...]
    usage: Usage
    stop_reason: str  # normalised: "stop" | "toolUse" | "length" | the provider's own value
    model: str
    response_id: str | None = None

    @property
    def text(self) -> str:
        return "".join(b.text for b in self.content if isinstance(b, Text))

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(b for b in self.content if isinstance(b, ToolCall))


StreamEvent = TextDelta | Completion


def parse_arguments(raw: str) -> tuple[dict[str, Any], str | None]:
    """A tool call's streamed argument text → (arguments, raw text when it is not an object).

    Empty text means no arguments. Never raises: a model's bad JSON becomes an error result
    the tool loop sends back, not a failed turn.
    """
    if not raw.strip():
        return {}, None
    try:
        value = json.loads(raw)
    except ValueError:
        return {}, raw
    return (value, None) if isinstance(value, dict) else ({}, raw)


def arguments_json(call: ToolCall) -> str:
    """The call's arguments as the JSON text the OpenAI APIs carry (raw text kept as sent)."""
    if call.raw_arguments is not None:
        return call.raw_arguments
    return json.dumps(dict(call.arguments), ensure_ascii=False)


# Provider stop reasons → the reference's normalised ones (tools.md §5.5).
_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "completed": "stop",
    "stop": "stop",
    "tool_use": "toolUse",
    "tool_calls": "toolUse",
    "function_call": "toolUse",
    "max_tokens": "length",
    "max_output_tokens": "length",
    "length": "length",
}


def normalise_stop_reason(raw: str | None, has_tool_calls: bool) -> str:
    if has_tool_calls:
        return "toolUse"
    return _STOP_REASONS.get(raw or "stop", raw or "stop")


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
    """The model finished without producing any text or tool call."""
