"""Core methods: `health` and `status`."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from gateway.protocol.scopes import READ
from gateway.rpc.registry import CallContext, EmptyParams, method

if TYPE_CHECKING:
    from gateway.runtime import Gateway


_HEARTBEAT_OFF = {
    "enabled": False,
    "every": "off",
    "everyMs": None,
    "prompt": "",
    "target": "none",
    "ackMaxChars": 0,
}


def _agent_sessions(gateway: Gateway) -> list[dict[str, Any]]:
    """Per-agent session summaries in the health shape; counts come from the agents service."""
    from gateway.agents import roster as rv

    config = gateway.loaded.config
    default = rv.default_agent_id(config)
    counter = gateway.extensions.get("agents.sessions")
    now = int(time.time() * 1000)
    out = []
    for agent_id in rv.roster(config).agent_ids:
        count, rows = counter(agent_id) if counter is not None else (0, [])
        recent = [
            {"key": key, "updatedAt": updated, "age": max(0, now - updated) if updated else None}
            for key, updated in rows
        ]
        path = gateway.settings.state_dir / "agents" / agent_id / "sessions" / "sessions.json"
        out.append(
            {
                "agentId": agent_id,
                "isDefault": agent_id == default,
                "heartbeat": dict(_HEARTBEAT_OFF),
                "sessions": {"path": str(path), "count": count, "recent": recent},
            }
        )
    return out


def _channels(gateway: Gateway) -> dict[str, Any]:
    summary = gateway.extensions.get("channels.health")
    if summary is not None:
        result: dict[str, Any] = summary()
        return result
    return {"channels": {}, "channelOrder": [], "channelLabels": {}}


async def health_payload(gateway: Gateway) -> dict[str, Any]:
    started = time.perf_counter()
    agents = _agent_sessions(gateway)
    recent: list[Any] = []
    count = 0
    for agent in agents:
        count += agent["sessions"]["count"]
        recent.extend(agent["sessions"]["recent"])
    recent.sort(key=lambda s: s.get("updatedAt") or 0, reverse=True)
    default = next((a["agentId"] for a in agents if a["isDefault"]), agents[0]["agentId"])
    return {
        "ok": True,
        "ts": int(time.time() * 1000),
        "durationMs": int((time.perf_counter() - started) * 1000),
        **_channels(gateway),
        "defaultAgentId": default,
        "agents": agents,
        "sessions": {
            "path": str(gateway.settings.state_dir / "agents"),
            "count": count,
            "recent": recent[:10],
        },
    }


@method("health", scope=READ)
async def health(ctx: CallContext, params: EmptyParams) -> dict[str, Any]:
    return await health_payload(ctx.gateway)


@method("status", scope=READ)
async def status(ctx: CallContext, params: EmptyParams) -> dict[str, Any]:
    gateway = ctx.gateway
    snapshot = await health_payload(gateway)
    settings = gateway.settings
    summarize_channels = gateway.extensions.get("channels.summary")
    return {
        "runtimeVersion": gateway.version,
        "uptimeMs": gateway.uptime_ms,
        "phase": gateway.phase,
        "gateway": {
            "bind": settings.bind,
            "host": settings.host,
            "port": settings.port,
            "authMode": settings.auth.mode,
        },
        "channelSummary": summarize_channels() if summarize_channels else [],
        "sessions": {
            "count": snapshot["sessions"]["count"],
            "recent": snapshot["sessions"]["recent"],
            "byAgent": [{"agentId": a["agentId"], **a["sessions"]} for a in snapshot["agents"]],
        },
        "connections": len(gateway.connections),
        "process": {"pid": os.getpid(), "rssBytes": _rss_bytes()},
    }


def _rss_bytes() -> int | None:
    """Resident memory of this process (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
