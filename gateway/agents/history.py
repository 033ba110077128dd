"""What the model sees of a transcript: the compaction boundary and the DM history window.

After a compaction (context-and-cron.md A.7) the model sees one user-role message wrapping
the summary, then the entries from `firstKeptEntryId` on. The summary is pinned ahead of
any history window (A.12: the reference dropped it, #97590). The full transcript stays on
disk; only this projection changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from gateway.agents.session_keys import parse_session_key
from gateway.config.models import OpenClawConfig

SUMMARY_PREFIX = (
    "The earlier part of this conversation was compacted into the summary below. "
    "Treat it as what was said before; continue from it."
)


def summary_message(summary: str, timestamp_ms: int) -> dict[str, Any]:
    """The user-role message that stands for everything before the cut point."""
    return {
        "role": "user",
        "content": f"{SUMMARY_PREFIX}\n\n<summary>\n{summary}\n</summary>",
        "timestamp": timestamp_ms,
        "compactionSummary": True,
    }


def iso_to_ms(value: object) -> int:
    if not isinstance(value, str):
        return 0
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return 0


def last_compaction(events: Sequence[Mapping[str, Any]]) -> int | None:
    """Index of the newest `compaction` event, or None."""
    for index in range(len(events) - 1, -1, -1):
        if events[index].get("type") == "compaction":
            return index
    return None


def compacted_view(
    events: Sequence[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(pinned summary messages, events the model still sees verbatim)."""
    index = last_compaction(events)
    if index is None:
        return [], list(events)
    entry = events[index]
    summary = entry.get("summary")
    pinned = []
    if isinstance(summary, str) and summary.strip():
        pinned.append(summary_message(summary, iso_to_ms(entry.get("timestamp"))))
    first_kept = entry.get("firstKeptEntryId")
    start = index + 1
    if isinstance(first_kept, str):
        for position in range(index - 1, -1, -1):
            if events[position].get("id") == first_kept:
                start = position
                break
    kept = [e for e in events[start:] if e.get("type") != "compaction"]
    return pinned, kept


def dm_history_limit(config: OpenClawConfig, session_key: str, channel: str | None) -> int | None:
    """User turns a DM session keeps (A.12): `dms["<peer>"].historyLimit` → `dmHistoryLimit`.

    Only DM sessions scoped to a peer; the shared `main` session never gets a window.
    """
    parsed = parse_session_key(session_key)
    if parsed is None or parsed.kind != "direct" or not parsed.peer_id:
        return None
    name = parsed.channel or channel
    section = getattr(config.channels, name, None) if name else None
    if section is None:
        return None
    per_dm = getattr(section, "dms", {}) or {}
    entry = per_dm.get(parsed.peer_id)
    if entry is None:
        # Peer ids in config are often numbers; keys are lower-cased strings.
        entry = next((v for k, v in per_dm.items() if str(k).lower() == parsed.peer_id), None)
    if entry is not None and entry.history_limit is not None:
        return int(entry.history_limit)
    limit = getattr(section, "dm_history_limit", None)
    return int(limit) if isinstance(limit, int) else None
