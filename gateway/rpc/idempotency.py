"""Answer a retried request by its idempotency key instead of doing the work twice.

`send` and `message.action` put messages on chat platforms: a client that retries after a
timeout (the reference CLI does, for `message.action` send) must get the first answer, and a
retry that arrives while the first call is still sending must wait for it rather than send a
second copy. Failures are not remembered, so a retry after one tries again.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from gateway.protocol.errors import UNAVAILABLE, RpcError

if TYPE_CHECKING:
    from gateway.runtime import Gateway

MEMORY = 500  # answers kept per gateway (oldest forgotten first)
_EXTENSION = "rpc.idempotent"


class IdempotentResults:
    def __init__(self, limit: int = MEMORY) -> None:
        self.limit = limit
        self._results: OrderedDict[str, asyncio.Future[dict[str, Any]]] = OrderedDict()

    async def run(self, key: str, work: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        """`work()`'s result, or the result of the call that used `key` first."""
        earlier = self._results.get(key)
        if earlier is not None:
            # shield: a retry that gives up must not cancel the first call's send.
            return await asyncio.shield(earlier)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._results[key] = future
        try:
            result = await work()
        except BaseException as exc:
            if self._results.get(key) is future:
                del self._results[key]
            # The first caller went away mid-call: a waiting retry must not look cancelled.
            shared = (
                RpcError(
                    UNAVAILABLE, "an earlier request with this idempotency key was interrupted"
                )
                if isinstance(exc, asyncio.CancelledError)
                else exc
            )
            future.set_exception(shared)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        future.set_result(result)
        while len(self._results) > self.limit:
            self._results.popitem(last=False)
        return result


def results(gateway: Gateway) -> IdempotentResults:
    """The gateway's one memory of answered keys (callers prefix keys with their method)."""
    memory = gateway.extensions.get(_EXTENSION)
    if not isinstance(memory, IdempotentResults):
        memory = IdempotentResults()
        gateway.extensions[_EXTENSION] = memory
    return memory
