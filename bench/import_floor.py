"""Which part of the full-feature RSS is ours: the gateway against the libraries it loads.

1. bench/memory_full.py's scenario (one round: every outbound client used once, then the
   OpenAI fallback) runs the real gateway with everything on. At the end the gateway writes
   the names of the modules it has loaded: this script puts a `sitecustomize` on the
   gateway's PYTHONPATH whose thread waits for a trigger file (the product has no such hook).
2. Fresh interpreters (no PYTHONPATH) import exactly those modules, in the order the gateway
   loaded them: the standard library's, then also the third-party ones. Nothing of
   gateway/, channels/ or providers/ is imported there.

The floor is what those libraries cost by being imported (their code, their import-time data
such as aiohttp's two TLS contexts); the rest of the gateway's RSS is ours: our modules, the
config, sessions, memory index, cron, SDK client objects, threads, allocator slack.

    .venv/bin/python bench/import_floor.py
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from _proc import rss_mb
from memory_full import drive, title

OURS = frozenset({"gateway", "channels", "providers", "__main__", "__mp_main__", "sitecustomize"})

# Runs inside the gateway (via PYTHONPATH): on `<out>.go`, writes sys.modules' names to `<out>`.
DUMPER = textwrap.dedent(
    """
    import os, sys, threading, time

    def _dump(out):
        while not os.path.exists(out + ".go"):
            time.sleep(0.2)
        with open(out + ".tmp", "w") as fh:
            fh.write("\\n".join(list(sys.modules)))
        os.replace(out + ".tmp", out)

    if os.environ.get("CLAWGATE_BENCH_MODULES"):
        threading.Thread(target=_dump, args=(os.environ["CLAWGATE_BENCH_MODULES"],), daemon=True).start()
    """
)

# Runs in a fresh interpreter: imports the listed modules, reports RSS after each group.
IMPORTER = textwrap.dedent(
    """
    import importlib, json, sys
    from collections import Counter

    def rss():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

    groups = json.load(open(sys.argv[1]))
    out = {"bare": rss(), "groups": [], "failed": [], "by_package": Counter()}
    for name, modules in groups:
        for module in modules:
            before = rss()
            try:
                importlib.import_module(module)
            except BaseException as exc:
                out["failed"].append(f"{module}: {type(exc).__name__}")
            out["by_package"][module.split(".")[0]] += rss() - before
        out["groups"].append([name, rss(), len(sys.modules)])
    print(json.dumps(out))
    """
)


def classify(names: list[str]) -> tuple[list[str], list[str], int]:
    """(stdlib modules, third-party modules, count of ours), in the gateway's load order."""
    stdlib, third, ours = [], [], 0
    for name in names:
        top = name.split(".")[0]
        if top in OURS:
            ours += 1
        elif top in sys.stdlib_module_names or top in sys.builtin_module_names:
            stdlib.append(name)
        else:
            third.append(name)
    return stdlib, third, ours


def floor(groups: list[tuple[str, list[str]]]) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(groups, fh)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", IMPORTER, fh.name],
        cwd=tempfile.gettempdir(),  # not the checkout: nothing of ours is importable there
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    os.unlink(fh.name)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="clawgate-import-floor-"))
    (work / "sitecustomize.py").write_text(DUMPER)
    out = work / "modules.txt"
    os.environ["PYTHONPATH"] = str(work)  # the gateway inherits the environment
    os.environ["CLAWGATE_BENCH_MODULES"] = str(out)
    gateway_rss: list[float] = []

    async def dump(pid: int) -> None:
        gateway_rss.append(rss_mb(pid))
        await asyncio.to_thread(Path(f"{out}.go").touch)
        deadline = time.monotonic() + 30
        while not await asyncio.to_thread(out.exists):
            if time.monotonic() > deadline:
                raise RuntimeError("the gateway did not write its module list")
            await asyncio.sleep(0.1)

    try:
        await drive(1, dump)
    finally:
        del os.environ["PYTHONPATH"], os.environ["CLAWGATE_BENCH_MODULES"]
    names = out.read_text().split("\n")
    stdlib, third, ours = classify(names)
    result = floor([("stdlib", stdlib), ("third-party", third)])
    bare = float(result["bare"])
    groups = {g[0]: g for g in result["groups"]}
    with_stdlib, with_all = float(groups["stdlib"][1]), float(groups["third-party"][1])
    full = gateway_rss[0]
    print(f"{title()}; each client used once")
    print(
        f"modules loaded by the gateway: {len(names)} ({len(stdlib)} stdlib,"
        f" {len(third)} third-party, {ours} ours)"
    )
    print(f"  bare interpreter                          {bare:6.1f} MB")
    print(f"  + the stdlib modules the gateway loaded   {with_stdlib:6.1f} MB")
    print(f"  + the third-party modules it loaded       {with_all:6.1f} MB  (the floor)")
    print(f"  the gateway, everything on                {full:6.1f} MB")
    print(
        f"  ours: {full - with_all:.1f} MB ({(full - with_all) / full:.0%} of the gateway's RSS);"
        f" libraries and interpreter: {with_all:.1f} MB"
    )
    by_package = sorted(result["by_package"].items(), key=lambda kv: -kv[1])
    top = ", ".join(f"{name} {mb:.1f}" for name, mb in by_package[:12])
    print(f"  largest imports (MB, in the gateway's load order, shared deps with the first): {top}")
    failed = result["failed"]
    if failed:
        print(f"  {len(failed)} modules could not be imported alone: {', '.join(failed[:8])}")


if __name__ == "__main__":
    asyncio.run(main())
