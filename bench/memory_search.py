"""memory_search latency over a 10 MB memory folder, and index build time.

.venv/bin/python bench/memory_search.py [megabytes] [queries]

Writes a synthetic workspace (MEMORY.md + daily notes of ~10 KB each, vocabulary of a few
thousand words), builds the FTS5 index from scratch (cold build), re-opens it as after a
restart, then times `MemorySearcher.search` — the whole memory_search path: the
incremental stat walk over every file, the BM25 query and the snippets — for a set of
queries, and prints p50/p95 (wall) and the CPU-time p50 (all threads).
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _proc import pct

from gateway.agents.memory.index import MemoryIndex
from gateway.agents.memory.search import MemorySearcher
from gateway.agents.memory.settings import MemorySettings

NOTE_BYTES = 10_000


def vocabulary(rng: random.Random, size: int = 5000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(3, 10))) for _ in range(size)]


def write_workspace(root: Path, megabytes: float, rng: random.Random) -> tuple[int, int]:
    words = vocabulary(rng)
    notes = root / "memory"
    notes.mkdir(parents=True)
    target = int(megabytes * 1_000_000)
    written = files = 0
    day = date(2020, 1, 1)
    while written < target:
        lines = []
        size = 0
        while size < NOTE_BYTES:
            line = "- " + " ".join(rng.choice(words) for _ in range(rng.randint(6, 18)))
            lines.append(line)
            size += len(line) + 1
        text = f"# {day.isoformat()}\n\n" + "\n".join(lines) + "\n"
        name = "MEMORY.md" if files == 0 else f"memory/{day.isoformat()}.md"
        (root / name).write_text(text)
        written += len(text.encode())
        files += 1
        day += timedelta(days=1)
    return files, written


async def main() -> None:
    megabytes = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    queries = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        db = Path(tmp) / "state" / "index.sqlite"
        files, size = write_workspace(ws, megabytes, rng)
        started = time.perf_counter()
        stats = MemoryIndex(db, ws).sync()
        build_s = time.perf_counter() - started
        searcher = MemorySearcher(db, ws, MemorySettings())
        started = time.perf_counter()
        await searcher.search("warm up", 6, 0.0)  # open + stat walk after a "restart"
        reopen_ms = (time.perf_counter() - started) * 1000
        words = vocabulary(random.Random(7))
        samples: list[float] = []
        cpu: list[float] = []
        found = 0
        for _ in range(queries):
            q = " ".join(rng.choice(words) for _ in range(rng.randint(1, 4)))
            t0, c0 = time.perf_counter(), time.process_time()
            outcome = await searcher.search(q, 6, 0.0)
            samples.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
            found += bool(outcome.results)
        await searcher.close()
    print(
        f"memory folder: {files} files, {size / 1e6:.1f} MB, {stats.chunks} chunks\n"
        f"index build (cold): {build_s:.2f} s\n"
        f"first search after restart (open + stat walk): {reopen_ms:.1f} ms\n"
        f"memory_search over {queries} queries ({found} with hits): "
        f"p50 {pct(samples, 0.5):.2f} ms, p95 {pct(samples, 0.95):.2f} ms wall; "
        f"CPU p50 {pct(cpu, 0.5):.2f} ms (wall time suffers on a loaded machine)"
    )


if __name__ == "__main__":
    asyncio.run(main())
