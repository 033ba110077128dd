"""Incremental transcript reads (issue 22): the kept events always equal a full read.

Every comparison is against `Transcript(path).read()` on a fresh instance, which parses the
whole file: the reference the cache must match. `decoded` counts lines parsed, to show that a
read after an append parses only the new lines (and a changed file all of them).
"""

from __future__ import annotations

import base64
import gc
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gateway.agents.transcript as tm
import tests.agents.loop_tools as lt
from gateway.agents.store import AgentSessionStore
from gateway.agents.transcript import ParsedCache, ReadResult, Transcript, TranscriptCacheError
from tests.fakes.llm import FakeLLM
from tests.harness import chat, connected, final_text, live_gateway
from tests.media.samples import png

MAIN = "agent:main:main"


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The complete lines the transcript module parses, in order (check mode off: it parses
    the file again)."""
    monkeypatch.setenv(tm.CHECK_ENV, "0")
    seen: list[bytes] = []
    real = tm._consume

    def counting(parsed: Any, chunk: bytes, path: Path, *, quiet: bool = False) -> bytes:
        seen.extend(raw for raw in chunk.split(b"\n")[:-1] if raw.strip())
        return real(parsed, chunk, path, quiet=quiet)

    monkeypatch.setattr(tm, "_consume", counting)
    return seen


@pytest.fixture(autouse=True)
def _own_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each test starts with an empty process-wide cache at the shipped limits.
    shipped = tm.PARSED_CACHE
    monkeypatch.setattr(tm, "PARSED_CACHE", ParsedCache(shipped.max_transcripts, 1 << 30))


def full(path: Path) -> ReadResult:
    return Transcript(path).read()


def raw_append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def line(event: dict[str, Any]) -> bytes:
    return (json.dumps(event) + "\n").encode()


def message(n: int) -> dict[str, Any]:
    return {"role": "user", "content": f"message {n}", "timestamp": n}


def test_reads_after_our_appends_parse_nothing_again(tmp_path: Path, decoded: list[bytes]) -> None:
    path = tmp_path / "s.jsonl"
    t = Transcript.create(path, "s", "/w")
    for n in range(20):
        t.append_message(message(n))
    assert t.read() == full(path)
    decoded.clear()
    t.append_many([{"type": "message", "message": message(20)}, {"type": "custom", "data": 1}])
    assert len(decoded) == 2  # the appended lines, parsed back once
    decoded.clear()
    result = t.read()
    assert decoded == []  # nothing new on disk: nothing parsed
    assert result == full(path)
    assert [e["message"]["content"] for e in result.events[-2:] if "message" in e] == ["message 20"]


def test_appends_by_another_writer_are_parsed_incrementally(
    tmp_path: Path, decoded: list[bytes]
) -> None:
    path = tmp_path / "s.jsonl"
    ours = Transcript.create(path, "s", "/w")
    for n in range(10):
        ours.append_message(message(n))
    ours.read()
    other = Transcript(path)
    other.append_message(message(10))  # a second instance (another process, a CLI)
    raw_append(path, line({"type": "custom", "id": "raw-1", "parentId": None}))
    decoded.clear()
    result = ours.read()
    assert len(decoded) == 2  # only the two new lines
    assert result == full(path)
    # Our next append chains on what the other writers left, and the cache stays exact.
    mine = ours.append_message(message(11))
    assert mine["parentId"] == "raw-1"
    assert ours.read() == full(path)
    assert other.read() == full(path)  # the other instance catches up on our line too


def test_torn_tail_is_reread_until_completed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, decoded: list[bytes]
) -> None:
    path = tmp_path / "s.jsonl"
    t = Transcript.create(path, "s", "/w")
    kept = t.append_message(message(1))
    t.read()
    event = {"type": "message", "id": "late", "parentId": kept["id"], "message": message(2)}
    data = line(event)
    raw_append(path, data[:25])  # a writer half way through its line
    with caplog.at_level(logging.WARNING, logger="gateway.agents.transcript"):
        first = t.read()
        second = t.read()
    torn_logs = [r for r in caplog.records if "torn last line" in r.getMessage()]
    assert len(torn_logs) == 2  # re-examined (and reported) on every read, as before
    assert first.torn_tail and second.torn_tail
    assert first.skipped_lines == second.skipped_lines == 1
    assert first.events == second.events == [kept]
    assert first == full(path)
    raw_append(path, data[25:])  # the rest of the line arrives
    decoded.clear()
    done = t.read()
    assert decoded == [data[:-1]]  # the completed line alone, parsed from its start
    assert not done.torn_tail and done.skipped_lines == 0
    assert [e["id"] for e in done.events] == [kept["id"], "late"]
    assert done == full(path)


def test_torn_tail_then_our_append_matches_a_full_read(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    t = Transcript.create(path, "s", "/w")
    kept = t.append_message(message(1))
    raw_append(path, b'{"type":"message","id":"torn","mess')  # a crash mid-write
    assert t.read().torn_tail
    after = t.append_message(message(2))  # starts on a fresh line; the torn bytes stay
    assert after["parentId"] == kept["id"]
    result = t.read()
    assert result == full(path)
    assert [e["id"] for e in result.events] == [kept["id"], after["id"]]
    assert result.skipped_lines == 1 and not result.torn_tail


def test_complete_last_line_without_newline(tmp_path: Path, decoded: list[bytes]) -> None:
    path = tmp_path / "s.jsonl"
    t = Transcript.create(path, "s", "/w")
    t.read()
    raw_append(path, b'{"type":"reset","id":"r1","parentId":null,"timestamp":"x"}')
    assert [e["id"] for e in t.read().events] == ["r1"]  # kept, though not yet terminated
    nxt = t.append("reset")
    assert nxt["parentId"] == "r1"
    assert t.read() == full(path)
    assert [e["id"] for e in t.read().events] == ["r1", nxt["id"]]


def test_garbage_line_in_the_middle_is_counted_like_a_full_read(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    t = Transcript.create(path, "s", "/w")
    t.append("reset")
    t.read()
    raw_append(path, b"not json\n")
    t.append("reset")
    assert t.read() == full(path)
    assert t.read().skipped_lines == 1


def test_replaced_file_is_read_in_full(tmp_path: Path, decoded: list[bytes]) -> None:
    path = tmp_path / "s.jsonl"
    t = Transcript.create(path, "s", "/w")
    for n in range(5):
        t.append_message(message(n))
    t.read()
    other = tmp_path / "other.jsonl"
    replacement = Transcript.create(other, "other", "/x")
    for n in range(8):
        replacement.append_message(message(100 + n))
    os.replace(other, path)  # a new inode at the same path
    decoded.clear()
    result = t.read()
    assert len(decoded) == 9  # header + 8 events: all of it
    assert result == full(path)
    assert result.header is not None and result.header["id"] == "other"


def test_truncated_file_is_read_in_full(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    t = Transcript.create(path, "s", "/w")
    events = [t.append_message(message(n)) for n in range(5)]
    t.read()
    lines = path.read_bytes().splitlines(keepends=True)
    with open(path, "r+b") as fh:  # same inode, shorter
        fh.truncate(sum(len(x) for x in lines[:3]))
    result = t.read()
    assert result == full(path)
    assert result.events == events[:2]
    again = t.append_message(message(9))
    assert again["parentId"] == events[1]["id"]
    assert t.read() == full(path)


def test_rewritten_in_place_with_another_header_is_read_in_full(tmp_path: Path) -> None:
    """Same inode and at least as long (as after an inode is reused): the first bytes differ."""
    path = tmp_path / "s.jsonl"
    t = Transcript.create(path, "s1", "/w")
    t.append_message(message(1))
    t.read()
    size = path.stat().st_size
    other = tmp_path / "o.jsonl"
    Transcript.create(other, "s2", "/w").append_message(message(2))
    with open(path, "r+b") as fh:
        fh.write(other.read_bytes().ljust(size, b" ")[:size] + b"\n")
    result = t.read()
    assert result == full(path)
    assert result.header is not None and result.header["id"] == "s2"


def test_deleted_file_reads_empty_and_a_new_one_is_read(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    t = Transcript.create(path, "s", "/w")
    t.append("reset")
    t.read()
    path.unlink()
    assert t.read() == ReadResult()
    Transcript.create(path, "s", "/w").append_message(message(1))
    assert t.read() == full(path)


def test_window_after_reset_and_new_session(tmp_path: Path) -> None:
    store = AgentSessionStore(tmp_path, "main")
    store.append_messages(MAIN, [message(1), message(2)])
    _, before = store.window_events(MAIN)
    assert [e["message"]["content"] for e in before] == ["message 1", "message 2"]
    store.reset_in_place(MAIN)  # a `reset` event in the same transcript
    store.append_messages(MAIN, [message(3)])
    row, window = store.window_events(MAIN)
    assert row is not None
    assert [e["message"]["content"] for e in window] == ["message 3"]
    path = store.transcript_path(row.session_id)
    assert store.transcript(row.session_id).read() == full(path)
    assert [m["content"] for m in store.model_history(MAIN)] == ["message 3"]
    old_id = row.session_id
    store.new_session(MAIN)  # a new transcript file
    store.append_messages(MAIN, [message(4)])
    row, window = store.window_events(MAIN)
    assert row is not None and row.session_id != old_id
    assert [e["message"]["content"] for e in window] == ["message 4"]
    assert store.transcript(old_id).read() == full(store.transcript_path(old_id))


def test_only_the_most_recently_used_transcripts_keep_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, decoded: list[bytes]
) -> None:
    cache = ParsedCache(max_transcripts=3, max_bytes=1 << 30)
    monkeypatch.setattr(tm, "PARSED_CACHE", cache)
    transcripts = []
    for n in range(5):
        t = Transcript.create(tmp_path / f"s{n}.jsonl", f"s{n}", "/w")
        for m in range(4):
            t.append_message(message(m))
        transcripts.append(t)
    for t in transcripts:
        t.read()
    kept, size = cache.stats()
    assert kept == 3
    assert size == sum(t.path.stat().st_size for t in transcripts[2:])
    decoded.clear()
    transcripts[4].read()
    assert decoded == []  # still kept
    transcripts[0].read()  # evicted: parsed again in full (header + 4 events)
    assert len(decoded) == 5
    assert cache.stats()[0] == 3
    assert transcripts[0].read() == full(transcripts[0].path)
    decoded.clear()
    transcripts[2].read()  # the least recently used one went out to make room
    assert len(decoded) == 5


def test_byte_budget_bounds_the_cache_and_a_huge_transcript_is_never_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, decoded: list[bytes]
) -> None:
    small = []
    for n in range(3):
        t = Transcript.create(tmp_path / f"s{n}.jsonl", f"s{n}", "/w")
        t.append_message(message(n))
        small.append(t)
    one = small[0].path.stat().st_size
    cache = ParsedCache(max_transcripts=100, max_bytes=2 * one + one // 2)
    monkeypatch.setattr(tm, "PARSED_CACHE", cache)
    for t in small:
        t.read()
    assert cache.stats() == (2, 2 * one)
    big = Transcript.create(tmp_path / "big.jsonl", "big", "/w")
    big.append_message({"role": "user", "content": "x" * (3 * one)})
    decoded.clear()
    assert big.read() == full(big.path)
    decoded.clear()
    assert big.read().events[0]["message"]["content"] == "x" * (3 * one)
    assert len(decoded) == 2  # parsed in full every time, as before the cache
    assert cache.stats() == (2, 2 * one)  # and it evicted nobody


def test_a_transcript_nobody_holds_frees_its_entry(tmp_path: Path) -> None:
    store = AgentSessionStore(tmp_path, "main")
    store.append_messages(MAIN, [message(1)])
    store.model_history(MAIN)
    row = store.get(MAIN)
    assert row is not None
    size = store.transcript_path(row.session_id).stat().st_size
    assert tm.PARSED_CACHE.stats() == (1, size)
    store.delete(MAIN)  # the store lets go of the session's Transcript
    assert tm.PARSED_CACHE.stats() == (0, 0)  # and its events went with it, not at eviction
    t = Transcript.create(tmp_path / "x.jsonl", "x", "/w")
    t.read()
    assert tm.PARSED_CACHE.stats()[0] == 1
    del t
    gc.collect()
    assert tm.PARSED_CACHE.stats() == (0, 0)


def test_check_mode_catches_a_reader_changing_a_shared_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.jsonl"
    t = Transcript.create(path, "s", "/w")
    t.append_message({"role": "toolResult", "content": [{"type": "text", "text": "x" * 500}]})
    first = t.read().events
    first[0]["message"]["content"][0]["text"] = "trimmed"  # a reader trimming in place
    monkeypatch.setenv(tm.CHECK_ENV, "1")
    with pytest.raises(TranscriptCacheError, match="differ from the file at event 0"):
        t.read()
    assert t.read().events[0]["message"]["content"][0]["text"] == "x" * 500  # re-read in full
    # Without check mode the change would be served to every later reader: what it guards.
    monkeypatch.setenv(tm.CHECK_ENV, "0")
    t.read().events[0]["message"]["content"][0]["text"] = "trimmed"
    assert t.read().events[0]["message"]["content"][0]["text"] == "trimmed"


def test_each_read_returns_its_own_list(tmp_path: Path) -> None:
    t = Transcript.create(tmp_path / "s.jsonl", "s", "/w")
    t.append("reset")
    events = t.read().events
    events.clear()  # a caller trimming its list leaves the kept events alone
    assert len(t.read().events) == 1


def reference_read(data: bytes) -> ReadResult:
    """The documented read semantics, one `json.loads` per line, as before the cache."""
    result = ReadResult()
    lines = data.split(b"\n")
    complete = data.endswith(b"\n") or not data
    for index, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            event = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            event = None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            result.skipped_lines += 1
            result.torn_tail = index == len(lines) - 1 and not complete
            continue
        if event["type"] == "session" and result.header is None and not result.events:
            result.header = event
        else:
            result.events.append(event)
    return result


GARBAGE = [
    b"not json\n",
    b"[1,2,3]\n",
    b'{"no_type":1}\n',
    b"\xff\xfe\x00\n",
    b'{"type":5}\n',
    b"\n",
    b"   \n",
    b"1, 2\n",
    b'{"type":"a"}, {"type":"b"}\n',  # two objects on one line: one garbage line
    b'{"type":"a"}}\n',
    b'"\\ud800"\n',
]
OPS = st.one_of(
    st.just(("ours", 0)),
    st.just(("other", 0)),
    st.just(("read", 0)),
    st.tuples(st.just("garbage"), st.integers(0, len(GARBAGE) - 1)),
    st.tuples(st.just("torn"), st.integers(1, 60)),
    st.just(("complete", 0)),
)


@settings(max_examples=80, deadline=None)
@given(st.lists(OPS, max_size=25))
def test_any_mix_of_writes_reads_like_the_reference(ops: list[tuple[str, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.jsonl"
        t = Transcript.create(path, "s", "/w")
        pending = b""  # the rest of a torn line, when one is open
        for n, (op, arg) in enumerate(ops):
            if op == "ours":
                t.append_message(message(n))
                pending = b""  # our append started a fresh line after the torn one
            elif op == "other":
                Transcript(path).append("custom", data={"n": n})
                pending = b""
            elif op == "garbage" and not pending:
                raw_append(path, GARBAGE[arg])
            elif op == "torn" and not pending:
                whole = line({"type": "message", "id": f"t{n}", "message": message(n)})
                cut = min(arg, len(whole) - 2)
                raw_append(path, whole[:cut])
                pending = whole[cut:]
            elif op == "complete" and pending:
                raw_append(path, pending)
                pending = b""
            else:
                assert t.read() == reference_read(path.read_bytes())
        assert t.read() == reference_read(path.read_bytes())
        assert Transcript(path).read() == reference_read(path.read_bytes())


# --- a real gateway: turns with images, long tool results, history, compaction -----------------


@pytest.fixture
def _test_tools() -> Iterator[None]:
    with lt.registered():
        yield


def _config(fake: FakeLLM, api: str) -> dict[str, Any]:
    provider = "anthropic" if api == "anthropic-messages" else "openai"
    base = fake.url if provider == "anthropic" else fake.url + "/v1"
    entry = {"baseUrl": base, "apiKey": "sk-test", "api": api}
    return {
        "models": {"providers": {provider: entry}},
        "agents": {"defaults": {"model": {"primary": f"{provider}/m-test"}, "mediaMaxMb": 1}},
    }


@pytest.mark.usefixtures("_test_tools")
@pytest.mark.parametrize("api", ["anthropic-messages", "openai-completions"])
async def test_turns_never_change_the_kept_events(
    tmp_path: Path, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    monkeypatch.setenv(tm.CHECK_ENV, "1")  # set by tests/conftest.py too; explicit here
    (tmp_path / "workspace").mkdir()
    (tmp_path / "workspace" / "big.txt").write_text("line of a long file\n" * 20_000)
    picture = base64.b64encode(png(40, 30)).decode()
    image = {"type": "image", "mimeType": "image/png", "fileName": "dot.png", "content": picture}
    fake_llm.script.extend(
        [
            {"text": "a dot"},
            {"tool_calls": [{"name": "test_read", "arguments": {"path": "big.txt"}}]},
            {"text": "it is long"},
            {"text": "still here"},
            {"text": "## Goal and user preferences\nlooked at files"},  # the summary
            {"text": "after compaction"},
        ]
    )
    async with live_gateway(tmp_path, _config(fake_llm, api)) as live, connected(live) as client:
        assert final_text(await chat(client, "what is this?", attachments=[image])) == "a dot"
        assert final_text(await chat(client, "read big.txt")) == "it is long"
        assert final_text(await chat(client, "and again?")) == "still here"
        await client.call("chat.history", {"sessionKey": "main"})
        await client.call("chat.startup", {"sessionKey": "main", "maxBytes": 2000})
        await client.call("sessions.usage.timeseries", {"key": "main"})
        await client.call("sessions.usage.logs", {"key": "main"})
        compacted = await client.call("sessions.compact", {"key": "main"})
        assert compacted["compacted"] is True, compacted
        assert final_text(await chat(client, "last one")) == "after compaction"
        await client.call("chat.history", {"sessionKey": "main"})
        store = live.gateway.extensions["agents"].store.for_key(MAIN)
        row = store.get(MAIN)
        assert row is not None
        transcript = store.transcript(row.session_id)
        kept = transcript._parsed
        assert kept is not None  # the turns were served from the cache
        reference = full(transcript.path)
        assert kept.events == reference.events
        assert kept.header == reference.header
    # What made it through: the long result was sent capped, the image and compaction are on
    # disk, so the readers above did handle those shapes.
    kinds = [e["type"] for e in reference.events]
    assert "compaction" in kinds
    results = [
        e["message"]
        for e in reference.events
        if e["type"] == "message" and e["message"]["role"] == "toolResult"
    ]
    assert len(results) == 1 and len(results[0]["content"][0]["text"]) > 10_000
    users = [e["message"] for e in reference.events if e.get("message", {}).get("role") == "user"]
    assert any(
        isinstance(u["content"], list) and any(b.get("type") == "image" for b in u["content"])
        for u in users
    )


def test_cache_budget_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CLAWGATE_TRANSCRIPT_CACHE_MB", "0.5")
    assert tm._cache_limit_bytes() == 512 * 1024
    monkeypatch.setenv("CLAWGATE_TRANSCRIPT_CACHE_MB", " ")
    assert tm._cache_limit_bytes() == tm.DEFAULT_CACHE_MB * 1024 * 1024
    monkeypatch.setenv("CLAWGATE_TRANSCRIPT_CACHE_MB", "inf")
    assert tm._cache_limit_bytes() == tm.DEFAULT_CACHE_MB * 1024 * 1024
    monkeypatch.setenv("CLAWGATE_TRANSCRIPT_CACHE_MB", "lots")
    assert tm._cache_limit_bytes() == tm.DEFAULT_CACHE_MB * 1024 * 1024
    assert "CLAWGATE_TRANSCRIPT_CACHE_MB='lots' is not a number" in caplog.text
    monkeypatch.setenv("CLAWGATE_TRANSCRIPT_CACHE_MB", "0")  # off: every read is full
    monkeypatch.setattr(tm, "PARSED_CACHE", ParsedCache(256, tm._cache_limit_bytes()))
    t = Transcript.create(tmp_path / "s.jsonl", "s", "/w")
    t.append("reset")
    assert len(t.read().events) == 1
    assert t._parsed is None and tm.PARSED_CACHE.stats() == (0, 0)
