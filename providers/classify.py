"""Every provider failure mapped to one reason, in one place (agents.md §9.3).

Decisions use SDK exception types, HTTP status and the error body's structured `type`/`code`
fields. Message text is consulted only to tell a context overflow from other 400s, and then only
together with those structured fields.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any, Literal

from providers.types import EmptyResponse, MissingCredentials, StreamFailure

Reason = Literal[
    "rate_limit",
    "overloaded",
    "server",
    "timeout",
    "auth",
    "billing",
    "not_found",
    "context_overflow",
    "bad_request",
    "content_filter",
    "empty",
    "cooldown",
    "unknown",
]
RETRYABLE: frozenset[Reason] = frozenset({"rate_limit", "overloaded", "server", "timeout"})
# Reasons after which another model cannot help: the request itself is the problem.
TERMINAL: frozenset[Reason] = frozenset({"context_overflow", "bad_request", "content_filter"})
# Reasons that put a model on the cooldown ladder; billing disables it for longer.
COOLDOWN: frozenset[Reason] = frozenset({"rate_limit", "overloaded", "server", "timeout", "auth"})

_BODY_TYPES: dict[str, Reason] = {
    "rate_limit_error": "rate_limit",
    "overloaded_error": "overloaded",
    "api_error": "server",
    "server_error": "server",
    "authentication_error": "auth",
    "permission_error": "auth",
    "invalid_api_key": "auth",
    "billing_error": "billing",
    "insufficient_quota": "billing",
    "not_found_error": "not_found",
    "model_not_found": "not_found",
    "request_too_large": "context_overflow",
    "context_length_exceeded": "context_overflow",
    "string_above_max_length": "context_overflow",
    "content_filter": "content_filter",
    "timeout_error": "timeout",
}
_STATUS: dict[int, Reason] = {
    400: "bad_request",
    401: "auth",
    402: "billing",
    403: "auth",
    404: "not_found",
    408: "timeout",
    413: "context_overflow",
    422: "bad_request",
    429: "rate_limit",
    499: "timeout",
    500: "server",
    502: "server",
    503: "server",
    504: "timeout",
    522: "timeout",
    524: "timeout",
    529: "overloaded",
}
_OVERFLOW_TEXT = re.compile(
    r"context length|context window|prompt is too long|too many tokens|input token count|maximum context"
    # context-and-cron.md A.8: the other providers' wordings
    r"|input exceeds the maximum number of tokens|input is too long for the model"
    r"|context size has been exceeded",
    re.IGNORECASE,
)


# Failure.error_type of a turn that never reached the provider because no key is configured.
MISSING_CREDENTIALS = "missing_credentials"


class ContentFiltered(Exception):
    """The provider ended the answer because of its content filter."""


@dataclass(frozen=True)
class Failure:
    reason: Reason
    status: int | None = None
    error_type: str | None = None
    retry_after_s: float | None = None
    preview: str = ""

    @property
    def retryable(self) -> bool:
        return self.reason in RETRYABLE


def _body_error(body: object) -> tuple[str | None, str]:
    """(type-or-code, message) from an Anthropic or OpenAI error body."""
    if not isinstance(body, dict):
        return None, ""
    err: Any = body.get("error", body)
    if not isinstance(err, dict):
        return None, ""
    kind = err.get("code") or err.get("type")
    if err.get("type") in _BODY_TYPES and err.get("code") not in _BODY_TYPES:
        kind = err.get("type")
    message = err.get("message")
    return (str(kind) if kind else None), (str(message) if message else "")


def retry_after(headers: Any) -> float | None:
    """Seconds the provider asked us to wait (`retry-after-ms` beats `retry-after`)."""
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000)
        seconds = headers.get("retry-after")
        if seconds is not None:
            return max(0.0, float(seconds))
    except (TypeError, ValueError):
        return None
    return None


def _sdk_errors(name: str) -> tuple[type[BaseException], ...]:
    """`name` (e.g. "APIStatusError") from each provider SDK that is loaded.

    An exception can only come from a loaded SDK, and importing one here would stall the
    event loop for about a second on the first failure (and cost its memory for nothing).
    """
    return tuple(
        getattr(sys.modules[module], name)
        for module in ("anthropic", "openai")
        if module in sys.modules
    )


# Google's canonical error statuses (the `error.status` field of a Gemini API error body).
_GOOGLE_STATUS: dict[str, Reason] = {
    "RESOURCE_EXHAUSTED": "rate_limit",
    "UNAVAILABLE": "overloaded",
    "INVALID_ARGUMENT": "bad_request",
    "FAILED_PRECONDITION": "bad_request",
    "OUT_OF_RANGE": "bad_request",
    "UNAUTHENTICATED": "auth",
    "PERMISSION_DENIED": "auth",
    "NOT_FOUND": "not_found",
    "INTERNAL": "server",
    "UNKNOWN": "server",
    "ABORTED": "server",
    "DEADLINE_EXCEEDED": "timeout",
}


def _google_details(body: object) -> list[dict[str, Any]]:
    err = body.get("error") if isinstance(body, dict) else None
    details = err.get("details") if isinstance(err, dict) else None
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def _google_failure(exc: Any) -> Failure:
    """A `google.genai.errors.APIError`: HTTP code, canonical status, structured details."""
    code = exc.code if isinstance(exc.code, int) else None
    status = str(exc.status or "")
    message = str(exc.message or "")
    details = _google_details(exc.details)
    reason: Reason = _GOOGLE_STATUS.get(status) or _STATUS.get(code or 0) or "unknown"
    if reason == "unknown" and code and code >= 500:
        reason = "server"
    # An invalid key comes back as 400 INVALID_ARGUMENT; its ErrorInfo reason says so.
    if any(str(d.get("reason", "")).startswith("API_KEY_") for d in details):
        reason = "auth"
    if reason == "bad_request" and _OVERFLOW_TEXT.search(message):
        reason = "context_overflow"
    wait = None
    for d in details:
        delay = d.get("retryDelay")
        if str(d.get("@type", "")).endswith("RetryInfo") and isinstance(delay, str):
            try:
                wait = float(delay.rstrip("s"))
            except ValueError:
                wait = None
    return Failure(
        reason,
        status=code,
        error_type=status or None,
        retry_after_s=wait,
        preview=_preview(message or status),
    )


def _loaded(module: str, name: str) -> tuple[type[BaseException], ...]:
    # Like _sdk_errors: only an SDK (or HTTP client) already loaded can have raised.
    return (getattr(sys.modules[module], name),) if module in sys.modules else ()


def classify(exc: BaseException) -> Failure:
    if isinstance(exc, MissingCredentials):
        # Nothing was sent: the message says which key to set, not that a provider refused one.
        return Failure("auth", error_type=MISSING_CREDENTIALS, preview=str(exc))
    if isinstance(exc, _loaded("google.genai.errors", "APIError")):
        return _google_failure(exc)
    if isinstance(exc, _loaded("aiohttp", "ClientConnectionError")):
        # The Google SDK's transport: refused, reset or dropped connections.
        return Failure("timeout", preview="connection failed")
    if isinstance(exc, ContentFiltered):
        return Failure("content_filter", preview="content filter")
    if isinstance(exc, EmptyResponse):
        return Failure("empty", preview="empty response")
    if isinstance(exc, StreamFailure):
        return Failure(
            _BODY_TYPES.get(exc.error_type or "", "server"),
            error_type=exc.error_type,
            preview=_preview(exc.message or (exc.error_type or "")),
        )
    if isinstance(exc, TimeoutError) or isinstance(exc, _sdk_errors("APITimeoutError")):
        return Failure("timeout", preview="request timed out")
    if isinstance(exc, _sdk_errors("APIConnectionError")):
        return Failure("timeout", preview="connection failed")
    sdk_exc: Any = exc  # an SDK error: typed by the checks below, not statically
    if isinstance(exc, _sdk_errors("APIStatusError")):
        status: int = sdk_exc.status_code
        kind, message = _body_error(sdk_exc.body)
        reason: Reason = "unknown"
        if kind in _BODY_TYPES:
            reason = _BODY_TYPES[kind]
        elif status in _STATUS:
            reason = _STATUS[status]
        elif status >= 500:
            reason = "server"
        if (
            reason == "bad_request"
            and kind in (None, "invalid_request_error")
            and _OVERFLOW_TEXT.search(message)
        ):
            reason = "context_overflow"
        if reason == "rate_limit" and kind == "insufficient_quota":
            reason = "billing"
        return Failure(
            reason,
            status=status if status != 200 else None,
            error_type=kind,
            retry_after_s=retry_after(
                sdk_exc.response.headers if sdk_exc.response is not None else None
            ),
            preview=_preview(message or (kind or "")),
        )
    if isinstance(exc, _sdk_errors("APIError")):
        # An error object inside an SSE stream (no HTTP status): only its structured type counts.
        kind, message = _body_error(sdk_exc.body)
        return Failure(
            _BODY_TYPES.get(kind or "", "unknown"), error_type=kind, preview=_preview(message)
        )
    return Failure("unknown", preview=type(exc).__name__)


def _preview(text: str) -> str:
    # Error bodies can echo request content; keep it short. Keys are never in SDK messages.
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."


USER_MESSAGES: dict[Reason, str] = {
    "rate_limit": "⚠️ API rate limit reached. Please try again later.",
    "overloaded": "The AI service is temporarily overloaded. Please try again in a moment.",
    "server": "LLM request failed: provider returned an internal error.",
    "timeout": "LLM request timed out.",
    "auth": (
        "Authentication failed (the provider refused the credentials). If the failure persists,"
        " check or renew this provider's API key."
    ),
    "billing": "⚠️ The provider refused the request for billing reasons (credits or quota). Check the provider account.",
    "not_found": "The selected model was not found by the provider. Check the model id or choose a different model.",
    "context_overflow": (
        "Context overflow: prompt too large for the model. Try /reset (or /new) to start a fresh"
        " session, or use a larger-context model."
    ),
    "bad_request": "⚠️ The provider rejected the request. Please try again, or use /new to start a fresh session.",
    "content_filter": "⚠️ The provider's content filter stopped this answer.",
    "empty": "The model returned an empty response. Please try again.",
    "cooldown": "⚠️ API rate limit reached. Please try again later.",
    "unknown": (
        "⚠️ Something went wrong while processing your request. Please try again, or use /new to"
        " start a fresh session."
    ),
}


def user_message(failure: Failure) -> str:
    """The fixed, friendly text a user sees; never the raw provider error."""
    if failure.error_type == MISSING_CREDENTIALS and failure.preview:
        return failure.preview  # our own text: names the env var / config key, never a value
    if failure.reason == "auth" and failure.status:
        return (
            f"Authentication failed (provider returned HTTP {failure.status}). If the failure"
            " persists, check or renew this provider's API key."
        )
    return USER_MESSAGES[failure.reason]
