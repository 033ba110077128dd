"""The protocol's error shape and the one exception type handlers raise."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

INVALID_REQUEST = "INVALID_REQUEST"
FORBIDDEN = "FORBIDDEN"
NOT_FOUND = "NOT_FOUND"
UNAVAILABLE = "UNAVAILABLE"
CONFLICT = "CONFLICT"
INTERNAL = "INTERNAL"


@dataclass
class RpcError(Exception):
    """Raised anywhere below a method handler; becomes `{ok:false, error:{...}}`."""

    code: str
    message: str
    details: dict[str, Any] | None = None
    retryable: bool | None = None
    retry_after_ms: int | None = None
    # Close the connection after answering, with this WebSocket close code.
    close_code: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def shape(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            out["details"] = self.details
        if self.retryable is not None:
            out["retryable"] = self.retryable
        if self.retry_after_ms is not None:
            out["retryAfterMs"] = self.retry_after_ms
        return out
