"""RPC methods. Every `<name>_methods.py` module here (and `core`) registers its methods when
imported; the registry imports them all on its first lookup, or at `load_methods()`.

A subsystem adds methods by dropping a `<name>_methods.py` module here; nothing else to edit.
"""

import importlib
import pkgutil

from gateway.rpc.registry import CallContext, EmptyParams, registry


def _import_method_modules() -> None:
    importlib.import_module(f"{__name__}.core")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.endswith("_methods"):
            importlib.import_module(f"{__name__}.{info.name}")


registry.set_loader(_import_method_modules)


def load_methods() -> None:
    """Import every method module (each registers its methods); idempotent."""
    registry.load()


__all__ = ["CallContext", "EmptyParams", "load_methods", "registry"]
