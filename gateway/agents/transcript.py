"""Append-only JSONL transcript of one session (agents.md §4.3).

Line 1 is the header `{"type":"session","version":4,"id":<sessionId>,"timestamp","cwd"}`;
every later line is one event with `type`, `id`, `parentId` (previous event id, a chain)
and `timestamp`. Each append is one `write` followed by `fsync`.

Crash policy (transcripts are never fixed up in place): a crash mid-write can leave a torn
last line without its `\\n`. Readers skip it (logged, never raised); the next append first
writes a `\\n` so the new event starts on a fresh line and the file stays line-parseable.
The torn bytes stay in the file as evidence.

Reading is incremental (issue 22): a `Transcript` keeps the events it parsed and parses only
the lines appended since its last read; `ParsedCache` bounds how many transcripts keep them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
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


class TranscriptCacheError(RuntimeError):
    """Check mode: the parsed events kept in memory no longer match the file (a reader
    changed a shared event in place)."""


@dataclass
class _Parsed:
    """The complete lines of a file parsed so far (`offset` bytes, `lines` lines)."""

    header: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    offset: int = 0
    lines: int = 0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class ParsedCache:
    """Which transcripts keep their parsed events between reads (process-wide LRU).

    A gateway may hold thousands of sessions: only the `max_transcripts` most recently read
    keep theirs, within `max_bytes` of transcript file (the parsed events take about 2.6
    times the file on the heap, `bench/transcript.py`). A transcript larger than `max_bytes`
    is never kept: it is parsed in full on every read, as before this cache existed.

    Entries are weak: a `Transcript` nobody holds any more (a deleted session, a one-off
    reader's instance) frees its events at once instead of at eviction.
    """

    def __init__(self, max_transcripts: int, max_bytes: int) -> None:
        self.max_transcripts = max_transcripts
        self.max_bytes = max_bytes
        self._kept: OrderedDict[int, tuple[weakref.ref[Transcript], int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()  # the store is loop-only; this costs nothing there
        # Keys of transcripts that died, removed at the next call: the weakref callback can
        # run inside any allocation (a collection), even with the lock held.
        self._dead: list[int] = []

    def keep(self, transcript: Transcript, size: int) -> bool:
        """Record a use of `transcript` (now `size` file bytes); False: do not keep it."""
        evicted: list[Transcript] = []
        key = id(transcript)
        with self._lock:
            self._purge()
            found = self._kept.get(key)
            if found is not None and found[0]() is not transcript:
                self._remove(key)  # a dead transcript's id, reused
                found = None
            if size > self.max_bytes or self.max_transcripts <= 0:
                self._remove(key)
                return False
            ref = found[0] if found is not None else weakref.ref(transcript, self._died(key))
            self._bytes += size - (found[1] if found is not None else 0)
            self._kept[key] = (ref, size)
            self._kept.move_to_end(key)
            while len(self._kept) > self.max_transcripts or self._bytes > self.max_bytes:
                _, (victim_ref, victim_size) = self._kept.popitem(last=False)
                self._bytes -= victim_size
                victim = victim_ref()
                if victim is not None:
                    evicted.append(victim)
        for victim in evicted:
            victim._clear()
        return True

    def drop(self, transcript: Transcript) -> None:
        with self._lock:
            self._purge()
            self._remove(id(transcript))

    def stats(self) -> tuple[int, int]:
        """(transcripts kept, their file bytes)."""
        with self._lock:
            self._purge()
            return len(self._kept), self._bytes

    def _died(self, key: int) -> Callable[[weakref.ref[Transcript]], None]:
        def note(_ref: weakref.ref[Transcript]) -> None:
            self._dead.append(key)

        return note

    def _purge(self) -> None:
        # A dead key is removed before any later use of the same id() can be recorded, and
        # only while its entry still holds the dead reference.
        while self._dead:
            key = self._dead.pop()
            found = self._kept.get(key)
            if found is not None and found[0]() is None:
                self._remove(key)

    def _remove(self, key: int) -> None:
        found = self._kept.pop(key, None)
        if found is not None:
            self._bytes -= found[1]


# The transcript bytes whose events are kept. Measured with `bench/soak.py 5 --full` (max RSS,
# 171.0 MB without the cache): 1 MiB +1.2 MB, 2 MiB +6.5 MB, 4 MiB +19.6 MB. 2 MiB holds one
# session of about 1,000 turns, or several of a few hundred.
DEFAULT_CACHE_MB = 2


def _cache_limit_bytes() -> int:
    raw = os.environ.get("CLAWGATE_TRANSCRIPT_CACHE_MB", "")
    try:
        return int(max(0.0, float(raw.strip() or DEFAULT_CACHE_MB)) * 1024 * 1024)
    except (ValueError, OverflowError):
        log.warning(
            "CLAWGATE_TRANSCRIPT_CACHE_MB=%r is not a number; using %d", raw, DEFAULT_CACHE_MB
        )
        return DEFAULT_CACHE_MB * 1024 * 1024


PARSED_CACHE = ParsedCache(max_transcripts=256, max_bytes=_cache_limit_bytes())
# Check mode (the test suite turns it on): every read served from the cache is compared
# with a full parse of the file, and a difference raises TranscriptCacheError.
CHECK_ENV = "CLAWGATE_TRANSCRIPT_CHECK"
_HEAD_BYTES = 256  # the file's first bytes (its header: session id, creation time)


class Transcript:
    """One `<sessionId>.jsonl` file. Not thread-safe; one writer per file (the run lane).

    Reads are incremental: the events parsed so far are kept with the byte offset of the
    last complete line, and a read parses only the lines appended since. The kept state is
    used only while the file is provably the same one grown by appends (same device and
    inode, not shorter, the same first bytes, a newline just before the offset); anything
    else is read in full. An incomplete last line never advances the offset: it is parsed
    again on every read until its newline arrives.

    Sharing: every read returns a new list, but the event dicts in it are the kept ones,
    shared by every reader of this transcript (copying them would cost about what parsing
    does). Readers treat them as read-only: the store's projections, the context budget,
    compaction, the model conversion (`loop.to_messages` builds new blocks), display
    (`store._display_message` copies before it changes anything) and usage reports only
    read. Check mode (`CLAWGATE_TRANSCRIPT_CHECK=1`, on for the whole test suite) turns an
    in-place change by any reader into a TranscriptCacheError at the next read.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._last_id: str | None = None
        self._last_id_known = False
        self._parsed: _Parsed | None = None  # None: nothing kept, the next read is full
        self._file_id: tuple[int, int] = (0, 0)  # (st_dev, st_ino) of the parsed file
        self._head = b""
        self._tail = b""  # bytes after the last complete line at the last read

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
        """Parse every line; garbage and torn lines are skipped and logged, never raised.

        Lines parsed by an earlier read are not parsed again (see the class doc); a garbage
        line in the middle is therefore logged once, when first parsed."""
        try:
            with open(self.path, "rb") as fh:
                st = os.fstat(fh.fileno())
                start = self._resume_offset(fh.fileno(), st)
                fh.seek(start)
                chunk = fh.read()
        except FileNotFoundError:
            self._forget()
            return ReadResult()
        except OSError as exc:
            log.error("transcript %s unreadable: %s", self.path, exc)
            self._forget()
            return ReadResult()
        resumed = start > 0 and self._parsed is not None
        if not resumed:
            self._parsed = _Parsed()
            self._file_id = (st.st_dev, st.st_ino)
            self._head = chunk[:_HEAD_BYTES]
        parsed = self._parsed
        assert parsed is not None
        self._tail = _consume(parsed, chunk, self.path)
        result = _result(parsed, self._tail, self.path)
        if resumed and os.environ.get(CHECK_ENV) == "1":
            self._check(result)
        self._last_id = _last_event_id(result.events)
        self._last_id_known = True
        if not PARSED_CACHE.keep(self, parsed.offset + len(self._tail)):
            self._forget()
        return result

    def events(self) -> list[dict[str, Any]]:
        return self.read().events

    def _resume_offset(self, fd: int, st: os.stat_result) -> int:
        """Where this read starts: the kept offset when the file is the one parsed, grown
        only by appends; else 0 (a full read)."""
        parsed = self._parsed
        if parsed is None or parsed.offset == 0:
            return 0
        if (st.st_dev, st.st_ino) != self._file_id or st.st_size < parsed.offset:
            return 0  # replaced (new inode) or truncated
        # Inode numbers are reused after a delete: the same first bytes (the header names
        # the session and its creation time) and the newline ending the last parsed line
        # say it is still the file parsed.
        if os.pread(fd, len(self._head), 0) != self._head:
            return 0
        if os.pread(fd, 1, parsed.offset - 1) != b"\n":
            return 0
        return parsed.offset

    def _forget(self) -> None:
        """Drop the kept events (the file is gone, or too big to keep)."""
        if self._parsed is not None:
            self._clear()
            PARSED_CACHE.drop(self)

    def _clear(self) -> None:
        """Drop the kept events (also when evicted): the next read is full."""
        self._parsed = None
        self._head = self._tail = b""

    def _check(self, result: ReadResult) -> None:
        assert self._parsed is not None
        size = self._parsed.offset + len(self._tail)  # the bytes this read saw, no more
        with open(self.path, "rb") as fh:
            data = fh.read(size)
        fresh = _Parsed()
        tail = _consume(fresh, data, self.path, quiet=True)
        expected = _result(fresh, tail, self.path, quiet=True)
        if expected == result:
            return
        index = next(
            (
                i
                for i, (a, b) in enumerate(zip(result.events, expected.events, strict=False))
                if a != b
            ),
            min(len(result.events), len(expected.events)),
        )
        message = (
            f"transcript {self.path}: the kept events differ from the file at event {index} "
            "(a reader changed a shared event dict in place)"
        )
        log.error("%s", message)
        self._forget()
        raise TranscriptCacheError(message)

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
        extended = False
        try:
            st = os.fstat(fd)
            size = st.st_size
            # The kept events are current when the file is exactly as the last read left it.
            current = (
                self._parsed is not None
                and (st.st_dev, st.st_ino) == self._file_id
                and size == self._parsed.offset + len(self._tail)
            )
            if size and os.pread(fd, 1, size - 1) != b"\n":
                # Torn tail from a crash: start on a fresh line instead of gluing onto it.
                payload = b"\n" + payload
            _write_all(fd, payload)
            if sync:
                os.fsync(fd)
            if current and os.fstat(fd).st_size == size + len(payload):
                # Nobody else wrote in between: the new bytes are ours. They are parsed back
                # (not the stamped dicts: callers keep those, and the kept events must be
                # what a read of the file gives).
                assert self._parsed is not None
                self._tail = _consume(self._parsed, self._tail + payload, self.path)
                extended = True
        finally:
            os.close(fd)
        if extended:
            assert self._parsed is not None
            if not PARSED_CACHE.keep(self, self._parsed.offset + len(self._tail)):
                self._forget()
        else:
            self._forget()
        self._last_id = parent
        return stamped


def _consume(parsed: _Parsed, chunk: bytes, path: Path, *, quiet: bool = False) -> bytes:
    """Parse the complete lines of `chunk` (the file from `parsed.offset` on) into `parsed`;
    returns the bytes after the last newline (an incomplete line, or nothing)."""
    lines = chunk.split(b"\n")
    tail = lines.pop()  # after the last newline: empty, or a line still being written
    together = _decode_together(lines)
    if together is not None:
        parsed.lines += len(lines)
        for one in together:
            _place(parsed, one)
    else:
        for raw in lines:
            parsed.lines += 1
            if not raw.strip():
                continue
            event = _decode(raw)
            if event is None:
                parsed.skipped += 1
                if not quiet:
                    log.warning("transcript %s: unparseable line %d skipped", path, parsed.lines)
                continue
            _place(parsed, event)
    parsed.offset += len(chunk) - len(tail)
    return tail


def _decode_together(lines: list[bytes]) -> list[dict[str, Any]] | None:
    """The events of `lines` parsed as one JSON array, or None unless each non-blank line is
    exactly one event (then they are parsed one by one, with the skip rules).

    One `json.loads` call shares the key strings of all events (about 30 % less heap) and
    takes half the time of one call per line. It cannot mistake lines for events: the writer
    ends every line with a whole object, and a torn line is a prefix of one, which leaves a
    bracket or string open that nothing after it closes; the count and shape check below
    catches lines that hold anything else."""
    present = [raw for raw in lines if raw.strip()]
    if not present:
        return []
    try:
        values = json.loads((b"[" + b",".join(present) + b"]").decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(values, list) or len(values) != len(present):
        return None
    events: list[dict[str, Any]] = []
    for value in values:
        if not isinstance(value, dict) or not isinstance(value.get("type"), str):
            return None
        events.append(value)
    return events


def _place(target: _Parsed | ReadResult, event: dict[str, Any]) -> None:
    """The first `session` line before any event is the header; the rest are events."""
    if event.get("type") == "session" and target.header is None and not target.events:
        target.header = event
    else:
        target.events.append(event)


def _result(parsed: _Parsed, tail: bytes, path: Path, *, quiet: bool = False) -> ReadResult:
    """What a read returns: the parsed lines plus the incomplete last line, if it parses."""
    result = ReadResult(parsed.header, list(parsed.events), parsed.skipped)
    if not tail.strip():
        return result
    event = _decode(tail)
    if event is None:
        result.skipped_lines += 1
        result.torn_tail = True
        if not quiet:
            log.warning(
                "transcript %s: torn last line (%d bytes) skipped; likely a crash mid-write",
                path,
                len(tail),
            )
        return result
    _place(result, event)
    return result


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
