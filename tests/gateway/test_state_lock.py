"""The state lock (gateway/lock.py): one holder per state directory, kernel-held."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from gateway.lock import StateLock
from gateway.settings import StartupError


def test_a_second_holder_times_out_naming_the_first(tmp_path: Path) -> None:
    first = StateLock(tmp_path, tmp_path / "openclaw.json", 1)
    first.acquire()
    try:
        second = StateLock(tmp_path, tmp_path / "openclaw.json", 1, timeout=0.3)
        started = time.monotonic()
        with pytest.raises(StartupError) as info:
            second.acquire()
        assert time.monotonic() - started >= 0.25
        assert f"pid {os.getpid()}" in info.value.lines[0]
    finally:
        first.release()
    assert not any(path.exists() for path in first.paths)  # released: files removed


def test_a_waiter_ends_up_holding_the_file_at_the_path(tmp_path: Path) -> None:
    """The holder unlinks before unlocking; the waiter must not keep a lock on that old inode."""
    first = StateLock(tmp_path, tmp_path / "openclaw.json", 1)
    first.acquire()
    second = StateLock(tmp_path, tmp_path / "openclaw.json", 2, timeout=5)
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            second.acquire()
        except BaseException as exc:
            errors.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.2)
    first.release()
    waiter.join(5)
    assert not errors and not waiter.is_alive()
    try:
        for lock, path in zip(second._locks, second.paths, strict=True):
            assert lock._fd is not None
            assert os.fstat(lock._fd).st_ino == os.stat(path).st_ino
        # And it really excludes a third.
        third = StateLock(tmp_path, tmp_path / "openclaw.json", 3, timeout=0.2)
        with pytest.raises(StartupError):
            third.acquire()
    finally:
        second.release()
