"""What `doctor.memory.status` reports: keyword search (SQLite FTS5) is there whenever the
Python build has FTS5; vector search only when an embeddings provider is configured, and
its readiness is checked live only when the caller asks (`probe` / `deep`), as the
reference does. Never a key or a provider's error body."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.agents.memory.settings import memory_settings
from gateway.config.models import OpenClawConfig

NOT_PROBED = "embedding readiness not checked; call doctor.memory.status with probe: true to check"
NO_EMBEDDINGS = (
    "no embeddings provider configured (memory.search.provider); keyword search (SQLite FTS5) only"
)


@functools.cache
def fts5_available() -> bool:
    """Whether this interpreter's SQLite has FTS5 (memory search needs it)."""
    try:
        with sqlite3.connect(":memory:") as db:
            db.execute("CREATE VIRTUAL TABLE t USING fts5(x)")
    except sqlite3.Error:
        return False
    return True


def index_path(state_dir: Path, agent_id: str) -> Path:
    """Where the memory tools keep the agent's index (tools/memory.py memory_db_path)."""
    return state_dir / "agents" / agent_id / "memory" / "index.sqlite"


def _index_counts(path: Path) -> dict[str, Any]:
    """Files and chunks indexed so far, read-only (the index is built on first search)."""
    if not path.exists():
        return {"indexed": False, "files": 0, "chunks": 0}
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            files = db.execute("SELECT count(*) FROM files").fetchone()[0]
            chunks = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
    except sqlite3.Error as exc:
        return {"indexed": False, "files": 0, "chunks": 0, "error": f"unreadable: {exc}"}
    return {"indexed": True, "files": int(files), "chunks": int(chunks)}


async def memory_status(
    config: OpenClawConfig,
    agent_id: str,
    workspace: Path,
    state_dir: Path,
    *,
    probe: bool = False,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    settings = memory_settings(config, agent_id, workspace, env)
    fts = fts5_available()
    out: dict[str, Any] = {
        "agentId": agent_id,
        "searchRuntimeRegistered": settings.enabled and fts,
        "workspaceDir": str(workspace),
        "fts": {"available": fts, **_index_counts(index_path(state_dir, agent_id))},
    }
    if not settings.enabled:
        out["provider"] = "none"
        out["embedding"] = {"ok": False, "checked": True, "error": "memory search is disabled"}
        return out
    if not fts:
        out["provider"] = "none"
        out["embedding"] = {
            "ok": False,
            "checked": True,
            "error": "this Python's SQLite lacks FTS5; memory search is unavailable",
        }
        return out
    embeddings = settings.embeddings
    if embeddings is None:
        out["provider"] = "fts"
        out["embedding"] = {
            "ok": False,
            "checked": True,
            "error": settings.embeddings_problem or NO_EMBEDDINGS,
        }
        return out
    out["provider"] = embeddings.provider
    out["model"] = embeddings.model
    if not probe:
        out["embedding"] = {"ok": False, "checked": False, "error": NOT_PROBED}
        return out
    # Imported here: the openai SDK is not loaded at start-up for a status call.
    from gateway.agents.memory.embeddings import Embedder, EmbeddingError

    embedder = Embedder(embeddings, timeout_s=10)
    try:
        vectors = await embedder.embed(["ping"])
    except EmbeddingError as exc:
        out["embedding"] = {"ok": False, "checked": True, "error": str(exc)}
    else:
        out["embedding"] = {"ok": bool(vectors and vectors[0]), "checked": True}
    finally:
        await embedder.close()
    return out
