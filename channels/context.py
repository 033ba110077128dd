"""Inbound dedupe and the group pending-history buffer (channels.md §3.3–3.4)."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.config.models import OpenClawConfig

DEDUPE_TTL_S = 20 * 60
DEDUPE_MAX = 5000
HISTORY_DEFAULTS = {"discord": 20, "telegram": 50}
HISTORY_CEILING = 200
HISTORY_HEADER = "[Chat messages since your last reply - for context]"
CURRENT_HEADER = "[Current message - respond to this]"


class Dedupe:
    """Seen-message keys with a TTL and a size cap (oldest evicted first)."""

    def __init__(
        self,
        ttl_s: float = DEDUPE_TTL_S,
        max_entries: int = DEDUPE_MAX,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def seen(self, key: str) -> bool:
        """True if `key` was seen within the TTL; records it otherwise."""
        now = self._clock()
        while self._seen:
            oldest, at = next(iter(self._seen.items()))
            if now - at < self.ttl_s:
                break
            del self._seen[oldest]
        if key in self._seen:
            return True
        self._seen[key] = now
        while len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)
        return False


def history_limit(config: OpenClawConfig, channel: str) -> int:
    """channels.<ch>.historyLimit → messages.groupChat.historyLimit → channel default."""
    section = getattr(config.channels, channel, None)
    if section is not None and "history_limit" in section.model_fields_set:
        value = int(section.history_limit)
    elif "history_limit" in config.messages.group_chat.model_fields_set:
        value = config.messages.group_chat.history_limit
    else:
        value = HISTORY_DEFAULTS.get(channel, 50)
    return max(0, min(value, HISTORY_CEILING))


@dataclass(frozen=True)
class HistoryEntry:
    sender: str
    text: str
    message_id: str
    timestamp_ms: int = 0


class PendingHistory:
    """Per-conversation messages seen while not addressed, handed over on the next turn."""

    def __init__(self) -> None:
        self._rooms: dict[str, deque[HistoryEntry]] = {}

    def record(self, room: str, entry: HistoryEntry, limit: int) -> None:
        if limit <= 0:
            return
        buf = self._rooms.get(room)
        if buf is None or buf.maxlen != limit:
            buf = deque(buf or (), maxlen=limit)
            self._rooms[room] = buf
        buf.append(entry)

    def take(self, room: str) -> list[HistoryEntry]:
        """The pending window, cleared: messages are given to the agent once."""
        return list(self._rooms.pop(room, ()))

    def peek(self, room: str) -> list[HistoryEntry]:
        return list(self._rooms.get(room, ()))


def group_prompt(history: Sequence[HistoryEntry], sender: str, text: str) -> str:
    """The current group message, prefixed with its sender and the pending context."""
    current = f"{sender}: {text}"
    if not history:
        return current
    lines = [HISTORY_HEADER, *(f"{h.sender}: {h.text}" for h in history), "", CURRENT_HEADER]
    return "\n".join([*lines, current])
