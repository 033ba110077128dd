"""SIGKILL a real process writing the session index at each point of its writes: the index must
always load (nothing set aside as corrupt), keep every acknowledged change and list in order."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from gateway.agents.store import SessionStore

ROOT = Path(__file__).resolve().parents[2]
ROWS = 70  # more than the journal's minimum: a fold every ROWS lines

# The writer bumps `extra.n` of one row after another (each change fsynced, then acknowledged
# on stdout) and, once armed, stops at the chosen point of a write (telling the parent) so the
# kill lands exactly there: mid journal line, a fold's temp file written but not renamed, a
# fold renamed but its journal not yet removed. "free" is killed wherever it happens to be.
_WRITER = r"""
import os, sys
from pathlib import Path
from gateway.agents.store import SessionStore

state, point, start = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
real_write, real_replace, real_unlink = os.write, os.replace, Path.unlink
armed = False


def stop_here(name):
    if armed and point == name:
        print("at", name, flush=True)
        sys.stdin.read()  # the parent kills us now


def write(fd, data):
    if bytes(data[:5]) == b'{"k":':  # a journal line: write half of it, then stop
        if armed and point == "mid-line":
            real_write(fd, bytes(data[: len(data) // 2]))
            stop_here("mid-line")
    return real_write(fd, data)


def replace(src, dst):
    if str(src).endswith(".tmp"):
        stop_here("fold-before-rename")
    real_replace(src, dst)


def unlink(self, missing_ok=False):
    if self.name == "sessions.journal":
        stop_here("fold-before-journal-removed")
    real_unlink(self, missing_ok=missing_ok)


os.write, os.replace, Path.unlink = write, replace, unlink
store = SessionStore(state)
n = start
while True:
    key = f"agent:main:telegram:direct:{n % %(rows)d}"
    store.ensure(key)
    armed = n > start + 3  # let a few changes through first

    def bump(row, n=n):
        row.extra["n"] = n

    store.for_key(key).update_row(key, bump)
    print("acked", key, n, flush=True)
    n += 1
""".replace("%(rows)d", str(ROWS))


def _kill_at(state: Path, point: str, start: int, acked: dict[str, int]) -> int:
    """Run the writer until it stops at `point` (or for a while, "free"), SIGKILL it; returns
    the next counter to start from."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(state), point, str(start)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    last = start
    try:
        assert proc.stdout is not None
        while True:
            line = proc.stdout.readline().decode().split()
            assert line, f"writer exited without reaching {point}"
            if line[0] == "at":
                assert line[1] == point
                break
            _, key, n = line
            acked[key] = last = int(n)
            if point == "free" and last >= start + ROWS + 7:  # past a fold; kill mid-flight
                break
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
    return last + 1


def test_sigkill_at_each_point_of_an_index_write_loses_nothing_acknowledged(
    tmp_path: Path,
) -> None:
    acked: dict[str, int] = {}
    start = 0
    points = ["mid-line", "fold-before-rename", "fold-before-journal-removed", "free"]
    sessions = tmp_path / "agents" / "main" / "sessions"
    for _ in range(2):  # the second round starts on the first one's torn tail and temp file
        for point in points:
            start = _kill_at(tmp_path, point, start, acked)
            store = SessionStore(tmp_path)
            rows = {row.key: row for row in store.for_agent("main").rows()}
            assert list(sessions.glob("sessions.json.corrupt-*")) == [], point
            for key, n in acked.items():
                assert rows[key].extra.get("n", -1) >= n, (point, key)
            listed = [r.key for r in store.list_sessions().rows]
            ordered = sorted(rows.values(), key=lambda r: (r.updated_at, r.key), reverse=True)
            assert listed == [r.key for r in ordered]
    # A temp file of a fold killed before its rename is gone once a later fold ran.
    SessionStore(tmp_path).for_agent("main").compact()
    assert list(sessions.glob("*.tmp")) == []
    assert not (sessions / "sessions.journal").exists()
