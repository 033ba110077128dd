"""Tool costs: registry.invoke overhead on `read`, `exec` start-to-result with and without
the PID namespace, and the memory a 100 MB command output costs.

.venv/bin/python bench/tools.py [N]
"""

from __future__ import annotations

import asyncio
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _proc import pct

from gateway.agents import tools
from gateway.agents.tools import environment
from gateway.agents.tools.policy import allowed_tools
from gateway.agents.tools.registry import Requester, ToolContext, invoke
from gateway.config.models import OpenClawConfig
from providers.types import ToolCall


async def timed(ctx: ToolContext, name: str, n: int, **args: object) -> list[float]:
    allowed = allowed_tools(ctx.config, ctx.agent_id, ctx.requester, tools.load())
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        res = await invoke(ToolCall("c", name, args), allowed, ctx)
        out.append((time.perf_counter() - t0) * 1000)
        assert not res.is_error, res.text
    return sorted(out)


async def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        (ws / "note.md").write_text("hello\n" * 100)
        ctx = ToolContext(
            "main", "agent:main:main", "r", ws, OpenClawConfig(), Requester.operator()
        )
        reads = await timed(ctx, "read", n, path="note.md")
        print(
            f"read (600 B file) via invoke: p50 {pct(reads, 0.5):.2f} ms  p95 {pct(reads, 0.95):.2f} ms"
        )
        ns = await timed(ctx, "exec", n, command="true")
        print(
            f"exec 'true' in a PID namespace: p50 {pct(ns, 0.5):.1f} ms  p95 {pct(ns, 0.95):.1f} ms"
        )
        environment._isolation = []
        plain = await timed(ctx, "exec", n, command="true")
        print(
            f"exec 'true' without namespace: p50 {pct(plain, 0.5):.1f} ms  p95 {pct(plain, 0.95):.1f} ms"
        )
        environment.reset_isolation_cache()
        tracemalloc.start()
        t0 = time.perf_counter()
        await timed(ctx, "exec", 1, command="yes 0123456789 | head -c 100000000")
        took = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"exec of 100 MB output: {took:.2f} s, peak Python allocations {peak / 1e6:.2f} MB,"
            f" process max RSS {rss:.0f} MB"
        )


if __name__ == "__main__":
    asyncio.run(main())
