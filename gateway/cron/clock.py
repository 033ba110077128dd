"""The scheduler's notion of time, injectable so tests drive it instead of waiting."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...

    async def wait(self, delay_ms: int, wake: asyncio.Event) -> None:
        """Return after `delay_ms` of this clock's time, or as soon as `wake` is set."""
        ...


class SystemClock:
    def now_ms(self) -> int:
        return int(time.time() * 1000)

    async def wait(self, delay_ms: int, wake: asyncio.Event) -> None:
        try:
            await asyncio.wait_for(wake.wait(), max(0, delay_ms) / 1000)
        except TimeoutError:
            pass


class ManualClock:
    """A clock that moves only when told (`advance`, `set`); waiters wake when it passes
    their deadline. For tests and benchmarks."""

    def __init__(self, start_ms: int) -> None:
        self._now = start_ms
        self._moved = asyncio.Condition()

    def now_ms(self) -> int:
        return self._now

    async def set(self, ms: int) -> None:
        self._now = ms
        async with self._moved:
            self._moved.notify_all()

    async def advance(self, ms: int) -> None:
        await self.set(self._now + ms)

    async def wait(self, delay_ms: int, wake: asyncio.Event) -> None:
        deadline = self._now + max(0, delay_ms)

        async def passed() -> None:
            async with self._moved:
                await self._moved.wait_for(lambda: self._now >= deadline)

        waiters = [asyncio.ensure_future(passed()), asyncio.ensure_future(wake.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
