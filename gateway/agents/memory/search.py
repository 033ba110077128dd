"""Memory search for one agent: keep its index current, rank by BM25, optionally blend in
vector similarity (hybrid), and shape results the way `memory_search` returns them."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from gateway.agents.memory.embeddings import Embedder, EmbeddingError
from gateway.agents.memory.index import Hit, MemoryIndex, snippet, unit
from gateway.agents.memory.settings import MemorySettings

log = logging.getLogger("agent/memory")

VECTOR_WEIGHT = 0.7  # the reference's hybrid defaults
TEXT_WEIGHT = 0.3
CANDIDATE_FACTOR = 4
EMBED_PER_SEARCH = 512  # chunks embedded per search at most; the rest on later searches


@dataclass(frozen=True)
class Result:
    path: str
    start_line: int
    end_line: int
    score: float
    snippet: str

    def as_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "startLine": self.start_line,
            "endLine": self.end_line,
            "score": round(self.score, 4),
            "snippet": self.snippet,
            "source": "memory",
            "corpus": "memory",
            "citation": f"{self.path}#L{self.start_line}-L{self.end_line}",
        }


@dataclass
class SearchOutcome:
    results: list[Result]
    provider: str  # "fts" or the embeddings provider
    mode: str  # "keyword" | "hybrid"
    warnings: list[str] = field(default_factory=list)
    took_ms: float = 0.0


class MemorySearcher:
    """One per (database, settings); reused across turns so the index stays open."""

    def __init__(self, db_path: Path, workspace: Path, settings: MemorySettings) -> None:
        self.settings = settings
        self.index = MemoryIndex(
            db_path,
            workspace,
            extra_paths=settings.extra_paths,
            chunk_tokens=settings.chunk_tokens,
            chunk_overlap=settings.chunk_overlap,
        )
        self._embedder = Embedder(settings.embeddings) if settings.embeddings else None
        self._lock = asyncio.Lock()

    async def search(self, query: str, max_results: int, min_score: float) -> SearchOutcome:
        started = time.perf_counter()
        await asyncio.to_thread(self.index.sync)
        warnings: list[str] = []
        if self.settings.embeddings_problem:
            warnings.append(self.settings.embeddings_problem)
        hits = await asyncio.to_thread(self.index.search, query, max_results * CANDIDATE_FACTOR)
        provider, mode = "fts", "keyword"
        if self._embedder is not None:
            try:
                hits = await self._hybrid(query, hits, max_results * CANDIDATE_FACTOR)
                provider, mode = self._embedder.settings.provider, "hybrid"
            except EmbeddingError as exc:
                warnings.append(f"{exc}; keyword results only")
        results = [
            Result(h.path, h.start_line, h.end_line, h.score, snippet(h.text, query))
            for h in hits
            if h.score >= min_score
        ][:max_results]
        took = (time.perf_counter() - started) * 1000
        return SearchOutcome(results, provider, mode, warnings, took)

    async def _hybrid(self, query: str, text_hits: list[Hit], limit: int) -> list[Hit]:
        assert self._embedder is not None
        async with self._lock:  # one embedding backfill at a time
            await asyncio.to_thread(
                self.index.set_embedding_identity, self._embedder.settings.identity
            )
            missing = await asyncio.to_thread(self.index.missing_embeddings, EMBED_PER_SEARCH)
            if missing:
                vectors = await self._embedder.embed([text for _, text in missing])
                await asyncio.to_thread(
                    self.index.store_embeddings,
                    [(cid, vec) for (cid, _), vec in zip(missing, vectors, strict=True)],
                )
        (qvec,) = await self._embedder.embed([query])
        stored = await asyncio.to_thread(self.index.vectors)
        q = unit(qvec)
        sims = sorted(
            ((sum(a * b for a, b in zip(q, vec, strict=False)), cid) for cid, vec in stored),
            reverse=True,
        )[:limit]
        vec_score = {cid: max(0.0, sim) for sim, cid in sims}
        text_score = {h.chunk_id: h.score for h in text_hits}
        by_id = {h.chunk_id: h for h in text_hits}
        need = [cid for cid in vec_score if cid not in by_id]
        by_id.update(await asyncio.to_thread(self.index.chunks, need))
        blended = [
            Hit(
                h.chunk_id,
                h.path,
                h.start_line,
                h.end_line,
                h.text,
                VECTOR_WEIGHT * vec_score.get(cid, 0.0) + TEXT_WEIGHT * text_score.get(cid, 0.0),
            )
            for cid, h in by_id.items()
        ]
        blended.sort(key=lambda h: h.score, reverse=True)
        return blended

    async def close(self) -> None:
        await asyncio.to_thread(self.index.close)
        if self._embedder is not None:
            await self._embedder.close()


_searchers: dict[Path, MemorySearcher] = {}


def searcher_for(db_path: Path, workspace: Path, settings: MemorySettings) -> MemorySearcher:
    """The cached searcher for this database; replaced when the settings change."""
    current = _searchers.get(db_path)
    if (
        current is not None
        and current.settings == settings
        and current.index.workspace == workspace
    ):
        return current
    if current is not None:
        current.index.close()
    fresh = MemorySearcher(db_path, workspace, settings)
    _searchers[db_path] = fresh
    return fresh
