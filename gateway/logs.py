"""Console logging as `<ISO time> [subsystem] message`, secret scrubbing and a tail buffer."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime

LEVELS = {
    "silent": logging.CRITICAL + 10,
    "fatal": logging.CRITICAL,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": logging.DEBUG,
}
_MASK = "***"


class SecretScrubber(logging.Filter):
    """Replaces every registered secret in a record's final text, whatever logged it."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secret: str | None) -> None:
        # Very short values would mask ordinary words; real secrets are long.
        if secret and len(secret) >= 6:
            with self._lock:
                self._secrets.add(secret)

    def known(self) -> frozenset[str]:
        """Every registered secret (the exec tool scrubs them from child environments)."""
        with self._lock:
            return frozenset(self._secrets)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, _MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = self.scrub(message), None
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        return True


@dataclass(frozen=True)
class LogLine:
    cursor: int
    ts: float
    level: str
    subsystem: str
    message: str


class TailBuffer(logging.Handler):
    """The last N log lines in memory, for `logs.tail` (already scrubbed by the filter)."""

    def __init__(self, capacity: int = 2000) -> None:
        super().__init__()
        self.lines: deque[LogLine] = deque(maxlen=capacity)
        self._cursor = 0

    def emit(self, record: logging.LogRecord) -> None:
        self._cursor += 1
        self.lines.append(
            LogLine(
                cursor=self._cursor,
                ts=record.created,
                level=record.levelname.lower(),
                subsystem=_subsystem(record.name),
                message=record.getMessage(),
            )
        )

    def since(self, cursor: int, limit: int, min_level: int) -> list[LogLine]:
        out = [
            line
            for line in self.lines
            if line.cursor > cursor and logging.getLevelName(line.level.upper()) >= min_level
        ]
        return out[-limit:]


def _subsystem(name: str) -> str:
    # Loggers are named "gateway", "gateway.ws", "channels.discord"...: show the last part.
    if name.startswith("uvicorn"):
        return "http"
    return name.rsplit(".", 1)[-1]


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = (
            datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds")
        )
        text = f"{stamp} [{_subsystem(record.name)}] {record.getMessage()}"
        if record.exc_text:
            text += "\n" + record.exc_text
        return text


class _MaxLevel(logging.Filter):
    def __init__(self, below: int) -> None:
        super().__init__()
        self.below = below

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < self.below


scrubber = SecretScrubber()
tail = TailBuffer()
_configured = False


def setup(level: str = "info") -> None:
    """Route all logging to stdout (info and below) and stderr (warnings and errors)."""
    global _configured
    root = logging.getLogger()
    root.setLevel(LEVELS.get(level, logging.INFO))
    if _configured:
        return
    _configured = True
    formatter = ConsoleFormatter()
    out = logging.StreamHandler(sys.stdout)
    out.addFilter(_MaxLevel(logging.WARNING))
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.WARNING)
    for handler in (out, err, tail):
        handler.addFilter(scrubber)
        handler.setFormatter(formatter)
        root.addHandler(handler)
    # Library chatter stays out of the operator's log unless asked for.
    for noisy in (
        "uvicorn.error",
        "uvicorn.access",
        "httpx",
        "httpx2",
        "discord",
        "telegram",
        "websockets",
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def now_ms() -> int:
    return int(time.time() * 1000)
