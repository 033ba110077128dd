"""One gateway per state directory, enforced by kernel-held flock locks (config.md §8).

The kernel drops a flock when its holder dies, however it dies, so a crash, SIGKILL or a
container restart that reuses the PID can never leave a lock that blocks the next start. The
JSON payload in the file is for humans and error messages only; PID liveness is never trusted.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from gateway.paths import lock_dir
from gateway.settings import EX_CONFIG, StartupError

log = logging.getLogger("gateway")
ACQUIRE_TIMEOUT_S = 5.0


def _start_ticks() -> int | None:
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            # Field 22; the command name (field 2) may contain spaces, so split after ')'.
            return int(fh.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def read_payload(path: Path) -> dict[str, object]:
    """The JSON object at the start of a lock file, or {} (anything after it is ignored)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
        obj, _ = json.JSONDecoder().raw_decode(text.lstrip())
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


class _Timeout(Exception):
    pass


class _Flock:
    """An exclusive flock on `path`, held through one open descriptor.

    The `filelock` package does the same (the session store uses it), but importing it costs
    ~15 ms, and this lock is taken before the socket listens (`bench/startup.py`).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, timeout: float, poll_s: float = 0.1) -> None:
        deadline = time.monotonic() + timeout
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() >= deadline:
                    raise _Timeout(str(self.path)) from None
                time.sleep(poll_s)
                continue
            except BaseException:
                os.close(fd)
                raise
            # A holder unlinks the file before it unlocks (`StateLock.release`): a lock won
            # on that old inode guards nothing, so take it again on the file now at the path.
            try:
                current = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:
                self._fd = fd
                return
            os.close(fd)

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class StateLock:
    """Holds `gateway.state.lock` and the per-config lock for the life of the process."""

    def __init__(
        self, state_dir: Path, config_path: Path, port: int, timeout: float = ACQUIRE_TIMEOUT_S
    ):
        self.dir = lock_dir(state_dir)
        self.state_dir = state_dir
        self.config_path = config_path
        self.port = port
        self.timeout = timeout
        digest = hashlib.sha256(str(config_path).encode()).hexdigest()[:8]
        self.paths = [self.dir / "gateway.state.lock", self.dir / f"gateway.{digest}.lock"]
        self._locks: list[_Flock] = []

    def acquire(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StartupError(
                EX_CONFIG, f"cannot create the lock directory {self.dir}: {exc.strerror}"
            ) from exc
        payload = self._payload()
        for path in self.paths:
            lock = _Flock(path)
            try:
                lock.acquire(self.timeout)
            except _Timeout as exc:
                self.release()
                owner = read_payload(path).get("pid", "unknown")
                raise StartupError(
                    EX_CONFIG,
                    f"gateway already running (pid {owner}); lock timeout after"
                    f" {int(self.timeout * 1000)}ms",
                    f"Another gateway owns the state directory {self.state_dir}. Stop it, or"
                    " choose a different OPENCLAW_STATE_DIR, then retry.",
                ) from exc
            except OSError as exc:
                self.release()
                raise StartupError(EX_CONFIG, f"cannot lock {path}: {exc.strerror}") from exc
            self._locks.append(lock)
            self._write(path, payload)

    def release(self) -> None:
        """Remove the payload and drop the locks (clean shutdown)."""
        for lock in reversed(self._locks):
            path = lock.path
            try:
                # Unlink while still holding: a waiter on the old inode sees it gone and retries.
                path.unlink(missing_ok=True)
            except OSError:
                log.warning("could not remove lock file %s", path)
            lock.release()
        self._locks.clear()

    def _payload(self) -> dict[str, object]:
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        payload: dict[str, object] = {
            "pid": os.getpid(),
            "ownerId": str(uuid.uuid4()),
            "createdAt": now,
            "startedAt": now,
            "configPath": str(self.config_path),
            "stateDir": str(self.state_dir),
            "port": self.port,
        }
        ticks = _start_ticks()
        if ticks is not None:
            payload["startTime"] = ticks
        return payload

    @staticmethod
    def _write(path: Path, payload: dict[str, object]) -> None:
        # A second descriptor: closing it does not drop the flock held by the first.
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, (json.dumps(payload, indent=2) + "\n").encode())
        finally:
            os.close(fd)

    def __enter__(self) -> StateLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
