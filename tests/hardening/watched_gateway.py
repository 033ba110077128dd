"""`python -m tests.hardening.watched_gateway ...`: the real gateway CLI with the config watcher
attached, for real-process tests until `gateway/assembly.py` attaches it itself (idempotent)."""

from __future__ import annotations

import sys
from typing import Any

import gateway.assembly as assembly
from gateway.config.watch import attach

_build = assembly.build_gateway


def _build_with_watch(settings: Any, loaded: Any) -> Any:
    gw = _build(settings, loaded)
    attach(gw)
    return gw


assembly.build_gateway = _build_with_watch

if __name__ == "__main__":
    from gateway.cli import main

    sys.exit(main())
