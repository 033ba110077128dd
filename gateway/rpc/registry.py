"""The method registry: adding an RPC method is one decorated function.

@method("health", scope=READ)
async def health(ctx: CallContext, params: EmptyParams) -> dict[str, Any]: ...
"""

from __future__ import annotations

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

    def parse(self, raw: Any) -> BaseModel:
        try:
            return self.params.model_validate({} if raw is None else raw)
        except ValidationError as exc:
            raise RpcError(INVALID_REQUEST, f"invalid {self.name} params: {describe(exc)}") from exc


class Registry:
    def __init__(self) -> None:
        self._methods: dict[str, MethodSpec] = {}

    def method(
        self, name: str, *, scope: str, params: type[P] | None = None
    ) -> Callable[
        [Callable[[CallContext, P], Awaitable[Any]]], Callable[[CallContext, P], Awaitable[Any]]
    ]:
        def register(
            fn: Callable[[CallContext, P], Awaitable[Any]],
        ) -> Callable[[CallContext, P], Awaitable[Any]]:
            if name in self._methods:
                raise ValueError(f"method {name!r} registered twice")
            self._methods[name] = MethodSpec(name, scope, params or EmptyParams, fn)
            return fn

        return register

    def get(self, name: str) -> MethodSpec | None:
        return self._methods.get(name)

    def names(self) -> list[str]:
        return list(self._methods)


registry = Registry()
method = registry.method
