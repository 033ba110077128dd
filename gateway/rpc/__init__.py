"""RPC methods. Importing this package registers every method module.

A subsystem adds methods by dropping a `<name>_methods.py` module here; nothing else to edit.
"""

import importlib
import pkgutil

from gateway.rpc import core  # noqa: F401  (registers methods)
from gateway.rpc.registry import CallContext, EmptyParams, registry

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name.endswith("_methods"):
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["CallContext", "EmptyParams", "registry"]
