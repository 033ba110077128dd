"""Append-only JSONL transcript of one session (agents.md §4.3).

Line 1 is the header `{"type":"session","version":4,"id":<sessionId>,"timestamp","cwd"}`;
every later line is one event with `type`, `id`, `parentId` (previous event id, a chain)
and `timestamp`. Each append is one `write` followed by `fsync`.

Crash policy (transcripts are never fixed up in place): a crash mid-write can leave a torn
last line without its `\\n`. Readers skip it (logged, never raised); the next append first
writes a `\\n` so the new event starts on a fresh line and the file stays line-parseable.
The torn bytes stay in the file as evidence.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TRANSCRIPT_VERSION = 4
_FILE_MODE = 0o600


def now_ms() -> int:
    return int(time.time() * 1000)


def iso_timestamp(ms: int | None = None) -> str:
    """`2026-11-23T23:12:08.839Z` (UTC, millisecond precision) like the reference."""
    when = datetime.fromtimestamp((now_ms() if ms is None else ms) / 1000, tz=UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def fsync_dir(path: Path) -> None:
    """Persist a directory entry (new or renamed file) across power loss."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclass
class ReadResult:
    """Parsed transcript: header (if readable), events, and what was skipped."""

    header: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    skipped_lines: int = 0
    torn_tail: bool = False


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class Transcript:
    """One `<sessionId>.jsonl` file. Not thread-safe; one writer per file (the run lane)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._last_id: str | None = None
        self._last_id_known = False

    # -- creation -------------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, session_id: str, cwd: str) -> Transcript:
        """Create the file with its header; an existing file is left untouched."""
        transcript = cls(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = {
            "type": "session",
            "version": TRANSCRIPT_VERSION,
            "id": session_id,
            "timestamp": iso_timestamp(),
            "cwd": cwd,
        }
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, _FILE_MODE)
        except FileExistsError:
            return transcript
        try:
            _write_all(fd, _encode(header))
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                path.unlink()  # never leave a header-less file that later appends would reuse
            raise
        os.close(fd)
        fsync_dir(path.parent)
        transcript._last_id, transcript._last_id_known = None, True
        return transcript

    def exists(self) -> bool:
        return self.path.is_file()

    # -- reading --------------------------------------------------------------------------

    def read(self) -> ReadResult:
        """Parse every line; garbage and torn lines are skipped and logged, never raised."""
        result = ReadResult()
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return result
        except OSError as exc:
            log.error("transcript %s unreadable: %s", self.path, exc)
            return result
        lines = data.split(b"\n")
        complete = data.endswith(b"\n") or not data
        last_index = len(lines) - 1
        for index, raw in enumerate(lines):
            if not raw.strip():
                continue
            event = _decode(raw)
            if event is None:
                result.skipped_lines += 1
                if index == last_index and not complete:
                    result.torn_tail = True
                    log.warning(
                        "transcript %s: torn last line (%d bytes) skipped; "
                        "likely a crash mid-write",
                        self.path,
                        len(raw),
                    )
                else:
                    log.warning("transcript %s: unparseable line %d skipped", self.path, index + 1)
                continue
            if event.get("type") == "session" and result.header is None and not result.events:
                result.header = event
                continue
            result.events.append(event)
        self._last_id = _last_event_id(result.events)
        self._last_id_known = True
        return result

    def events(self) -> list[dict[str, Any]]:
        return self.read().events

    # -- appending ------------------------------------------------------------------------

    def append(self, event_type: str, **fields: Any) -> dict[str, Any]:
        """Append one event; fills `id`, `parentId`, `timestamp`. fsync'd before return."""
        return self.append_many([{"type": event_type, **fields}])[0]

    def append_message(self, message: Mapping[str, Any]) -> dict[str, Any]:
        return self.append("message", message=dict(message))

    def append_many(
        self, events: Iterable[Mapping[str, Any]], *, sync: bool = True
    ) -> list[dict[str, Any]]:
        """Append several events with one write + fsync (one turn = one durability point).

        `sync=False` skips the fsync for a write the turn's final append will make durable
        (the file is append-only, so that later fsync covers it).
        """
        if not self._last_id_known:
            self.read()
        stamped: list[dict[str, Any]] = []
        parent = self._last_id
        for event in events:
            full = {
                "type": event["type"],
                "id": str(uuid.uuid4()),
                "parentId": parent,
                "timestamp": iso_timestamp(),
            }
            full.update({k: v for k, v in event.items() if k not in full})
            stamped.append(full)
            parent = full["id"]
        if not stamped:
            return stamped
        payload = b"".join(_encode(event) for event in stamped)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, _FILE_MODE)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                # Torn tail from a crash: start on a fresh line instead of gluing onto it.
                payload = b"\n" + payload
            _write_all(fd, payload)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        self._last_id = parent
        return stamped


def _encode(event: Mapping[str, Any]) -> bytes:
    text = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    # U+2028/U+2029 are line breaks to some line readers (Python's splitlines): escape them.
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return (text + "\n").encode("utf-8")


def _decode(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        return None
    return value


def _last_event_id(events: list[dict[str, Any]]) -> str | None:
    for event in reversed(events):
        event_id = event.get("id")
        if isinstance(event_id, str):
            return event_id
    return None
