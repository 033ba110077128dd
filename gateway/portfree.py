"""`--force`: find and stop whatever listens on our port (Linux /proc), refusing to kill a gateway
from a non-interactive shell."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path

from gateway.settings import StartupError

log = logging.getLogger("gateway")


def listener_pids(port: int) -> list[int]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            # local_address is HEX_IP:HEX_PORT; state 0A is LISTEN.
            if len(cols) > 9 and cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(cols[9])
    pids: list[int] = []
    if not inodes:
        return pids
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    link = os.readlink(fd)
                    if link.startswith("socket:[") and link[8:-1] in inodes:
                        pids.append(int(proc.name))
                        break
    return pids


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _is_gateway(argv: list[str]) -> bool:
    joined = " ".join(argv)
    return "-m gateway" in joined or ("openclaw" in joined and "gateway" in joined)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str, port: int) -> None:
    for pid in listener_pids(port):
        argv = _cmdline(pid)
        if _is_gateway(argv) and not sys.stdin.isatty():
            raise StartupError(
                1,
                "Refusing to stop a running gateway from a non-interactive shell; use a different"
                f" --port for testing. Gateway listener pid: {pid}.",
            )
        name = Path(argv[0]).name if argv and argv[0] else "?"
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 2.0
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        log.info("force: killed pid %d (%s) on port %d", pid, name, port)
    deadline = time.monotonic() + 3.0
    while not _bindable(host, port) and time.monotonic() < deadline:
        time.sleep(0.1)
