"""The memory index: chunking, FTS5/BM25 ranking on a fixture workspace, incremental sync,
restarts and rebuilding a missing or corrupt database."""

from __future__ import annotations

import itertools
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from gateway.agents.memory.chunking import chunk_lines
from gateway.agents.memory.files import discover, is_memory_path
from gateway.agents.memory.index import MemoryIndex, fts_query
from gateway.agents.memory.settings import ExtraPath

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "memory_workspace"


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    dest = tmp_path / "ws"
    shutil.copytree(FIXTURE, dest)
    return dest


def make_index(ws: Path, **kw: object) -> MemoryIndex:
    return MemoryIndex(ws.parent / "state" / "index.sqlite", ws, **kw)  # type: ignore[arg-type]


def test_chunks_cover_every_line_with_ranges_and_overlap() -> None:
    text = "\n".join(f"line {i} " + "x" * 50 for i in range(1, 101))
    chunks = chunk_lines(text, tokens=64, overlap=16)  # ~256 chars, ~64 overlap
    assert chunks[0].start_line == 1 and chunks[-1].end_line == 100
    for a, b in itertools.pairwise(chunks):
        assert b.start_line <= a.end_line + 1, "no line is skipped"
        assert b.start_line > a.start_line, "always moves forward"
    assert any(b.start_line <= a.end_line for a, b in itertools.pairwise(chunks))
    lines = text.splitlines()
    for c in chunks:
        assert c.text == "\n".join(lines[c.start_line - 1 : c.end_line])


def test_a_very_long_line_is_split_but_keeps_its_number() -> None:
    chunks = chunk_lines("short\n" + "y" * 5000 + "\nend", tokens=100, overlap=0)
    assert {c.start_line for c in chunks if "y" in c.text} == {2}
    assert all(len(c.text) <= 400 for c in chunks)


def test_query_words_are_quoted_literals() -> None:
    assert fts_query('when is my sister\'s "birthday" OR NEAR(') == (
        '"sister" OR "birthday" OR "near"'
    )
    assert fts_query("the") == '"the"'
    assert fts_query("?!") is None


def test_discovers_memory_files_only(ws: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.md"
    outside.write_text("secret")
    (ws / "memory" / "link.md").symlink_to(outside)
    (ws / "memory" / ".dreams").mkdir()
    (ws / "memory" / ".dreams" / "x.md").write_text("hidden")
    (ws / "AGENTS.md").write_text("not memory")
    keys = [f.key for f in discover(ws)]
    assert keys == [
        "MEMORY.md",
        "USER.md",
        "memory/2026-05-01.md",
        "memory/2026-05-02.md",
        "memory/projects/garden-planner.md",
    ]
    assert is_memory_path("memory/a/b.md") and is_memory_path("MEMORY.md")
    for bad in ("AGENTS.md", "../MEMORY.md", "memory/../AGENTS.md", "/etc/passwd", "memory/x.txt"):
        assert not is_memory_path(bad), bad


def test_bm25_ranks_the_relevant_chunk_first(ws: Path) -> None:
    index = make_index(ws)
    stats = index.sync()
    assert stats.files == 5 and stats.indexed == 5 and stats.rebuilt
    hits = index.search("when is my sister's birthday?", 5)
    assert {h.path for h in hits} == {"MEMORY.md", "memory/2026-05-02.md"}, "both mention it"
    assert 0 < hits[-1].score <= hits[0].score < 1
    hits = index.search("sister birthday orchids", 5)
    assert hits[0].path == "MEMORY.md", "the chunk with all three words wins"
    assert "3 May" in hits[0].text
    assert (hits[0].start_line, hits[0].end_line) == (1, 9)
    server = index.search("home server upgrade", 3)
    assert server[0].path == "memory/2026-05-02.md", "two matching words beat one"
    assert index.search("kubernetes", 5) == []
    assert index.search("sourd", 5) == [], "whole words, not substrings"
    assert index.search("fertilisers", 5)[0].path == "memory/2026-05-01.md", "porter stemming"


def test_incremental_sync_by_stamp_and_hash(ws: Path) -> None:
    index = make_index(ws)
    index.sync()
    assert index.sync().indexed == 0
    note = ws / "memory" / "2026-05-02.md"
    st = note.stat()
    os.utime(note, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    assert index.sync().indexed == 0, "same content (hash) is not re-chunked"
    note.write_text(note.read_text() + "- Paid the plumber 120 EUR for the kitchen tap.\n")
    stats = index.sync()
    assert stats.indexed == 1 and stats.files == 5
    assert index.search("plumber", 3)[0].path == "memory/2026-05-02.md"
    (ws / "memory" / "2026-05-01.md").unlink()
    stats = index.sync()
    assert stats.removed == 1 and stats.files == 4
    assert index.search("Porto train", 3) == []


def test_restart_keeps_the_index(ws: Path) -> None:
    first = make_index(ws)
    first.sync()
    first.close()
    second = make_index(ws)
    stats = second.sync()
    assert (stats.indexed, stats.rebuilt) == (0, False), "nothing re-indexed after a restart"
    assert second.search("sourdough", 3)[0].path == "memory/2026-05-02.md"


@pytest.mark.parametrize("damage", ["garbage", "truncated", "deleted", "foreign"])
def test_missing_or_corrupt_database_is_rebuilt(ws: Path, damage: str) -> None:
    index = make_index(ws)
    index.sync()
    index.close()
    db = index.db_path
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    if damage == "garbage":
        db.write_bytes(b"this is not a database" * 100)
    elif damage == "truncated":
        db.write_bytes(db.read_bytes()[:1500])
    elif damage == "deleted":
        db.unlink()
    else:
        db.unlink()
        conn = sqlite3.connect(db)
        conn.execute("CREATE TABLE unrelated (x)")
        conn.commit()
        conn.close()
    again = make_index(ws)
    stats = again.sync()
    assert stats.indexed == 5 and stats.chunks >= 5
    assert again.search("dentist Okafor", 3)[0].path == "MEMORY.md"


def test_tables_broken_while_open_are_rebuilt_on_the_next_search(ws: Path) -> None:
    index = make_index(ws)
    index.sync()
    other = sqlite3.connect(index.db_path)
    other.execute("DROP TABLE chunks_fts")
    other.commit()
    other.close()
    assert index.search("dentist Okafor", 3)[0].path == "MEMORY.md"


def test_extra_paths_with_patterns(ws: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    (shared / "runbooks").mkdir(parents=True)
    (shared / "runbooks" / "restore.md").write_text("Restore the zebra cluster from snapshots.\n")
    (shared / "drafts.md").write_text("zebra drafts are ignored by the pattern\n")
    single = tmp_path / "single.md"
    single.write_text("The okapi file is indexed as a single file.\n")
    index = make_index(ws, extra_paths=(ExtraPath(shared, "runbooks/*.md"), ExtraPath(single)))
    index.sync()
    zebra = index.search("zebra", 5)
    assert [h.path for h in zebra] == [(shared / "runbooks" / "restore.md").as_posix()]
    assert index.search("okapi", 5)[0].path == single.as_posix()
