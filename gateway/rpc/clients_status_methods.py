"""What the official CLI, TUI and Control UI poll on start (official-clients spec §2.2, §2.3).

Each answer is what clawgate really has: the presence list, the run diagnostics this process
recorded, the devices that earned a device token. Features clawgate does not have (update
channels, plugins, nodes, skills, voice, questions, tasks, branches) get the empty answer
that is true for a gateway without them — never an invented value.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.agents import roster as rv
from gateway.agents.memory.status import memory_status
from gateway.devices import DeviceStore
from gateway.protocol.scopes import ADMIN, APPROVALS, PAIRING, QUESTIONS, READ
from gateway.rpc.registry import CallContext, EmptyParams, method
from gateway.ws.feed import DIAGNOSTICS_CAPACITY, feed_of


class _Params(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


def _now() -> int:
    return int(time.time() * 1000)


# --- presence, heartbeat, diagnostics ---------------------------------------------------------


@method("system-presence", scope=READ, params=EmptyParams)
async def system_presence(ctx: CallContext, params: EmptyParams) -> list[dict[str, Any]]:
    return ctx.gateway.presence()


class StabilityParams(_Params):
    limit: int | None = Field(None, ge=1, le=DIAGNOSTICS_CAPACITY)
    type: str | None = Field(None, max_length=128)


@method("diagnostics.stability", scope=READ, params=StabilityParams)
async def diagnostics_stability(ctx: CallContext, params: StabilityParams) -> dict[str, Any]:
    feed = feed_of(ctx.gateway)
    events = list(feed.diagnostics) if feed is not None else []
    recorded = feed.diagnostics_seq if feed is not None else 0
    by_type: dict[str, int] = {}
    for entry in events:
        by_type[entry["type"]] = by_type.get(entry["type"], 0) + 1
    if params.type:
        events = [e for e in events if e["type"] == params.type]
    if params.limit is not None:
        events = events[-params.limit :]
    result: dict[str, Any] = {
        "generatedAt": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "capacity": DIAGNOSTICS_CAPACITY,
        "count": len(events),
        "dropped": max(0, recorded - DIAGNOSTICS_CAPACITY),
        "events": events,
        "summary": {"byType": by_type},
    }
    if events:
        result["firstSeq"] = events[0]["seq"]
        result["lastSeq"] = events[-1]["seq"]
    return result


# --- honest empties for features clawgate lacks -----------------------------------------------


@method("update.status", scope=ADMIN, params=EmptyParams)
async def update_status(ctx: CallContext, params: EmptyParams) -> dict[str, Any]:
    # clawgate does not update itself: no update check has run, none is pending.
    return {"sentinel": None, "updateAvailable": None}


@method("plugin.approval.list", scope=APPROVALS, params=EmptyParams)
async def plugin_approval_list(ctx: CallContext, params: EmptyParams) -> list[Any]:
    return []  # no plugins, so nothing of theirs waits for approval


@method("openclaw.approval.list", scope=APPROVALS, params=EmptyParams)
async def openclaw_approval_list(ctx: CallContext, params: EmptyParams) -> list[Any]:
    return []


@method("question.list", scope=QUESTIONS, params=EmptyParams)
async def question_list(ctx: CallContext, params: EmptyParams) -> dict[str, Any]:
    return {"questions": []}  # agents here never pause to ask the operator


@method("sessions.observer.visibility", scope=READ, params=EmptyParams)
async def observer_visibility(ctx: CallContext, params: EmptyParams) -> dict[str, Any]:
    # The reference pauses background work while nobody watches; clawgate never does, so
    # the notice changes nothing and is acknowledged.
    return {"ok": True}


@method("tasks.list", scope=READ, params=EmptyParams)
async def tasks_list(ctx: CallContext, params: EmptyParams) -> dict[str, Any]:
    return {"tasks": []}  # no background task registry yet


@method("talk.catalog", scope=READ, params=EmptyParams)
async def talk_catalog(ctx: CallContext, params: EmptyParams) -> dict[str, Any]:
    return {
        "modes": [],
        "transports": [],
        "brains": [],
        "speech": {"providers": []},
        "transcription": {"providers": []},
        "realtime": {"providers": []},
    }


@method("plugins.list", scope=READ, params=EmptyParams)
async def plugins_list(ctx: CallContext, params: EmptyParams) -> dict[str, Any]:
    return {"plugins": [], "diagnostics": [], "mutationAllowed": False}


@method("environments.list", scope=READ, params=EmptyParams)
async def environments_list(ctx: CallContext, params: EmptyParams) -> dict[str, Any]:
    return {"environments": []}


@method("node.list", scope=READ, params=EmptyParams)
async def node_list(ctx: CallContext, params: EmptyParams) -> dict[str, Any]:
    return {"ts": _now(), "nodes": []}  # no node hosts can pair with clawgate


@method("node.pair.list", scope=PAIRING, params=EmptyParams)
async def node_pair_list(ctx: CallContext, params: EmptyParams) -> dict[str, Any]:
    return {"pending": [], "paired": []}


@method("progressCard.get", scope=READ, params=EmptyParams)
async def progress_card(ctx: CallContext, params: EmptyParams) -> dict[str, Any]:
    return {"card": None}


@method("sessions.branches.list", scope=READ, params=EmptyParams)
async def branches_list(ctx: CallContext, params: EmptyParams) -> dict[str, Any]:
    return {"branches": []}  # transcripts here are linear


@method("sessions.companion.state", scope=READ, params=EmptyParams)
async def companion_state(ctx: CallContext, params: EmptyParams) -> dict[str, Any]:
    return {"exchanges": []}


@method("users.prefs.get", scope=READ, params=EmptyParams)
async def users_prefs_get(ctx: CallContext, params: EmptyParams) -> dict[str, Any]:
    # Operators authenticate with a shared secret or a device, never as a user profile.
    return {"status": "no_durable_identity"}


class AgentScopedParams(_Params):
    agent_id: str | None = Field(None, alias="agentId", max_length=128)


@method("skills.status", scope=READ, params=AgentScopedParams)
async def skills_status(ctx: CallContext, params: AgentScopedParams) -> dict[str, Any]:
    config = ctx.gateway.loaded.config
    agent_id = params.agent_id or rv.default_agent_id(config)
    workspace = rv.workspace_dir(config, agent_id, ctx.gateway.settings.state_dir)
    return {
        "workspaceDir": str(workspace),
        "managedSkillsDir": str(ctx.gateway.settings.state_dir / "skills"),
        "agentId": agent_id,
        "skills": [],  # clawgate loads no skills
    }


class MemoryStatusParams(AgentScopedParams):
    probe: bool = False
    deep: bool = False


@method("doctor.memory.status", scope=READ, params=MemoryStatusParams)
async def doctor_memory_status(ctx: CallContext, params: MemoryStatusParams) -> dict[str, Any]:
    config = ctx.gateway.loaded.config
    agent_id = params.agent_id or rv.default_agent_id(config)
    state_dir = ctx.gateway.settings.state_dir
    workspace = rv.workspace_dir(config, agent_id, state_dir)
    return await memory_status(
        config, agent_id, workspace, state_dir, probe=params.probe or params.deep
    )


# --- devices ----------------------------------------------------------------------------------


@method("device.pair.list", scope=PAIRING, params=EmptyParams)
async def device_pair_list(ctx: CallContext, params: EmptyParams) -> dict[str, Any]:
    store = ctx.gateway.extensions.get("devices")
    if not isinstance(store, DeviceStore):
        store = DeviceStore(ctx.gateway.settings.state_dir)
    connected = frozenset(
        c.admitted.device_id
        for c in ctx.gateway.connections
        if c.admitted is not None and c.admitted.device_id and c.state == "open"
    )
    return {"pending": [], "paired": store.paired(connected)}
