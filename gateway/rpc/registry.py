"""The method registry: adding an RPC method is one decorated function.

@method("health", scope=READ)
async def health(ctx: CallContext, params: EmptyParams) -> dict[str, Any]: ...
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.protocol.errors import INVALID_REQUEST, RpcError
from gateway.protocol.frames import describe

if TYPE_CHECKING:
    from gateway.runtime import Gateway
    from gateway.ws.connection import Connection


class EmptyParams(BaseModel):
    # Unknown optional params are accepted and ignored (protocol.md §6).
    model_config = ConfigDict(extra="allow")


@dataclass(frozen=True)
class CallContext:
    gateway: Gateway
    conn: Connection | None
    # The request's id: a method that answers twice (`agent`: accepted, then final) sends its
    # first answer under it.
    request_id: str | None = None


P = TypeVar("P", bound=BaseModel)
Handler = Callable[[CallContext, Any], Awaitable[Any]]


@dataclass(frozen=True)
class MethodSpec:
    name: str
    scope: str
    params: type[BaseModel]
    handler: Handler
    # Listed in hello-ok `features.methods`. A method only partly implemented stays unlisted:
    # the Control UI calls such methods only when listed, other clients call them anyway.
    listed: bool = True

    def parse(self, raw: Any) -> BaseModel:
        try:
            return self.params.model_validate({} if raw is None else raw)
        except ValidationError as exc:
            raise RpcError(INVALID_REQUEST, f"invalid {self.name} params: {describe(exc)}") from exc


class Registry:
    def __init__(self) -> None:
        self._methods: dict[str, MethodSpec] = {}
        # Imports the method modules on first lookup (gateway/rpc/__init__.py sets it), so a
        # process can listen before it has paid for them; the lock makes a lookup from the
        # event loop wait for a load running in the start-up thread instead of racing it.
        self._loader: Callable[[], None] | None = None
        self._lock = threading.RLock()

    def set_loader(self, loader: Callable[[], None]) -> None:
        self._loader = loader

    def load(self) -> None:
        """Register every method now (idempotent)."""
        if self._loader is None:
            return
        with self._lock:
            loader, self._loader = self._loader, None
            if loader is not None:
                try:
                    loader()
                except BaseException:
                    self._loader = loader
                    raise

    def method(
        self, name: str, *, scope: str, params: type[P] | None = None, listed: bool = True
    ) -> Callable[
        [Callable[[CallContext, P], Awaitable[Any]]], Callable[[CallContext, P], Awaitable[Any]]
    ]:
        def register(
            fn: Callable[[CallContext, P], Awaitable[Any]],
        ) -> Callable[[CallContext, P], Awaitable[Any]]:
            if name in self._methods:
                raise ValueError(f"method {name!r} registered twice")
            self._methods[name] = MethodSpec(name, scope, params or EmptyParams, fn, listed)
            return fn

        return register

    def get(self, name: str) -> MethodSpec | None:
        self.load()
        return self._methods.get(name)

    def names(self) -> list[str]:
        self.load()
        return list(self._methods)

    def advertised(self) -> list[str]:
        """The methods hello-ok lists (`features.methods`)."""
        return [name for name in self.names() if self._methods[name].listed]


registry = Registry()
method = registry.method
