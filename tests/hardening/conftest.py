"""Shared fixtures for the hardening suite, and a summary of how many fuzz cases ran."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hardening.fuzzcount import COUNTS
from tests.harness import LiveGateway, live_gateway


@pytest.fixture(scope="module")
def threaded_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    """A live gateway on its own loop in a thread, so hypothesis can drive it synchronously."""
    loop = asyncio.new_event_loop()
    ready: dict[str, Any] = {}
    started = threading.Event()
    stop = asyncio.Event()

    async def main() -> None:
        try:
            async with live_gateway(Path(tmp_path_factory.mktemp("hardening"))) as live:
                ready["live"] = live
                ready["loop"] = asyncio.get_running_loop()
                started.set()
                await stop.wait()
        finally:
            started.set()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(20) and "live" in ready
    yield ready["live"]
    loop.call_soon_threadsafe(stop.set)
    thread.join(15)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if COUNTS:
        terminalreporter.write_sep("-", "hardening fuzz cases tried")
        for name, count in COUNTS.items():
            terminalreporter.write_line(f"{name:<56} {count:>7}")
        # Indented names break a figure down; they are not cases of their own.
        total = sum(n for name, n in COUNTS.items() if not name.startswith(" "))
        terminalreporter.write_line(f"{'total':<56} {total:>7}")
