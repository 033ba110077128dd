"""Idle RSS of the real gateway process after start, median of N runs.

.venv/bin/python bench/memory.py [N] [settle_seconds]
"""

from __future__ import annotations

import statistics
import sys
import time

from _proc import rss_mb, start, stop, wait_healthy


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    settle = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
    samples = []
    for _ in range(runs):
        proc, port = start()
        wait_healthy(port)
        time.sleep(settle)
        samples.append(rss_mb(proc.pid))
        stop(proc)
    print(
        f"idle RSS after {settle:.0f}s: median {statistics.median(samples):.1f} MB, "
        f"min {min(samples):.1f} MB, max {max(samples):.1f} MB over {runs} runs (target <= 60 MB)"
    )


if __name__ == "__main__":
    main()
