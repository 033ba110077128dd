"""Cold start → first `/healthz` 200, median of N runs of the real `python -m gateway`.

Also the CPU time the process had used when `/healthz` first answered (user + system, from
/proc): on a shared machine the wall time includes waiting for a core, the CPU time does not.
Then the time to `/startupz` 200 (the subsystems imported in the start-up thread and started).
The project's modules are byte-compiled first, as `pip install` does in the image (this shell
may set PYTHONDONTWRITEBYTECODE, which would otherwise compile ~30 modules on every start).

.venv/bin/python bench/startup.py [N]
"""

from __future__ import annotations

import compileall
import os
import statistics
import sys
import time
import urllib.request

from _proc import ROOT, cpu_s, start, stop, wait_healthy


def wait_started(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/startupz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.005)
    raise RuntimeError("gateway did not start")


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    for package in ("gateway", "channels", "providers"):
        compileall.compile_dir(ROOT / package, quiet=1)
    wall, cpu, started = [], [], []
    load = os.getloadavg()[0]
    for _ in range(runs):
        t0 = time.perf_counter()
        proc, port = start()
        wait_healthy(port)
        wall.append(time.perf_counter() - t0)
        cpu.append(cpu_s(proc.pid))
        wait_started(port)
        started.append(time.perf_counter() - t0)
        stop(proc)
    wall.sort()
    print(
        f"startup to /healthz 200: median {statistics.median(wall) * 1000:.0f} ms, "
        f"min {wall[0] * 1000:.0f} ms, max {wall[-1] * 1000:.0f} ms over {runs} runs (target <= 300 ms)"
    )
    print(
        f"CPU time of the process at that moment: median {statistics.median(cpu) * 1000:.0f} ms,"
        f" min {min(cpu) * 1000:.0f} ms"
    )
    print(
        f"startup to /startupz 200 (everything started): median {statistics.median(started) * 1000:.0f} ms"
    )
    print(f"load average at the start: {load:.2f} ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
