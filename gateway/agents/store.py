"""Per-agent session store (agents.md §4–5).

Layout under `<stateDir>/agents/<agentId>/sessions/`:

* `sessions.json` — `{ "<sessionKey>": {row} }`, the snapshot (the reference's format),
  rewritten atomically (temp + fsync + rename + dir fsync).
* `sessions.journal` — one JSON line per changed row since the snapshot
  (`{"k": key, "v": row}`, `"v": null` for a deleted row), appended and fsynced. A turn's
  disk work is one line whatever the number of sessions; once the journal outgrows the
  snapshot it is folded in (amortised O(1) per change). Each line is a whole row, so
  replaying a line twice is harmless and a torn last line (a crash mid-append) is skipped; the
  next append starts on a fresh line, so it is not glued to the torn one.
  Both files are written under a `filelock` so a CLI process and the gateway never interleave,
  and re-read when another writer changed them.
* `<sessionId>.jsonl` — the append-only transcript of each session (see `transcript.py`).

A corrupt `sessions.json` never stops the gateway: it is renamed to
`sessions.json.corrupt-<ts>` (kept for the operator), logged, and the store starts empty.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import json
import logging
import os
import shutil
import uuid
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import tzinfo
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock

from gateway.agents.freshness import ResetPolicy, is_expired
from gateway.agents.history import compacted_view
from gateway.agents.ids import normalize_agent_id
from gateway.agents.session_keys import parse_session_key
from gateway.agents.transcript import Transcript, fsync_dir, now_ms

log = logging.getLogger(__name__)

T = TypeVar("T")

SILENT_REPLY_TOKEN = "NO_REPLY"
HISTORY_TEXT_MAX_CHARS = 12_000
HISTORY_DETAILS_MAX_CHARS = 4_000
CHAT_HISTORY_DEFAULT_LIMIT = 200
CHAT_HISTORY_MAX_LIMIT = 1000
_LOCK_TIMEOUT_S = 10.0
_JOURNAL_MIN_LINES = 64  # fold the journal once it has this many lines and more than rows

# camelCase on disk / python attribute; order = order written.
_ROW_FIELDS: tuple[tuple[str, str], ...] = (
    ("sessionId", "session_id"),
    ("sessionStartedAt", "session_started_at"),
    ("lastInteractionAt", "last_interaction_at"),
    ("updatedAt", "updated_at"),
    ("chatType", "chat_type"),
    ("channel", "channel"),
    ("accountId", "account_id"),
    ("displayName", "display_name"),
    ("lastRoute", "last_route"),
    ("inputTokens", "input_tokens"),
    ("outputTokens", "output_tokens"),
    ("totalTokens", "total_tokens"),
    ("contextTokens", "context_tokens"),
    ("compactionCount", "compaction_count"),
    ("model", "model"),
    ("modelProvider", "model_provider"),
    ("messageCount", "message_count"),
    ("lastRunId", "last_run_id"),
    ("previousSessionId", "previous_session_id"),
)


_INT_FIELDS = frozenset(
    {
        "session_started_at",
        "last_interaction_at",
        "updated_at",
        "input_tokens",
        "output_tokens",
        "total_tokens",
        "context_tokens",
        "compaction_count",
        "message_count",
    }
)


def is_silent_reply(text: str | None) -> bool:
    """`NO_REPLY` (alone, surrounding whitespace ignored) means: say nothing."""
    return (text or "").strip() == SILENT_REPLY_TOKEN


def message_text(message: Mapping[str, Any]) -> str:
    """Plain text of a transcript message (string content or `text` blocks joined)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            block.get("text", "")
            for block in content
            if isinstance(block, dict) and block.get("type") == "text"
        )
    return ""


@dataclass
class SessionRow:
    """One session row (agents.md §4.1). Times are epoch milliseconds."""

    key: str
    session_id: str
    session_started_at: int
    updated_at: int
    last_interaction_at: int | None = None
    chat_type: str | None = None  # direct | group | channel
    channel: str | None = None
    account_id: str | None = None
    display_name: str | None = None
    last_route: dict[str, Any] | None = None  # reply target for background work
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    context_tokens: int | None = None
    compaction_count: int = 0
    model: str | None = None
    model_provider: str | None = None
    message_count: int = 0  # messages in the current history window
    last_run_id: str | None = None
    previous_session_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # unknown keys, preserved

    def copy(self) -> SessionRow:
        """Detached snapshot: callers never hold the store's live, mutable row."""
        return replace(
            self,
            last_route=dict(self.last_route) if self.last_route is not None else None,
            extra=copy.deepcopy(self.extra),
        )

    @property
    def agent_id(self) -> str:
        parsed = parse_session_key(self.key)
        return parsed.agent_id if parsed else "main"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.extra)
        for json_key, attr in _ROW_FIELDS:
            value = getattr(self, attr)
            if value is not None:
                data[json_key] = value
        return data

    @classmethod
    def from_json(cls, key: str, data: object) -> SessionRow | None:
        """None when the row is unusable (not an object, no string `sessionId`).

        Fields of the wrong type are dropped (hand-edited or foreign files), unknown keys
        are kept in `extra` and written back unchanged."""
        if not isinstance(data, dict) or not isinstance(data.get("sessionId"), str):
            return None
        values: dict[str, Any] = {}
        for json_key, attr in _ROW_FIELDS:
            value = data.get(json_key)
            if attr in _INT_FIELDS:
                value = _opt_int(value, None)
            elif attr == "last_route":
                value = value if isinstance(value, dict) else None
            elif not isinstance(value, str):
                value = None
            if value is not None:
                values[attr] = value
        now = now_ms()
        values.setdefault("session_started_at", values.get("updated_at", now))
        values.setdefault("updated_at", values["session_started_at"])
        known = {json_key for json_key, _ in _ROW_FIELDS}
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(key=key, extra=extra, **values)

    def to_wire(self) -> dict[str, Any]:
        """Protocol `sessions.list` row (`SessionRow` schema fields only)."""
        parsed = parse_session_key(self.key)
        if self.key == "global":
            kind = "global"
        elif parsed is None or parsed.kind == "other":
            kind = "unknown"
        elif parsed.kind in ("main", "direct"):
            kind = "direct"
        else:
            kind = "group"
        row: dict[str, Any] = {
            "key": self.key,
            "kind": kind,
            "sessionId": self.session_id,
            "agentId": self.agent_id,
            "updatedAt": self.updated_at,
            "createdAt": self.session_started_at,
            "isMain": bool(parsed and parsed.is_main),
            "messageCount": self.message_count,
        }
        optional = {
            "channel": self.channel,
            "chatType": self.chat_type
            if self.chat_type in ("direct", "group", "channel")
            else None,
            "accountId": self.account_id,
            "displayName": self.display_name,
            "lastInteractionAt": self.last_interaction_at,
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "totalTokens": self.total_tokens,
            "contextTokens": self.context_tokens,
            "compactionCount": self.compaction_count or None,
            "model": self.model,
            "modelProvider": self.model_provider,
            "lastRunId": self.last_run_id,
            "previousSessionId": self.previous_session_id,
        }
        row.update({k: v for k, v in optional.items() if v is not None and v != ""})
        if self.last_route:
            for wire_key, route_key in (
                ("lastChannel", "channel"),
                ("lastTo", "to"),
                ("lastAccountId", "accountId"),
            ):
                value = self.last_route.get(route_key)
                if isinstance(value, str) and value:
                    row[wire_key] = value
        return row


# --- listing / history pages ----------------------------------------------------------------


@dataclass(frozen=True)
class SessionListPage:
    rows: list[SessionRow]
    total_count: int
    offset: int
    limit: int | None

    @property
    def next_offset(self) -> int | None:
        end = self.offset + len(self.rows)
        return end if end < self.total_count else None

    def to_wire(
        self, *, path: str, defaults: Mapping[str, Any] | None = None, ts: int | None = None
    ) -> dict[str, Any]:
        """Protocol `sessions.list` result."""
        result: dict[str, Any] = {
            "ts": now_ms() if ts is None else ts,
            "path": path,
            "count": len(self.rows),
            "totalCount": self.total_count,
            "offset": self.offset,
            "nextOffset": self.next_offset,
            "hasMore": self.next_offset is not None,
            "defaults": dict(
                defaults or {"modelProvider": None, "model": None, "contextTokens": None}
            ),
            "sessions": [row.to_wire() for row in self.rows],
        }
        if self.limit is not None:
            result["limitApplied"] = self.limit
        return result


@dataclass(frozen=True)
class ChatHistoryPage:
    """A window of display messages, oldest first; `next_cursor` pages further back."""

    session_key: str
    session_id: str | None
    messages: list[dict[str, Any]]
    next_cursor: str | None

    def to_wire(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "sessionKey": self.session_key,
            "messages": self.messages,
            "hasMore": self.next_cursor is not None,
        }
        if self.session_id:
            result["sessionId"] = self.session_id
        if self.next_cursor:
            result["nextCursor"] = self.next_cursor
        return result


@dataclass(frozen=True)
class DeleteResult:
    key: str
    deleted: bool
    archived: list[str]

    def to_wire(self) -> dict[str, Any]:
        return {"ok": True, "key": self.key, "deleted": self.deleted, "archived": self.archived}


# --- one agent ---------------------------------------------------------------------------------


class AgentSessionStore:
    """Sessions of one agent. Synchronous; call from the event loop thread only."""

    def __init__(
        self,
        state_dir: Path,
        agent_id: str,
        *,
        cwd: str | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.agent_id = normalize_agent_id(agent_id)
        self.dir = Path(state_dir) / "agents" / self.agent_id / "sessions"
        self.index_path = self.dir / "sessions.json"
        self.journal_path = self.dir / "sessions.journal"
        self.cwd = cwd or os.getcwd()
        self._clock = clock
        self._lock = FileLock(str(self.dir / "sessions.json.lock"), timeout=_LOCK_TIMEOUT_S)
        self._rows: dict[str, SessionRow] = {}
        # (updatedAt, key) of every row, ascending: listings page through it newest first
        # without sorting (or copying) every row, so the Control UI's refresh of its sessions
        # page on each change costs the page, not the number of sessions.
        self._order: list[tuple[int, str]] = []
        # Each row's line in the snapshot, once serialized: a fold re-serializes only the rows
        # changed since, not all of them (~60 ms at 5,000 rows, on the event loop).
        self._lines: dict[str, str] = {}
        self._stamp: tuple[object, ...] | None = None
        self._journal_lines = 0
        self._loaded = False
        self._transcripts: dict[str, Transcript] = {}

    # -- index file ---------------------------------------------------------------------------

    def _file_stamp(self) -> tuple[object, ...] | None:
        stamps: list[tuple[int, int, int] | None] = []
        for path in (self.index_path, self.journal_path):
            try:
                st = path.stat()
                stamps.append((st.st_ino, st.st_mtime_ns, st.st_size))
            except FileNotFoundError:
                stamps.append(None)
        return None if stamps == [None, None] else tuple(stamps)

    def _refresh(self) -> None:
        stamp = self._file_stamp()
        if self._loaded and stamp == self._stamp:
            return
        self._rows = self._read_index() if stamp is not None else {}
        self._journal_lines = self._replay_journal(self._rows)
        self._order = sorted((row.updated_at, key) for key, row in self._rows.items())
        self._lines.clear()
        self._stamp = self._file_stamp()
        self._loaded = True

    def _replay_journal(self, rows: dict[str, SessionRow]) -> int:
        """Apply the journal's lines to `rows`; returns how many lines it holds."""
        try:
            raw = self.journal_path.read_bytes()
        except FileNotFoundError:
            return 0
        except OSError as exc:
            log.error(
                "session journal %s unreadable (%s); using the snapshot", self.journal_path, exc
            )
            return 0
        lines = raw.split(b"\n")
        count = 0
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            count += 1
            try:
                entry = json.loads(line)
                key = entry["k"]
                value = entry["v"]
            except (ValueError, KeyError, TypeError):
                if number < len(lines):  # not the last line: damage, not a torn append
                    log.error("session journal %s: skipped bad line %d", self.journal_path, number)
                continue
            if value is None:
                rows.pop(key, None)
                continue
            row = SessionRow.from_json(key, value)
            if row is not None:
                rows[key] = row
        return count

    def _read_index(self) -> dict[str, SessionRow]:
        try:
            raw = self.index_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            self._set_aside(f"unreadable ({exc})", move=True)
            return {}
        try:
            data = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            self._set_aside(f"invalid JSON ({exc})", move=True)
            return {}
        if not isinstance(data, dict):
            self._set_aside("top level is not an object", move=True)
            return {}
        rows: dict[str, SessionRow] = {}
        bad: list[str] = []
        for key, value in data.items():
            row = SessionRow.from_json(key, value)
            if row is None:
                bad.append(key)
            else:
                rows[key] = row
        if bad:
            self._set_aside(f"dropped {len(bad)} malformed row(s): {bad[:5]}", move=False)
        return rows

    def _set_aside(self, why: str, *, move: bool) -> None:
        target = self.index_path.with_name(f"sessions.json.corrupt-{self._clock()}")
        try:
            if move:
                os.replace(self.index_path, target)
            else:
                shutil.copy2(self.index_path, target)
        except OSError as exc:
            log.error("session index %s: %s; could not keep a copy: %s", self.index_path, why, exc)
            return
        log.error("session index %s: %s; original kept as %s", self.index_path, why, target)

    def _write_index(self, sync: bool = True) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        # One session per line: still readable by hand, and about 3x cheaper to write than
        # indented JSON.
        lines = [self._line(key, row) for key, row in self._rows.items()]
        payload = ("{\n" + ",\n".join(lines) + "\n}\n" if lines else "{}\n").encode("utf-8")
        # Writers hold the lock while a temp file exists, so one found now was left by a
        # writer killed mid-fold: remove it (a fold is rare; the scan is not per turn).
        for stale in self.dir.glob(".sessions.json.*.tmp"):
            stale.unlink(missing_ok=True)
        tmp = self.dir / f".sessions.json.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view) :]
            if sync:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)  # a full disk must not leave temp files behind
            raise
        os.close(fd)
        try:
            os.replace(tmp, self.index_path)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        # The snapshot now holds every journal line: start the journal afresh. A crash
        # before this unlink replays lines the snapshot already has, which changes nothing.
        self.journal_path.unlink(missing_ok=True)
        self._journal_lines = 0
        if sync:
            fsync_dir(self.dir)
        self._stamp = self._file_stamp()

    def _line(self, key: str, row: SessionRow) -> str:
        """`"<key>":{row}`, the row's line in the snapshot (cached until the row changes)."""
        line = self._lines.get(key)
        if line is None:
            line = (
                f"{json.dumps(key, ensure_ascii=False)}:"
                f"{json.dumps(row.to_json(), ensure_ascii=False, separators=(',', ':'))}"
            )
            self._lines[key] = line
        return line

    def _append_journal(self, key: str, row: SessionRow | None, sync: bool) -> None:
        key_json = json.dumps(key, ensure_ascii=False)
        # The row serialized once, for this line and for the next fold alike.
        value = self._line(key, row)[len(key_json) + 1 :] if row is not None else "null"
        line = f'{{"k":{key_json},"v":{value}}}\n'.encode()
        created = not self.journal_path.exists()
        fd = os.open(self.journal_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                # A torn tail (a writer killed mid-line): start on a fresh line, or this
                # line would be glued to it and skipped as damage on replay (a lost change).
                line = b"\n" + line
            # One write of a whole line with O_APPEND: a crash leaves at most a torn tail.
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        if created and sync:
            fsync_dir(self.dir)
        self._journal_lines += 1
        self._stamp = self._file_stamp()

    def compact(self) -> None:
        """Fold the journal into the snapshot (also done on its own as the journal grows)."""
        if not self.journal_path.exists():
            return
        with self._lock:
            self._refresh()
            self._write_index()

    def _read(self) -> dict[str, SessionRow]:
        self._refresh()
        return self._rows

    def _rerank(self, key: str, before: tuple[int, str] | None) -> None:
        """Move `key` in `_order` after a change of its row (`before`: its old place)."""
        row = self._rows.get(key)
        after = (row.updated_at, key) if row is not None else None
        if after == before:
            return
        if before is not None:
            at = bisect_left(self._order, before)
            if at < len(self._order) and self._order[at] == before:
                del self._order[at]
        if after is not None:
            insort(self._order, after)

    def _mutate(
        self, key: str, change: Callable[[dict[str, SessionRow]], T], sync: bool = True
    ) -> T:
        """Read-modify-write of the row `key` under the cross-process lock.

        `change` may only touch that row (it returns copies). The first write of an index
        makes the snapshot; later ones append one journal line, and the journal is folded
        into the snapshot once it holds more lines than there are rows.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._refresh()
            current = self._rows.get(key)
            before = (current.updated_at, key) if current is not None else None
            try:
                result = change(self._rows)
            finally:  # even a failed change may have touched the row
                self._lines.pop(key, None)
                self._rerank(key, before)
            if not self.index_path.exists():
                self._write_index(sync)
            elif self._journal_lines + 1 >= max(_JOURNAL_MIN_LINES, len(self._rows)):
                self._write_index(sync)
            else:
                self._append_journal(key, self._rows.get(key), sync)
        return result

    # -- transcripts -----------------------------------------------------------------------------

    def transcript_path(self, session_id: str) -> Path:
        # sessionIds are our own UUIDs, but rows on disk are input: never leave the dir.
        safe = "".join(ch for ch in session_id if ch.isalnum() or ch in "-_") or "invalid"
        return self.dir / f"{safe}.jsonl"

    def transcript(self, session_id: str) -> Transcript:
        cached = self._transcripts.get(session_id)
        if cached is None:
            cached = Transcript(self.transcript_path(session_id))
            self._transcripts[session_id] = cached
        return cached

    def _start_transcript(self, session_id: str) -> None:
        self._transcripts[session_id] = Transcript.create(
            self.transcript_path(session_id), session_id, self.cwd
        )

    def _writable_transcript(self, session_id: str) -> Transcript:
        """The transcript to append to; recreated with a header if the file went missing."""
        transcript = self.transcript(session_id)
        if not transcript.exists():
            log.warning("transcript %s missing; starting it again", transcript.path)
            self._start_transcript(session_id)
            transcript = self.transcript(session_id)
        return transcript

    # -- rows ------------------------------------------------------------------------------------

    def get(self, key: str) -> SessionRow | None:
        row = self._read().get(key)
        return row.copy() if row is not None else None

    def rows(self) -> list[SessionRow]:
        return [row.copy() for row in self._read().values()]

    def count(self) -> int:
        return len(self._read())

    def newest_first(self) -> Iterator[SessionRow]:
        """The live rows by `updatedAt` (then key), newest first, without copying them: read
        only, and only until the store is next changed."""
        rows = self._read()
        return (rows[key] for _, key in reversed(self._order))

    def ensure(
        self,
        key: str,
        *,
        channel: str | None = None,
        chat_type: str | None = None,
        account_id: str | None = None,
        display_name: str | None = None,
    ) -> SessionRow:
        """Get the row, creating it (and its transcript) on first use; fills blank metadata."""
        existing = self.get(key)
        if existing is not None and self._metadata_known(
            existing, channel, chat_type, account_id, display_name
        ):
            return existing

        def change(rows: dict[str, SessionRow]) -> SessionRow:
            row = rows.get(key)
            now = self._clock()
            if row is None:
                row = SessionRow(
                    key=key,
                    session_id=str(uuid.uuid4()),
                    session_started_at=now,
                    updated_at=now,
                )
                rows[key] = row
                self._start_transcript(row.session_id)
            row.channel = row.channel or channel
            row.chat_type = row.chat_type or chat_type
            row.account_id = row.account_id or account_id
            row.display_name = display_name or row.display_name
            row.updated_at = now
            return row.copy()

        return self._mutate(key, change)

    @staticmethod
    def _metadata_known(
        row: SessionRow,
        channel: str | None,
        chat_type: str | None,
        account_id: str | None,
        display_name: str | None,
    ) -> bool:
        return (
            (channel is None or row.channel is not None)
            and (chat_type is None or row.chat_type is not None)
            and (account_id is None or row.account_id is not None)
            and (display_name is None or row.display_name == display_name)
        )

    def record_inbound(
        self,
        key: str,
        *,
        last_route: Mapping[str, Any] | None = None,
        reset_policy: ResetPolicy | None = None,
        tz: tzinfo | None = None,
        channel: str | None = None,
        chat_type: str | None = None,
        account_id: str | None = None,
        display_name: str | None = None,
    ) -> tuple[SessionRow, bool]:
        """A real user/channel message arrived: apply daily/idle expiry, then bump
        `lastInteractionAt` (and `lastRoute` when given). Returns (row, auto_reset)."""
        self.ensure(
            key,
            channel=channel,
            chat_type=chat_type,
            account_id=account_id,
            display_name=display_name,
        )

        def change(rows: dict[str, SessionRow]) -> tuple[SessionRow, bool]:
            row = rows[key]
            now = self._clock()
            expired = reset_policy is not None and is_expired(
                reset_policy,
                session_started_at_ms=row.session_started_at,
                last_interaction_at_ms=row.last_interaction_at,
                now_ms=now,
                tz=tz,
            )
            if expired:
                self._rotate(row, now)
            row.last_interaction_at = now
            if last_route is not None:
                row.last_route = dict(last_route)
            row.updated_at = now
            return row.copy(), expired

        return self._mutate(key, change)

    def _rotate(self, row: SessionRow, now: int) -> None:
        # The old transcript is done with: let its parsed events leave the read cache now.
        self._transcripts.pop(row.session_id, None)
        row.previous_session_id = row.session_id
        row.session_id = str(uuid.uuid4())
        row.session_started_at = now
        row.message_count = 0
        row.input_tokens = row.output_tokens = row.total_tokens = row.context_tokens = None
        row.compaction_count = 0
        self._start_transcript(row.session_id)

    def new_session(self, key: str) -> SessionRow:
        """`/new`: fresh `sessionId` + transcript; the old transcript file is kept."""
        if self.get(key) is None:
            return self.ensure(key)  # nothing to rotate yet

        def change(rows: dict[str, SessionRow]) -> SessionRow:
            row = rows[key]
            now = self._clock()
            self._rotate(row, now)
            row.updated_at = now
            return row.copy()

        return self._mutate(key, change)

    def reset_in_place(self, key: str) -> SessionRow:
        """`/reset`: a `reset` event opens a new history window in the same `sessionId`."""
        row = self.ensure(key)
        self._writable_transcript(row.session_id).append("reset")

        def change(rows: dict[str, SessionRow]) -> SessionRow:
            current = rows[key]
            current.message_count = 0
            current.updated_at = self._clock()
            return current.copy()

        return self._mutate(key, change)

    def delete(self, key: str) -> DeleteResult:
        """Drop the row; its transcript is renamed `<id>.jsonl.deleted.<ts>`, not destroyed."""
        if key not in self._read():
            return DeleteResult(key=key, deleted=False, archived=[])

        def change(rows: dict[str, SessionRow]) -> SessionRow | None:
            return rows.pop(key, None)

        row = self._mutate(key, change)
        archived: list[str] = []
        if row is not None:
            path = self.transcript_path(row.session_id)
            target = path.with_name(f"{path.name}.deleted.{self._clock()}")
            try:
                os.replace(path, target)
                fsync_dir(self.dir)
                archived.append(str(target))
            except FileNotFoundError:
                pass
            self._transcripts.pop(row.session_id, None)
        return DeleteResult(key=key, deleted=row is not None, archived=archived)

    def append_messages(
        self,
        key: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        session_id: str | None = None,
        before: Iterable[Mapping[str, Any]] = (),
        run_id: str | None = None,
        usage: Mapping[str, Any] | None = None,
        model: str | None = None,
        provider: str | None = None,
        sync: bool = True,
        index: bool = True,
        earlier: int = 0,
    ) -> list[dict[str, Any]]:
        """Append `before` events then one `message` event per message (one fsync).

        `index=False` leaves the session row alone (a tool step mid-turn: the index is not
        rewritten per step); the turn's next indexed append passes those messages' count
        as `earlier` so `messageCount` stays exact.

        `sync=False` (the user message at the start of a turn) leaves durability to the
        turn's final append, keeping fsyncs off the path to the model.

        `session_id` pins the transcript a run started on: if the session was rotated
        meanwhile the old transcript still receives the turn, and the row is left alone.
        """
        row = self.ensure(key)
        target_id = session_id or row.session_id
        # The run id on each message event lets clients tie transcript lines to runs.
        tag = {"runId": run_id} if run_id else {}
        events = [dict(e) for e in before] + [
            {"type": "message", "message": dict(m), **tag} for m in messages
        ]
        written = self._writable_transcript(target_id).append_many(events, sync=sync)
        if not index:
            return written

        def change(rows: dict[str, SessionRow]) -> None:
            current = rows.get(key)
            if current is None or current.session_id != target_id:
                return
            current.message_count += len(messages) + earlier
            current.updated_at = self._clock()
            if run_id:
                current.last_run_id = run_id
            if model:
                current.model = model
            if provider:
                current.model_provider = provider
            if usage:
                current.input_tokens = _opt_int(usage.get("input"), current.input_tokens)
                current.output_tokens = _opt_int(usage.get("output"), current.output_tokens)
                current.total_tokens = _opt_int(usage.get("totalTokens"), current.total_tokens)

        self._mutate(key, change, sync)
        return written

    def update_row(
        self, key: str, change: Callable[[SessionRow], None], *, sync: bool = True
    ) -> None:
        """Apply `change` to the live row (when it exists) and save; used by compaction.

        `sync=False` for facts a crash may lose (the context counters of a turn): the line is
        written at once and made durable by the next synced write of the index."""

        def apply(rows: dict[str, SessionRow]) -> None:
            row = rows.get(key)
            if row is not None:
                change(row)

        self._mutate(key, apply, sync)

    # -- reading history ------------------------------------------------------------------------

    def window_events(self, key: str) -> tuple[SessionRow | None, list[dict[str, Any]]]:
        """Events of the current transcript after the last `reset` event."""
        row = self.get(key)
        if row is None:
            return None, []
        events = self.transcript(row.session_id).events()
        for index in range(len(events) - 1, -1, -1):
            if events[index].get("type") == "reset":
                events = events[index + 1 :]
                break
        return row, events

    def model_history(
        self,
        key: str,
        *,
        dm_history_limit: int | None = None,
        max_user_turns: int | None = None,
    ) -> list[dict[str, Any]]:
        """Transcript messages fed to the model (agents.md §5), oldest first.

        `dm_history_limit` (user turns) applies only to channel-scoped DM sessions, never to
        the shared `main` session; `max_user_turns` is the simple global cap for all sessions.
        Failed/aborted-empty assistant entries are left out of the model context.
        """
        _, events = self.window_events(key)
        pinned, events = compacted_view(events)  # compaction summary, pinned ahead of the window
        messages = [
            e["message"]
            for e in events
            if e.get("type") == "message" and _is_context_message(e.get("message"))
        ]
        parsed = parse_session_key(key)
        limits = [max_user_turns]
        if parsed is not None and parsed.is_channel_scoped_dm:
            limits.append(dm_history_limit)
        active = [limit for limit in limits if limit is not None]
        if active:
            messages = _last_user_turns(messages, min(active))
        return pinned + messages

    def chat_history(
        self, key: str, *, limit: int | None = None, cursor: str | None = None
    ) -> ChatHistoryPage:
        """Display messages for `chat.history`: newest `limit` before `cursor`, oldest first.

        The cursor is an opaque position in the current window (stable: append-only file).
        """
        row, events = self.window_events(key)
        display: list[dict[str, Any]] = []
        for event in events:
            message = event.get("message") if event.get("type") == "message" else None
            shown = _display_message(message) if isinstance(message, dict) else None
            if shown is not None:
                display.append(shown)
        size = max(1, min(limit or CHAT_HISTORY_DEFAULT_LIMIT, CHAT_HISTORY_MAX_LIMIT))
        end = len(display)
        if cursor:
            try:
                end = max(0, min(int(cursor), len(display)))
            except ValueError:
                end = len(display)
        start = max(0, end - size)
        return ChatHistoryPage(
            session_key=key,
            session_id=row.session_id if row else None,
            messages=display[start:end],
            next_cursor=str(start) if start > 0 else None,
        )


def _opt_int(value: object, default: int | None) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return int(value)


def _is_context_message(message: object) -> bool:
    if not isinstance(message, dict):
        return False
    role = message.get("role")
    if role == "toolResult":
        return True
    if role not in ("user", "assistant"):
        return False
    if role == "assistant":
        if message.get("stopReason") == "error":
            return False
        if not message_text(message).strip() and not _has_tool_call(message):
            return False
    return True


def _has_tool_call(message: Mapping[str, Any]) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "toolCall" for b in content
    )


def _last_user_turns(messages: list[dict[str, Any]], turns: int) -> list[dict[str, Any]]:
    if turns <= 0:
        return []
    seen = 0
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].get("role") == "user":
            seen += 1
            if seen == turns:
                return messages[index:]
    return messages


def _display_message(message: dict[str, Any]) -> dict[str, Any] | None:
    """Projection for clients: no usage/cost, long text capped, silent replies hidden."""
    if message.get("role") == "assistant" and is_silent_reply(message_text(message)):
        return None
    out = {k: v for k, v in message.items() if k not in ("usage", "cost", "details")}
    details = message.get("details")
    if message.get("role") == "toolResult" and isinstance(details, dict):
        # Small details ride along for UIs; large ones (diffs, whole outputs) stay on disk.
        if len(json.dumps(details, ensure_ascii=False, default=str)) <= HISTORY_DETAILS_MAX_CHARS:
            out["details"] = details
    content = out.get("content")
    if isinstance(content, str):
        out["content"] = _cap(content)
    elif isinstance(content, list):
        out["content"] = [
            {**block, "text": _cap(block["text"])}
            if isinstance(block, dict) and isinstance(block.get("text"), str)
            else block
            for block in content
        ]
    return out


def _cap(text: str) -> str:
    if len(text) <= HISTORY_TEXT_MAX_CHARS:
        return text
    return text[:HISTORY_TEXT_MAX_CHARS] + "\n...(truncated)..."


# --- all agents ----------------------------------------------------------------------------------


class SessionStore:
    """Facade over the per-agent stores; routes by the `agent:<id>:` prefix of each key."""

    def __init__(
        self,
        state_dir: Path,
        *,
        cwd_for: Callable[[str], str] | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.state_dir = Path(state_dir)
        self._cwd_for = cwd_for
        self._clock = clock
        self._agents: dict[str, AgentSessionStore] = {}

    def for_agent(self, agent_id: str) -> AgentSessionStore:
        agent = normalize_agent_id(agent_id)
        store = self._agents.get(agent)
        if store is None:
            cwd = self._cwd_for(agent) if self._cwd_for else None
            store = AgentSessionStore(self.state_dir, agent, cwd=cwd, clock=self._clock)
            self._agents[agent] = store
        return store

    def for_key(self, key: str) -> AgentSessionStore:
        parsed = parse_session_key(key)
        return self.for_agent(parsed.agent_id if parsed else "main")

    def compact(self) -> None:
        """Fold every agent's journal into its snapshot (at shutdown, so `sessions.json`
        alone is current for other tools reading the state directory)."""
        for store in self._agents.values():
            try:
                store.compact()
            except OSError as exc:
                log.warning("could not compact the session index of %s: %s", store.agent_id, exc)

    def known_agent_ids(self) -> list[str]:
        """Agents with a session dir on disk plus those opened in this process."""
        found = set(self._agents)
        root = self.state_dir / "agents"
        if root.is_dir():
            found.update(p.name for p in root.iterdir() if (p / "sessions").is_dir())
        return sorted(found)

    def list_sessions(
        self,
        *,
        agent_id: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        search: str | None = None,
        active_minutes: int | None = None,
    ) -> SessionListPage:
        """Rows sorted by `updatedAt` (newest first), filtered and paginated.

        Unfiltered, the work is the page's (each agent's rows are kept in order): clients
        list again on every `sessions.changed`, so this must not grow with the sessions."""
        agents = [normalize_agent_id(agent_id)] if agent_id else self.known_agent_ids()
        stores = [self.for_agent(agent) for agent in agents]
        ordered: Iterator[SessionRow] = heapq.merge(
            *(store.newest_first() for store in stores),
            key=lambda r: (r.updated_at, r.key),
            reverse=True,
        )
        start = max(0, offset)
        end = start + limit if limit else None
        if not (search and search.strip()) and not active_minutes:
            page = list(itertools.islice(ordered, start, end))
            total = sum(store.count() for store in stores)
        else:
            if active_minutes:
                cutoff = self._clock() - active_minutes * 60_000
                ordered = itertools.takewhile(lambda r: r.updated_at >= cutoff, ordered)
            if search and search.strip():
                needle = search.strip().lower()
                ordered = (
                    r
                    for r in ordered
                    if needle in r.key.lower()
                    or needle in (r.display_name or "").lower()
                    or needle in (r.channel or "").lower()
                )
            matched = list(ordered)
            page, total = matched[start:end], len(matched)
        return SessionListPage(
            rows=[row.copy() for row in page], total_count=total, offset=start, limit=limit
        )

    # Thin key-routed wrappers used by the RPC layer and the runner.

    def get(self, key: str) -> SessionRow | None:
        return self.for_key(key).get(key)

    def ensure(self, key: str, **metadata: str | None) -> SessionRow:
        return self.for_key(key).ensure(key, **metadata)

    def record_inbound(
        self,
        key: str,
        *,
        last_route: Mapping[str, Any] | None = None,
        reset_policy: ResetPolicy | None = None,
        tz: tzinfo | None = None,
        **metadata: str | None,
    ) -> tuple[SessionRow, bool]:
        """See `AgentSessionStore.record_inbound`: expiry check + `lastInteractionAt`."""
        return self.for_key(key).record_inbound(
            key, last_route=last_route, reset_policy=reset_policy, tz=tz, **metadata
        )

    def reset(self, key: str, reason: str = "new") -> SessionRow:
        """`sessions.reset` / `/new` (reason `new`) or `/reset` (reason `reset`)."""
        store = self.for_key(key)
        return store.reset_in_place(key) if reason == "reset" else store.new_session(key)

    def delete(self, key: str) -> DeleteResult:
        return self.for_key(key).delete(key)

    def chat_history(
        self, key: str, *, limit: int | None = None, cursor: str | None = None
    ) -> ChatHistoryPage:
        return self.for_key(key).chat_history(key, limit=limit, cursor=cursor)

    def model_history(
        self, key: str, *, dm_history_limit: int | None = None, max_user_turns: int | None = None
    ) -> list[dict[str, Any]]:
        return self.for_key(key).model_history(
            key, dm_history_limit=dm_history_limit, max_user_turns=max_user_turns
        )
