"""Usage and cost totals (context-and-cron.md B.1–B.4).

Transcripts are the source of truth: every assistant entry carries the usage (and cost) of
its model call(s), every compaction entry the usage of its summary calls. This module keeps
a rebuildable index at `<stateDir>/usage/index.json`: for each transcript file (current,
archived by `/new`, renamed on delete) the byte offset read so far and one compact record
per counted entry. Refreshing reads only the bytes appended since; a missing or corrupt
index is rebuilt from the transcripts. Aggregation (per day in any time zone, per model,
per session) is done on the records in memory.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from gateway.agents import pricing
from gateway.agents.history import iso_to_ms
from gateway.agents.store import AgentSessionStore
from gateway.config.models import OpenClawConfig

log = logging.getLogger("agent/usage")

INDEX_VERSION = 1
GATEWAY_PROVIDER = "openclaw"  # command replies: zero usage, never priced

# Record layout (a list, to keep the index small):
# [ts_ms, kind, provider, model, input, output, cacheRead, cacheWrite, cost | None, toolCalls]
# kind: user | assistant | error | compaction | toolResult; cost: [in, out, cr, cw, total].
Record = list[Any]


@dataclass
class Totals:
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    input_cost: float = 0.0
    output_cost: float = 0.0
    cache_read_cost: float = 0.0
    cache_write_cost: float = 0.0
    total_cost: float = 0.0
    missing_cost_entries: int = 0
    missing_cost_by_model: dict[str, int] = field(default_factory=dict)

    @property
    def total_tokens(self) -> int:
        return self.input + self.output + self.cache_read + self.cache_write

    def add(self, record: Record) -> None:
        self.input += int(record[4])
        self.output += int(record[5])
        self.cache_read += int(record[6])
        self.cache_write += int(record[7])
        cost = record[8]
        if cost is None:
            if record[4] or record[5] or record[6] or record[7]:
                self.missing_cost_entries += 1
                name = f"{record[2]}/{record[3]}"
                self.missing_cost_by_model[name] = self.missing_cost_by_model.get(name, 0) + 1
            return
        self.input_cost += cost[0]
        self.output_cost += cost[1]
        self.cache_read_cost += cost[2]
        self.cache_write_cost += cost[3]
        self.total_cost += cost[4]

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "input": self.input,
            "output": self.output,
            "cacheRead": self.cache_read,
            "cacheWrite": self.cache_write,
            "totalTokens": self.total_tokens,
            "totalCost": round(self.total_cost, 6),
            "inputCost": round(self.input_cost, 6),
            "outputCost": round(self.output_cost, 6),
            "cacheReadCost": round(self.cache_read_cost, 6),
            "cacheWriteCost": round(self.cache_write_cost, 6),
            "missingCostEntries": self.missing_cost_entries,
        }
        if self.missing_cost_by_model:
            out["missingCostByModel"] = dict(self.missing_cost_by_model)
        return out


def totals_of(records: Iterable[Record]) -> Totals:
    out = Totals()
    for record in records:
        if record[1] in ("assistant", "compaction"):
            out.add(record)
    return out


# --- reading transcripts ------------------------------------------------------------------------


def _int(value: object) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def usage_cost(
    config: OpenClawConfig, provider: str, model: str, usage: Mapping[str, Any]
) -> list[float] | None:
    """The entry's recorded cost breakdown, else a price from the table, else None."""
    recorded = usage.get("cost")
    if isinstance(recorded, Mapping) and all(
        isinstance(recorded.get(k), int | float) for k in ("input", "output", "total")
    ):
        return [
            float(recorded.get("input") or 0),
            float(recorded.get("output") or 0),
            float(recorded.get("cacheRead") or 0),
            float(recorded.get("cacheWrite") or 0),
            float(recorded["total"]),
        ]
    if provider == GATEWAY_PROVIDER:
        return [0.0] * 5
    counts = pricing.Counts(
        _int(usage.get("input")),
        _int(usage.get("output")),
        _int(usage.get("cacheRead")),
        _int(usage.get("cacheWrite")),
    )
    priced = pricing.cost(config, provider, model, counts)
    if priced is None:
        return None
    return [
        priced["input"],
        priced["output"],
        priced["cacheRead"],
        priced["cacheWrite"],
        priced["total"],
    ]


def record_of(event: Mapping[str, Any], config: OpenClawConfig) -> Record | None:
    """One index record for a transcript event, or None when it does not count."""
    kind = event.get("type")
    ts = iso_to_ms(event.get("timestamp"))
    if kind == "compaction":
        usage = event.get("usage")
        if not isinstance(usage, Mapping):
            return None
        provider, model = str(event.get("provider") or ""), str(event.get("model") or "")
        return _usage_record(ts, "compaction", provider, model, usage, config, 0)
    if kind != "message":
        return None
    message = event.get("message")
    if not isinstance(message, Mapping):
        return None
    role = message.get("role")
    stamp = message.get("timestamp")
    ts = _int(stamp) or ts
    if role == "user":
        return [ts, "user", "", "", 0, 0, 0, 0, [0.0] * 5, 0]
    if role == "toolResult":
        return [ts, "toolResult", "", "", 0, 0, 0, 0, [0.0] * 5, 0]
    if role != "assistant":
        return None
    provider, model = str(message.get("provider") or ""), str(message.get("model") or "")
    content = message.get("content")
    calls = sum(
        1
        for b in (content if isinstance(content, list) else [])
        if isinstance(b, Mapping) and b.get("type") in ("toolCall", "tool_use")
    )
    usage = message.get("usage")
    kind_name = "error" if message.get("stopReason") == "error" else "assistant"
    if not isinstance(usage, Mapping):
        return [ts, kind_name, provider, model, 0, 0, 0, 0, [0.0] * 5, calls]
    return _usage_record(ts, kind_name, provider, model, usage, config, calls)


def _usage_record(
    ts: int,
    kind: str,
    provider: str,
    model: str,
    usage: Mapping[str, Any],
    config: OpenClawConfig,
    calls: int,
) -> Record:
    counts = [_int(usage.get(k)) for k in ("input", "output", "cacheRead", "cacheWrite")]
    cost = usage_cost(config, provider, model, usage) if any(counts) else [0.0] * 5
    return [ts, kind, provider, model, *counts, cost, calls]


@dataclass
class FileEntry:
    agent_id: str
    session_id: str
    offset: int = 0
    inode: int = 0
    records: list[Record] = field(default_factory=list)


@dataclass(frozen=True)
class CacheStatus:
    status: str
    cached_files: int
    pending_files: int
    refreshed_at: int

    def to_wire(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "cachedFiles": self.cached_files,
            "pendingFiles": self.pending_files,
            "staleFiles": 0,
            "refreshedAt": self.refreshed_at,
        }


class UsageIndex:
    """The per-file record cache; `refresh()` before reading. One per gateway process."""

    def __init__(self, state_dir: Path, config: Callable[[], OpenClawConfig]) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / "usage" / "index.json"
        self._config = config
        self.files: dict[str, FileEntry] = {}
        self.keys: dict[str, str] = {}  # sessionId -> session key (kept after /new)
        self.refreshed_at = 0
        self._loaded = False

    # -- persistence ---------------------------------------------------------------------------

    def _load(self) -> None:
        self._loaded = True
        if not self.path.exists():
            return
        try:
            raw = json.loads(self.path.read_text())
            if raw.get("version") != INDEX_VERSION:
                raise ValueError(f"version {raw.get('version')!r}")
            files = {
                name: FileEntry(
                    agent_id=str(v["agentId"]),
                    session_id=str(v["sessionId"]),
                    offset=int(v["offset"]),
                    inode=int(v.get("inode", 0)),
                    records=[list(r) for r in v["records"] if isinstance(r, list) and len(r) == 10],
                )
                for name, v in raw["files"].items()
            }
            keys = {str(k): str(v) for k, v in raw.get("keys", {}).items()}
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning(
                "usage index %s unreadable (%s); rebuilding from transcripts", self.path, exc
            )
            return
        self.files, self.keys = files, keys

    def _save(self) -> None:
        data = {
            "version": INDEX_VERSION,
            "keys": self.keys,
            "files": {
                name: {
                    "agentId": f.agent_id,
                    "sessionId": f.session_id,
                    "offset": f.offset,
                    "inode": f.inode,
                    "records": f.records,
                }
                for name, f in self.files.items()
            },
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, separators=(",", ":")))
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("could not save the usage index: %s", exc)

    # -- refresh -------------------------------------------------------------------------------

    def refresh(self) -> CacheStatus:
        """Read what transcripts gained since the last refresh; rebuild what changed shape."""
        if not self._loaded:
            self._load()
        config = self._config()
        root = self.state_dir / "agents"
        seen: set[str] = set()
        changed = False
        for sessions in sorted(root.glob("*/sessions")) if root.is_dir() else []:
            agent_id = sessions.parent.name
            self._learn_keys(agent_id)
            for path in sessions.iterdir():
                if ".jsonl" not in path.name or path.name.endswith(".tmp"):
                    continue
                name = f"{agent_id}/{path.name}"
                seen.add(name)
                changed |= self._refresh_file(name, agent_id, path, config)
        for gone in set(self.files) - seen:
            del self.files[gone]  # a purged file: its totals go with it
            changed = True
        self.refreshed_at = int(time.time() * 1000)
        if changed:
            self._save()
        return CacheStatus("fresh", len(self.files), 0, self.refreshed_at)

    def _learn_keys(self, agent_id: str) -> None:
        # Through the session store: it reads the snapshot and its journal alike.
        for row in AgentSessionStore(self.state_dir, agent_id).rows():
            for sid in (row.session_id, row.previous_session_id):
                if sid and self.keys.get(sid) != row.key:
                    self.keys.setdefault(sid, row.key)

    def _refresh_file(self, name: str, agent_id: str, path: Path, config: OpenClawConfig) -> bool:
        try:
            st = path.stat()
        except OSError:
            return False
        entry = self.files.get(name)
        session_id = path.name.split(".jsonl")[0]
        if entry is None or entry.inode != st.st_ino or st.st_size < entry.offset:
            entry = FileEntry(agent_id, session_id, 0, st.st_ino)
            self.files[name] = entry
        if st.st_size == entry.offset:
            return False
        try:
            with path.open("rb") as fh:
                fh.seek(entry.offset)
                data = fh.read(st.st_size - entry.offset)
        except OSError as exc:
            log.warning("usage: cannot read %s: %s", path, exc)
            return False
        end = data.rfind(b"\n")
        if end < 0:
            return False  # only a partial line so far
        for raw in data[: end + 1].split(b"\n"):
            if not raw.strip():
                continue
            try:
                event = json.loads(raw)
            except ValueError:
                continue  # torn or foreign line: the transcript reader skips it too
            if isinstance(event, dict):
                record = record_of(event, config)
                if record is not None:
                    entry.records.append(record)
        entry.offset += end + 1
        return True

    # -- queries -------------------------------------------------------------------------------

    def records(
        self,
        *,
        agent_id: str | None = None,
        session_ids: Sequence[str] | None = None,
    ) -> list[tuple[FileEntry, Record]]:
        wanted = set(session_ids) if session_ids is not None else None
        out: list[tuple[FileEntry, Record]] = []
        for entry in self.files.values():
            if agent_id is not None and entry.agent_id != agent_id:
                continue
            if wanted is not None and entry.session_id not in wanted:
                continue
            out.extend((entry, r) for r in entry.records)
        return out

    def session_ids_for_key(self, key: str) -> list[str]:
        """Every sessionId a session key has had (survives /new)."""
        return [sid for sid, k in self.keys.items() if k == key]


# --- dates --------------------------------------------------------------------------------------


def day_of(ts_ms: int, tz: tzinfo) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=tz).date().isoformat()


def date_range(start: date, end: date) -> list[str]:
    days = (end - start).days
    return [(start + timedelta(days=i)).isoformat() for i in range(days + 1)]


def daily_totals(
    records: Iterable[Record], days: Sequence[str], tz: tzinfo
) -> list[dict[str, Any]]:
    buckets = {d: Totals() for d in days}
    for record in records:
        if record[1] not in ("assistant", "compaction"):
            continue
        bucket = buckets.get(day_of(record[0], tz))
        if bucket is not None:
            bucket.add(record)
    return [{"date": d, **buckets[d].to_wire()} for d in days]


def by_model(records: Iterable[Record]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], tuple[int, Totals]] = {}
    for record in records:
        if record[1] not in ("assistant", "compaction") or not (record[2] or record[3]):
            continue
        key = (record[2], record[3])
        count, totals = groups.get(key, (0, Totals()))
        totals.add(record)
        groups[key] = (count + 1, totals)
    ordered = sorted(groups.items(), key=lambda kv: (-kv[1][1].total_cost, -kv[1][1].total_tokens))
    return [
        {"provider": p, "model": m, "count": c, "totals": t.to_wire()} for (p, m), (c, t) in ordered
    ]


def message_counts(records: Iterable[Record]) -> dict[str, int]:
    counts = {"total": 0, "user": 0, "assistant": 0, "toolCalls": 0, "toolResults": 0, "errors": 0}
    for record in records:
        kind = record[1]
        if kind == "compaction":
            continue
        counts["total"] += 1
        if kind == "user":
            counts["user"] += 1
        elif kind == "assistant":
            counts["assistant"] += 1
        elif kind == "toolResult":
            counts["toolResults"] += 1
        elif kind == "error":
            counts["errors"] += 1
        counts["toolCalls"] += int(record[9] or 0)
    return counts


def utc() -> tzinfo:
    return UTC
