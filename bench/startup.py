"""Cold start → first `/healthz` 200, median of N runs of the real `python -m gateway`.

.venv/bin/python bench/startup.py [N]
"""

from __future__ import annotations

import statistics
import sys
import time

from _proc import start, stop, wait_healthy


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc, port = start()
        wait_healthy(port)
        samples.append(time.perf_counter() - t0)
        stop(proc)
    samples.sort()
    print(
        f"startup to /healthz 200: median {statistics.median(samples) * 1000:.0f} ms, "
        f"min {samples[0] * 1000:.0f} ms, max {samples[-1] * 1000:.0f} ms over {runs} runs (target <= 1000 ms)"
    )


if __name__ == "__main__":
    main()
