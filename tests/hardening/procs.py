"""Real gateway processes for the hardening tests: output captured line by line, awaitable."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from tests.harness import ROOT


class Output:
    """Collects a process's merged stdout/stderr in a thread; `wait_for` blocks on a condition."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 10.0) -> list[str]:
        """The matching lines once at least `count` exist; AssertionError after `timeout`."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                hits = [line for line in self.lines if rx.search(line)]
                if len(hits) >= count:
                    return hits
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._thread.is_alive()):
                    raise AssertionError(
                        f"no {count}x {pattern!r} in output:\n" + "\n".join(self.lines[-60:])
                    )
                self._cond.wait(min(left, 0.5))

    def text(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def join(self, timeout: float = 10.0) -> None:
        self._thread.join(timeout)


def start_gateway(
    args: list[str], env: Mapping[str, str], module: str = "gateway", cwd: Path | None = None
) -> tuple[subprocess.Popen[str], Output]:
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        env=dict(env),
        cwd=cwd or ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, Output(proc)


def stop(proc: subprocess.Popen[str], out: Output, sig: int = 15, timeout: float = 10) -> str:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    out.join()
    return out.text()
