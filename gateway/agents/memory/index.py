"""A SQLite FTS5 index over the memory files, ranked by BM25 (stdlib sqlite3 only).

One database per agent. `sync()` brings it up to date incrementally: a file whose
(mtime, size) stamp is unchanged costs one stat; a changed stamp with the same content hash
costs a hash; only changed content is re-chunked. The database survives restarts; a missing,
foreign or corrupt file is deleted and rebuilt from the Markdown (the files are the truth,
the index is derived), never a crash.

Embeddings (optional) are stored beside the chunks as float32 blobs; `vectors()` hands them
to the hybrid search in `search.py`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import sqlite3
import threading
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from gateway.agents.memory.chunking import chunk_lines
from gateway.agents.memory.files import MemoryFile, discover
from gateway.agents.memory.settings import ExtraPath

log = logging.getLogger("agent/memory")

SCHEMA_VERSION = "1"
TOKENIZER = "porter unicode61 remove_diacritics 2"
SNIPPET_CHARS = 700

# Words too common to help ranking; dropped from a query unless nothing else is left.
STOPWORDS = frozenset(
    "a an and are as at be but by did do does for from had has have how i if in into is it its "
    "me my of on or our so that the their them then there these they this to was we were what "
    "when where which who why will with you your".split()
)

T = TypeVar("T")


@dataclass(frozen=True)
class SyncStats:
    files: int
    indexed: int  # files (re)chunked in this sync
    removed: int
    chunks: int
    rebuilt: bool


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    path: str
    start_line: int
    end_line: int
    text: str
    score: float


def fts_query(text: str) -> str | None:
    """A safe FTS5 MATCH expression: the query's words, quoted, joined by OR.

    Quoting makes every user word a literal (no FTS syntax injection); OR plus BM25 ranks
    chunks with more and rarer words first.
    """
    words = list(dict.fromkeys(w.lower() for w in re.findall(r"\w+", text)))
    # Stopwords and single letters ("sister's" -> "s") add noise, not meaning.
    useful = [w for w in words if w not in STOPWORDS and len(w) > 1]
    chosen = useful or words
    if not chosen:
        return None
    return " OR ".join(f'"{w}"' for w in chosen[:32])


def snippet(text: str, query: str, limit: int = SNIPPET_CHARS) -> str:
    """The chunk text around the first query word, at most `limit` characters."""
    if len(text) <= limit:
        return text.strip()
    lowered = text.lower()
    first = min(
        (pos for w in re.findall(r"\w+", query.lower()) if (pos := lowered.find(w)) >= 0),
        default=0,
    )
    start = max(0, min(first - limit // 4, len(text) - limit))
    start = text.rfind("\n", 0, start) + 1 if start > 0 else 0
    return text[start : start + limit].strip()


class MemoryIndex:
    """Thread-safe: searches run in worker threads, one connection behind a lock."""

    def __init__(
        self,
        db_path: Path,
        workspace: Path,
        *,
        extra_paths: Sequence[ExtraPath] = (),
        chunk_tokens: int = 400,
        chunk_overlap: int = 80,
    ) -> None:
        self.db_path = db_path
        self.workspace = workspace
        self.extra_paths = tuple(extra_paths)
        self.chunk_tokens = chunk_tokens
        self.chunk_overlap = chunk_overlap
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._stamps: dict[str, tuple[int, int]] = {}
        self._vectors: list[tuple[int, list[float]]] | None = None
        self._chunk_count: int | None = None

    @property
    def identity(self) -> str:
        """What the stored chunks depend on; a change means a full rebuild."""
        return f"{SCHEMA_VERSION}|{TOKENIZER}|{self.chunk_tokens}|{self.chunk_overlap}"

    # --- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = self._open()
        return self._db

    def _open(self) -> sqlite3.Connection:
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        existed = self.db_path.exists()
        try:
            db = self._connect()
            if not self._usable(db):
                db.close()
                raise sqlite3.DatabaseError("index identity changed or schema missing")
            return db
        except sqlite3.DatabaseError as exc:
            if existed:
                log.warning("memory index %s unusable (%s); rebuilding it", self.db_path, exc)
            self._delete_files()
            db = self._connect()
            self._create(db)
            return db

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def _usable(self, db: sqlite3.Connection) -> bool:
        if db.execute("PRAGMA quick_check").fetchone() != ("ok",):
            raise sqlite3.DatabaseError("quick_check failed")
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'identity'").fetchone()
        except sqlite3.OperationalError:
            return False
        if row is None or row[0] != self.identity:
            return False
        self._stamps = {
            path: (mtime, size)
            for path, mtime, size in db.execute("SELECT path, mtime_ns, size FROM files")
        }
        return True

    def _create(self, db: sqlite3.Connection) -> None:
        db.executescript(
            f"""
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE files (
                path TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL,
                hash TEXT NOT NULL);
            CREATE TABLE chunks (
                id INTEGER PRIMARY KEY, path TEXT NOT NULL, start_line INTEGER NOT NULL,
                end_line INTEGER NOT NULL, text TEXT NOT NULL, embedding BLOB);
            CREATE INDEX chunks_path ON chunks(path);
            CREATE VIRTUAL TABLE chunks_fts USING fts5(
                text, content='chunks', content_rowid='id', tokenize='{TOKENIZER}');
            CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
                INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text);
            END;
            CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
                INSERT INTO chunks_fts(chunks_fts, rowid, text)
                VALUES ('delete', old.id, old.text);
            END;
            """
        )
        db.execute("INSERT INTO meta VALUES ('identity', ?)", (self.identity,))
        db.execute("INSERT INTO meta VALUES ('embedding', '')")
        self._stamps = {}
        self._vectors = None
        self._chunk_count = None

    def _delete_files(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.db_path}{suffix}").unlink(missing_ok=True)

    def _guarded(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run `op`; a database error (corruption under us) rebuilds once and retries."""
        with self._lock:
            try:
                return op(self._conn())
            except sqlite3.DatabaseError as exc:
                log.warning("memory index %s failed (%s); rebuilding it", self.db_path, exc)
                self.close()
                self._delete_files()
                self._stamps = {}
                self._vectors = None
                self._chunk_count = None
                db = self._conn()
                self._sync(db)
                return op(db)

    # --- sync -----------------------------------------------------------------------------

    def sync(self) -> SyncStats:
        with self._lock:
            fresh = self._db is None and not self.db_path.exists()
            stats = self._guarded(self._sync)
            if fresh:
                return SyncStats(stats.files, stats.indexed, stats.removed, stats.chunks, True)
            return stats

    def _sync(self, db: sqlite3.Connection) -> SyncStats:
        files = discover(self.workspace, self.extra_paths)
        seen = {f.key for f in files}
        changed = [f for f in files if self._stamps.get(f.key) != (f.mtime_ns, f.size)]
        gone = [key for key in self._stamps if key not in seen]
        indexed = 0
        if changed or gone:
            db.execute("BEGIN IMMEDIATE")
            try:
                for key in gone:
                    db.execute("DELETE FROM chunks WHERE path = ?", (key,))
                    db.execute("DELETE FROM files WHERE path = ?", (key,))
                for item in changed:
                    indexed += self._index_file(db, item)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                # Stamps may be ahead of the rolled-back rows; reload them from the db.
                self._stamps = {
                    p: (m, s) for p, m, s in db.execute("SELECT path, mtime_ns, size FROM files")
                }
                raise
            for key in gone:
                self._stamps.pop(key, None)
            if indexed or gone:
                self._vectors = None
        if self._chunk_count is None or indexed or gone:
            (count,) = db.execute("SELECT count(*) FROM chunks").fetchone()
            self._chunk_count = int(count)
        return SyncStats(len(files), indexed, len(gone), self._chunk_count, False)

    def _index_file(self, db: sqlite3.Connection, item: MemoryFile) -> int:
        """Re-chunk one file if its content changed; 1 if it was re-chunked."""
        try:
            with open(item.path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            log.warning("memory index: cannot read %s: %s", item.path, exc)
            return 0
        digest = hashlib.sha256(data).hexdigest()
        row = db.execute("SELECT hash FROM files WHERE path = ?", (item.key,)).fetchone()
        self._stamps[item.key] = (item.mtime_ns, item.size)
        if row is not None and row[0] == digest:
            db.execute(
                "UPDATE files SET mtime_ns = ?, size = ? WHERE path = ?",
                (item.mtime_ns, item.size, item.key),
            )
            return 0
        db.execute("DELETE FROM chunks WHERE path = ?", (item.key,))
        text = data.decode("utf-8", errors="replace")
        db.executemany(
            "INSERT INTO chunks (path, start_line, end_line, text) VALUES (?, ?, ?, ?)",
            (
                (item.key, c.start_line, c.end_line, c.text)
                for c in chunk_lines(text, tokens=self.chunk_tokens, overlap=self.chunk_overlap)
            ),
        )
        db.execute(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)",
            (item.key, item.mtime_ns, item.size, digest),
        )
        return 1

    # --- search ---------------------------------------------------------------------------

    def search(self, query: str, limit: int) -> list[Hit]:
        """Keyword hits, best first; score in (0, 1), higher is better."""
        match = fts_query(query)
        if match is None:
            return []

        def run(db: sqlite3.Connection) -> list[Hit]:
            rows = db.execute(
                "SELECT c.id, c.path, c.start_line, c.end_line, c.text, bm25(chunks_fts) "
                "FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid "
                "WHERE chunks_fts MATCH ? ORDER BY bm25(chunks_fts) LIMIT ?",
                (match, limit),
            ).fetchall()
            return [
                Hit(cid, path, start, end, text, _bm25_score(rank))
                for cid, path, start, end, text, rank in rows
            ]

        return self._guarded(run)

    def chunks(self, ids: Iterable[int]) -> dict[int, Hit]:
        wanted = list(ids)
        if not wanted:
            return {}

        def run(db: sqlite3.Connection) -> dict[int, Hit]:
            marks = ",".join("?" * len(wanted))
            rows = db.execute(
                f"SELECT id, path, start_line, end_line, text FROM chunks WHERE id IN ({marks})",
                wanted,
            ).fetchall()
            return {r[0]: Hit(r[0], r[1], r[2], r[3], r[4], 0.0) for r in rows}

        return self._guarded(run)

    # --- embeddings -----------------------------------------------------------------------

    def set_embedding_identity(self, identity: str) -> None:
        """Forget every stored vector when the embedding model/endpoint changed."""

        def run(db: sqlite3.Connection) -> None:
            row = db.execute("SELECT value FROM meta WHERE key = 'embedding'").fetchone()
            if row is not None and row[0] == identity:
                return
            db.execute("UPDATE chunks SET embedding = NULL")
            db.execute("INSERT OR REPLACE INTO meta VALUES ('embedding', ?)", (identity,))
            self._vectors = None

        self._guarded(run)

    def missing_embeddings(self, limit: int) -> list[tuple[int, str]]:
        def run(db: sqlite3.Connection) -> list[tuple[int, str]]:
            rows = db.execute(
                "SELECT id, text FROM chunks WHERE embedding IS NULL ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
            return [(int(i), str(t)) for i, t in rows]

        return self._guarded(run)

    def store_embeddings(self, items: Sequence[tuple[int, Sequence[float]]]) -> None:
        def run(db: sqlite3.Connection) -> None:
            db.executemany(
                "UPDATE chunks SET embedding = ? WHERE id = ?",
                ((array("f", vec).tobytes(), cid) for cid, vec in items),
            )
            self._vectors = None

        self._guarded(run)

    def vectors(self) -> list[tuple[int, list[float]]]:
        """Every stored vector, unit length, cached until the chunks change."""
        with self._lock:
            if self._vectors is not None:
                return self._vectors

            def run(db: sqlite3.Connection) -> list[tuple[int, list[float]]]:
                out: list[tuple[int, list[float]]] = []
                for cid, blob in db.execute(
                    "SELECT id, embedding FROM chunks WHERE embedding IS NOT NULL"
                ):
                    vec = array("f")
                    vec.frombytes(blob)
                    out.append((int(cid), unit(vec)))
                return out

            self._vectors = self._guarded(run)
            return self._vectors


def unit(vec: Iterable[float]) -> list[float]:
    values = list(vec)
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def _bm25_score(rank: float) -> float:
    # FTS5's bm25() is negative, more negative = better; map to (0, 1), increasing.
    strength = max(0.0, -rank)
    return strength / (1.0 + strength)
