from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.agents.transcript import Transcript, iso_timestamp

ROOT = Path(__file__).resolve().parents[2]
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_header_and_chained_events(tmp_path: Path) -> None:
    path = tmp_path / "s1.jsonl"
    transcript = Transcript.create(path, "s1", "/data/workspace")
    first = transcript.append_message({"role": "user", "content": "hi", "timestamp": 1})
    second = transcript.append("model_change", provider="anthropic", modelId="claude-haiku-4-5")
    header, *rest = (json.loads(line) for line in lines_of(path))
    assert header["type"] == "session"
    assert header["version"] == 4
    assert header["id"] == "s1"
    assert header["cwd"] == "/data/workspace"
    assert ISO.match(header["timestamp"])
    assert rest == [first, second]
    assert first["parentId"] is None
    assert second["parentId"] == first["id"]
    assert first["message"] == {"role": "user", "content": "hi", "timestamp": 1}
    assert ISO.match(first["timestamp"])
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_create_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    Transcript.create(path, "s", "/w").append("reset")
    Transcript.create(path, "other", "/x")
    result = Transcript(path).read()
    assert result.header is not None and result.header["id"] == "s"
    assert [e["type"] for e in result.events] == ["reset"]


def test_chain_continues_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    a = Transcript.create(path, "s", "/w").append("reset")
    b = Transcript(path).append("reset")
    assert b["parentId"] == a["id"]


def test_append_many_is_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    t = Transcript.create(path, "s", "/w")
    events = t.append_many([{"type": "reset"}, {"type": "message", "message": {"role": "user"}}])
    assert events[1]["parentId"] == events[0]["id"]
    assert Transcript(path).events() == events


def test_torn_last_line_is_skipped_logged_and_next_append_starts_fresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "s.jsonl"
    t = Transcript.create(path, "s", "/w")
    kept = t.append_message({"role": "user", "content": "kept"})
    with open(path, "ab") as fh:  # a crash mid-write: half a JSON object, no newline
        fh.write(b'{"type":"message","id":"torn","message":{"role":"assist')
    with caplog.at_level(logging.WARNING, logger="gateway.agents.transcript"):
        result = Transcript(path).read()
    assert result.torn_tail is True
    assert result.skipped_lines == 1
    assert result.events == [kept]
    assert any("torn last line" in r.getMessage() for r in caplog.records)

    after = Transcript(path).append_message({"role": "user", "content": "after"})
    assert after["parentId"] == kept["id"]  # the torn event never existed
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    assert b'"assist\n{"type":"message"' in raw  # torn bytes kept, new event on its own line
    reread = Transcript(path).read()
    assert reread.events == [kept, after]
    assert reread.torn_tail is False
    assert reread.skipped_lines == 1


def test_complete_line_without_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    Transcript.create(path, "s", "/w")
    with open(path, "ab") as fh:
        fh.write(b'{"type":"reset","id":"r1","parentId":null,"timestamp":"x"}')
    result = Transcript(path).read()
    assert [e["id"] for e in result.events] == ["r1"]
    assert not result.torn_tail
    nxt = Transcript(path).append("reset")
    assert nxt["parentId"] == "r1"
    assert [e["id"] for e in Transcript(path).events()] == ["r1", nxt["id"]]


@pytest.mark.parametrize(
    "garbage",
    [b"not json", b"[1,2,3]", b'{"no_type":1}', b"\xff\xfe\x00", b'{"type":5}'],
)
def test_garbage_lines_in_the_middle_are_skipped(tmp_path: Path, garbage: bytes) -> None:
    path = tmp_path / "s.jsonl"
    t = Transcript.create(path, "s", "/w")
    a = t.append("reset")
    with open(path, "ab") as fh:
        fh.write(garbage + b"\n")
    b = Transcript(path).append("reset")
    result = Transcript(path).read()
    assert result.events == [a, b]
    assert result.skipped_lines == 1
    assert not result.torn_tail


def test_missing_or_empty_file_reads_empty(tmp_path: Path) -> None:
    assert Transcript(tmp_path / "none.jsonl").read().events == []
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert Transcript(empty).read().events == []
    first = Transcript(empty).append("reset")
    assert first["parentId"] is None


def test_unicode_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    t = Transcript.create(path, "s", "/w")
    text = "héllo ✅ \u2028 line\nbreak"
    t.append_message({"role": "user", "content": text})
    assert len(lines_of(path)) == 2
    assert Transcript(path).events()[0]["message"]["content"] == text


def test_iso_timestamp_format() -> None:
    assert iso_timestamp(1795475523535) == "2026-11-23T23:12:03.535Z"


_WRITER = r"""
import os
import sys
from pathlib import Path

from gateway.agents.transcript import Transcript

path, mode = Path(sys.argv[1]), sys.argv[2]
real_write = os.write
armed = False


def short_write(fd, data):
    # Short writes are legal for os.write; after the first chunk of an armed append,
    # tell the parent and hang so the SIGKILL lands exactly mid-line.
    written = real_write(fd, bytes(data[:4096]))
    if armed:
        print("mid", flush=True)
        sys.stdin.read()
    return written


if mode == "mid":
    os.write = short_write
t = Transcript(path)
payload = "x" * 400_000
n = 0
while True:
    t.append_message({"role": "user", "content": f"{n}:{payload}"})
    n += 1
    print(n, flush=True)
    armed = mode == "mid"
"""


def _run_writer_and_kill(path: Path, mode: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"1"  # one complete append
        if mode == "mid":
            assert proc.stdout.readline().strip() == b"mid"  # next line half written
        # "free": the writer is already busy with its next append; kill wherever it is.
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


def test_sigkill_mid_write_never_breaks_the_file(tmp_path: Path) -> None:
    """Kill a real writer process repeatedly; every reopen must read and append cleanly."""
    path = tmp_path / "s.jsonl"
    Transcript.create(path, "s", str(tmp_path))
    marks: list[str] = []
    modes = ["mid", "free", "mid", "free", "mid", "free"]
    for cycle, mode in enumerate(modes):
        _run_writer_and_kill(path, mode)
        result = Transcript(path).read()  # must not raise
        assert result.header is not None
        if mode == "mid":
            assert result.torn_tail, "the kill landed mid-line: the tail must be torn"
        mark = Transcript(path).append("custom", customType="mark", data={"cycle": cycle})
        marks.append(mark["id"])
        events = Transcript(path).events()
        assert events[-1]["id"] == mark["id"]
        assert path.read_bytes().endswith(b"\n")

    final = Transcript(path).read()
    assert [e["id"] for e in final.events if e["type"] == "custom"] == marks
    assert not final.torn_tail
    assert final.skipped_lines >= modes.count("mid")  # the torn lines, kept but skipped
    # Every surviving message is complete (a torn write never yields a half event).
    messages = [e for e in final.events if e["type"] == "message"]
    assert len(messages) >= len(modes)
    for event in messages:
        index, _, body = event["message"]["content"].partition(":")
        assert index.isdigit() and len(body) == 400_000
    # Parent chain is intact: each event points at an event that exists.
    ids = {e["id"] for e in final.events}
    assert all(e["parentId"] is None or e["parentId"] in ids for e in final.events)
