"""Per-turn cost of reading a session's transcript, by session length (issue 22).

In process, no gateway: an `AgentSessionStore` in a temporary state dir, one session filled
with TURNS turns (a user message and an answer with usage; every third turn also a tool call
with a 2 KB result), then MEASURED more turns (the session grows by that much while measured)
each doing what the runner does with the store:
`model_history` (the history fed to the model), the user message appended, the answer
appended. Prints the CPU time (median, µs) at 10 / 100 / 1,000 turns of: one
`Transcript.read` after one appended event (the parse), `model_history` (the read plus the
store's projection of the window), and the whole store part of a turn.
`CLAWGATE_TRANSCRIPT_CACHE_MB=0` turns the transcript cache off: every read parses the whole
file, as before issue 22.

Memory: the Python heap the parsed events of one 1,000-turn session take (tracemalloc) next
to the file's size, and the RSS of a fresh process after reading SESSIONS sessions of 20
turns once each (what the transcript cache keeps of them).

    .venv/bin/python bench/transcript.py [measured turns, default 20] [sessions, default 2000]
"""

from __future__ import annotations

import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from gateway.agents.store import AgentSessionStore  # noqa: E402
from gateway.agents.transcript import PARSED_CACHE, Transcript  # noqa: E402

KEY = "agent:main:main"
SIZES = (10, 100, 1000)


def user(n: int) -> dict[str, Any]:
    return {"role": "user", "content": f"question {n}: " + "words " * 30, "timestamp": n}


def answer(n: int, call: bool) -> list[dict[str, Any]]:
    usage = {"input": 1200 + n, "output": 80, "cacheRead": 0, "cacheWrite": 0, "totalTokens": 1280}
    base = {"api": "anthropic-messages", "provider": "anthropic", "model": "claude-x"}
    if not call:
        text = {"type": "text", "text": f"answer {n}: " + "reply " * 40}
        return [{"role": "assistant", "content": [text], "usage": usage, **base, "timestamp": n}]
    tool_call = {"type": "toolCall", "id": f"c{n}", "name": "read", "arguments": {"path": "a.md"}}
    return [
        {"role": "assistant", "content": [tool_call], "usage": usage, **base, "timestamp": n},
        {
            "role": "toolResult",
            "toolCallId": f"c{n}",
            "toolName": "read",
            "content": [{"type": "text", "text": "x" * 2048}],
            "isError": False,
            "timestamp": n,
        },
        {"role": "assistant", "content": [{"type": "text", "text": "done"}], **base},
    ]


def turn(store: AgentSessionStore, n: int, sync: bool = True) -> None:
    store.append_messages(KEY, [user(n)], run_id=f"r{n}", sync=False)
    store.append_messages(KEY, answer(n, n % 3 == 0), run_id=f"r{n}", sync=sync)


def fill(store: AgentSessionStore, turns: int) -> None:
    store.ensure(KEY)
    for n in range(turns):
        turn(store, n, sync=False)


def per_turn(turns: int, measured: int) -> tuple[float, float, float, int]:
    """Medians (µs) of model_history and of the store part of a turn, then of one read of
    the transcript after one appended event; and the file's size."""
    with tempfile.TemporaryDirectory(prefix="clawgate-bench-transcript-") as state:
        store = AgentSessionStore(Path(state), "main")
        fill(store, turns)
        history_us: list[float] = []
        turn_us: list[float] = []
        for n in range(turns, turns + measured):
            start = time.process_time()
            store.model_history(KEY)
            mid = time.process_time()
            turn(store, n)
            end = time.process_time()
            history_us.append((mid - start) * 1e6)
            turn_us.append((end - start) * 1e6)
        row = store.get(KEY)
        assert row is not None
        transcript = store.transcript(row.session_id)
        read_us: list[float] = []
        for n in range(measured):
            transcript.append("custom", customType="bench", data={"n": n})
            start = time.process_time()
            transcript.read()
            read_us.append((time.process_time() - start) * 1e6)
        size = transcript.path.stat().st_size
        return (
            statistics.median(history_us),
            statistics.median(turn_us),
            statistics.median(read_us),
            size,
        )


def parsed_heap(turns: int) -> tuple[int, int]:
    """(file bytes, heap bytes of the parsed events) of one session of `turns` turns."""
    with tempfile.TemporaryDirectory(prefix="clawgate-bench-transcript-") as state:
        store = AgentSessionStore(Path(state), "main")
        fill(store, turns)
        row = store.get(KEY)
        assert row is not None
        path = store.transcript_path(row.session_id)
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        events = Transcript(path).events()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert events
        return path.stat().st_size, after - before


def rss_child(sessions: int) -> None:
    """Read `sessions` sessions of 20 turns once each; print RSS before and after (MB)."""
    with tempfile.TemporaryDirectory(prefix="clawgate-bench-transcript-") as state:
        store = AgentSessionStore(Path(state), "main")
        keys = [f"agent:main:s{i}" for i in range(sessions)]
        for key in keys:
            store.ensure(key)
            for n in range(20):
                store.append_messages(key, [user(n)], sync=False)
                store.append_messages(key, answer(n, n % 3 == 0), sync=False)
        store = AgentSessionStore(Path(state), "main")  # a restart: nothing parsed yet
        gc.collect()
        before = rss_mb()
        for key in keys:
            store.model_history(key)
        gc.collect()
        print(json.dumps({"before": before, "after": rss_mb()}))


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * 4096 / 1e6


def main(measured: int, sessions: int) -> None:
    budget = PARSED_CACHE.max_bytes / 1024 / 1024
    print(f"store part of a turn (CPU, median of {measured}), transcript cache {budget:g} MiB")
    for size in SIZES:
        history, whole, read, file_bytes = per_turn(size, measured)
        print(
            f"  {size:>5} turns ({file_bytes / 1e6:4.2f} MB file): read {read:6.0f} µs   "
            f"model_history {history:6.0f} µs   whole store part {whole:6.0f} µs"
        )
    file_bytes, heap = parsed_heap(1000)
    print(
        f"parsed events of a 1,000-turn session: {heap / 1e6:.2f} MB heap for a "
        f"{file_bytes / 1e6:.2f} MB file ({heap / file_bytes:.1f}× the file)"
    )
    out = subprocess.run(
        [sys.executable, __file__, "--rss", str(sessions)], capture_output=True, text=True
    )
    if out.returncode != 0:
        sys.exit(out.stderr)
    rss = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"RSS reading {sessions} sessions of 20 turns once each: {rss['before']:.1f} → "
        f"{rss['after']:.1f} MB (+{rss['after'] - rss['before']:.1f} MB)"
    )


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--rss":
        rss_child(int(sys.argv[2]))
    else:
        args = [int(a) for a in sys.argv[1:3]]
        main(*(args + [20, 2000][len(args) :]))
