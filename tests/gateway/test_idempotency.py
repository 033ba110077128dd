"""gateway.rpc.idempotency: a repeated key is answered once, failures are retried."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest

from gateway.protocol.errors import RpcError
from gateway.rpc.idempotency import IdempotentResults


async def test_a_retry_waits_for_the_first_call_and_gets_its_answer() -> None:
    memory = IdempotentResults()
    calls = 0
    release = asyncio.Event()

    async def work() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        await release.wait()
        return {"n": calls}

    first = asyncio.create_task(memory.run("k", work))
    second = asyncio.create_task(memory.run("k", work))
    await asyncio.sleep(0)
    release.set()
    assert await first == await second == {"n": 1}
    assert await memory.run("k", work) == {"n": 1} and calls == 1


async def test_failures_are_not_remembered() -> None:
    memory = IdempotentResults()
    attempts: list[int] = []

    async def flaky() -> dict[str, Any]:
        attempts.append(1)
        if len(attempts) == 1:
            raise RpcError("UNAVAILABLE", "down")
        return {"ok": True}

    with pytest.raises(RpcError, match="down"):
        await memory.run("k", flaky)
    assert await memory.run("k", flaky) == {"ok": True} and len(attempts) == 2


async def test_a_cancelled_first_call_fails_its_waiters_without_cancelling_them() -> None:
    memory = IdempotentResults()
    started = asyncio.Event()

    async def slow() -> dict[str, Any]:
        started.set()
        await asyncio.sleep(60)
        return {}

    first = asyncio.create_task(memory.run("k", slow))
    await started.wait()
    waiter = asyncio.create_task(memory.run("k", slow))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(RpcError, match="interrupted"):
        await waiter
    assert first.cancelled()


async def test_oldest_answers_are_forgotten_past_the_limit() -> None:
    memory = IdempotentResults(limit=2)
    for n in range(3):
        await memory.run(f"k{n}", functools.partial(_value, n))
    assert await memory.run("k0", functools.partial(_value, 99)) == {"n": 99}
    assert await memory.run("k2", functools.partial(_value, 99)) == {"n": 2}


async def _value(n: int) -> dict[str, Any]:
    return {"n": n}
