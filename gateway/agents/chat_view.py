"""Transcript messages as the official clients display them (official-clients spec §2.1).

Each message carries `__openclaw: {id, seq, runId?}` — the transcript entry id, its 1-based
position in the session's current window, and the run that wrote it — and a user message
sent through `chat.send`/`agent` carries `idempotencyKey: "<runId>:user"`. Without these the
official UI draws a streamed answer twice and folds equal answers together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.agents.store import (
    CHAT_HISTORY_DEFAULT_LIMIT,
    CHAT_HISTORY_MAX_LIMIT,
    SessionStore,
    _display_message,
)


@dataclass(frozen=True)
class ChatPage:
    session_id: str | None
    messages: list[dict[str, Any]]  # oldest first
    total: int  # displayable messages in the window
    offset: int  # index of messages[0] among them


def _entries(
    store: SessionStore, key: str
) -> tuple[str | None, list[tuple[int, str, dict[str, Any]]]]:
    """(sessionId, [(seq, entryId, display message)]) of the current window, oldest first."""
    row, events = store.for_key(key).window_events(key)
    out: list[tuple[int, str, dict[str, Any]]] = []
    seq = 0
    for event in events:
        message = event.get("message") if event.get("type") == "message" else None
        if not isinstance(message, dict):
            continue
        seq += 1
        shown = _display_message(message)
        if shown is None:
            continue
        entry_id = str(event.get("id") or f"{key}:{seq}")
        marker: dict[str, Any] = {"id": entry_id, "seq": seq}
        run_id = event.get("runId")
        if isinstance(run_id, str) and run_id:
            if shown.get("role") == "user":
                shown["idempotencyKey"] = f"{run_id}:user"
            else:
                marker["runId"] = run_id
        shown["__openclaw"] = marker
        out.append((seq, entry_id, shown))
    return (row.session_id if row else None), out


def chat_page(store: SessionStore, key: str, limit: int, offset: int | None = None) -> ChatPage:
    """The newest `limit` messages (or those ending `offset` back from the newest)."""
    session_id, entries = _entries(store, key)
    total = len(entries)
    end = total - (offset or 0)
    end = max(0, min(end, total))
    start = max(0, end - max(1, limit))
    return ChatPage(session_id, [m for _, _, m in entries[start:end]], total, start)


def history_page(
    store: SessionStore,
    key: str,
    *,
    limit: int | None = None,
    cursor: str | None = None,
    offset: int | None = None,
) -> dict[str, Any]:
    """`chat.history`: newest `limit` before `cursor` (an index, as the store pages) or
    `offset` messages back from the newest (the official UI's `nextOffset`), oldest first."""
    session_id, entries = _entries(store, key)
    total = len(entries)
    size = max(1, min(limit or CHAT_HISTORY_DEFAULT_LIMIT, CHAT_HISTORY_MAX_LIMIT))
    end = total
    if cursor:
        try:
            end = max(0, min(int(cursor), total))
        except ValueError:
            end = total
    elif offset:
        end = max(0, total - offset)
    start = max(0, end - size)
    result: dict[str, Any] = {
        "sessionKey": key,
        "messages": [m for _, _, m in entries[start:end]],
        "hasMore": start > 0,
        "totalMessages": total,
    }
    if session_id:
        result["sessionId"] = session_id
    if start > 0:
        result["nextCursor"] = str(start)
        result["nextOffset"] = total - start
    return result


def run_messages(
    store: SessionStore, key: str, run_id: str
) -> list[tuple[int, str, dict[str, Any]]]:
    """The window's messages written by `run_id`: (seq, entryId, message)."""
    _, entries = _entries(store, key)
    return [e for e in entries if _run_of(e[2]) == run_id]


def _run_of(message: dict[str, Any]) -> str | None:
    marker = message.get("__openclaw")
    if isinstance(marker, dict) and isinstance(marker.get("runId"), str):
        return str(marker["runId"])
    key = message.get("idempotencyKey")
    if isinstance(key, str) and key.endswith(":user"):
        return key[: -len(":user")]
    return None
