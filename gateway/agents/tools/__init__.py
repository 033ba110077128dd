"""The agent's tools: one module per family (fs, exec, web, memory, automations, ...).

A family adds tools by dropping a module here whose functions use `@tool(...)` from
`registry`; `load()` imports every module of this package once, so nothing else is edited.
`policy` decides which of the registered tools a given turn may use.
"""

from __future__ import annotations

import importlib
import pkgutil

from gateway.agents.tools.registry import REGISTRY, Tool

_INFRA = frozenset({"registry", "policy"})
_loaded = False


def load() -> dict[str, Tool]:
    """Import every tool module (first call only); returns the registry."""
    global _loaded
    if not _loaded:
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            if info.name not in _INFRA and not info.name.startswith("_"):
                importlib.import_module(f"{__name__}.{info.name}")
        _loaded = True
    return REGISTRY
