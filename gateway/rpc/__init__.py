"""RPC methods. Importing this package registers every method module."""

from gateway.rpc import core  # noqa: F401  (registers methods)
from gateway.rpc.registry import CallContext, EmptyParams, registry

__all__ = ["CallContext", "EmptyParams", "registry"]
