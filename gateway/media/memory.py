"""Give the memory of a big file back to the system once it is on disk.

A 20 MB download or attachment passes through library buffers (PTB and discord.py read a
file whole; a `chat.send` frame carries it base64-encoded). Python frees them, but glibc
keeps large freed blocks in its heap once its adaptive mmap threshold has grown, so the
process would stay bigger by about the largest file seen. After a big file, and a moment
later (so the request's own buffers are gone too), `malloc_trim` hands the free pages back.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging

log = logging.getLogger("media")

BIG_FILE_BYTES = 1024 * 1024
TRIM_DELAYS_S = (0.5, 2.0)  # again later: a request's own buffers outlive its handler
_pending: list[asyncio.TimerHandle] = []


def _libc_trim() -> None:
    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
        pass


def after_big_file(size: int) -> None:
    """Schedule one trim shortly (debounced); no-op for small files or outside a loop."""
    if size < BIG_FILE_BYTES:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    for handle in _pending:
        handle.cancel()
    _pending[:] = [loop.call_later(delay, _libc_trim) for delay in TRIM_DELAYS_S]
