"""The agent service: one session store and run queue for all agents, events to watchers."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.agents import roster as rv
from gateway.agents import tools as tool_modules
from gateway.agents.history import dm_history_limit
from gateway.agents.loop import Toolset
from gateway.agents.runner import (
    DeltaSink,
    ReplyFn,
    RunEvent,
    RunHandle,
    Runner,
    RunOutcome,
    RunRequest,
    SubmitRequest,
)
from gateway.agents.session_keys import canonical_session_key, parse_session_key
from gateway.agents.store import SessionStore
from gateway.agents.tools.policy import allowed_tools
from gateway.agents.tools.registry import Tool, ToolContext
from gateway.agents.usage_footer import turn_footer, with_footer
from gateway.agents.workspace import (
    BOOTSTRAP_FILES,
    BootstrapFile,
    PromptContext,
    build_system_prompt,
    ensure_workspace,
    load_bootstrap_files,
    load_daily_notes,
    today_in,
)
from gateway.config.models import AgentDefaults, OpenClawConfig
from gateway.protocol.frames import TOOL_EVENTS_CAP
from gateway.runtime import Service

if TYPE_CHECKING:
    from gateway.runtime import Gateway
    from gateway.ws.connection import Connection

log = logging.getLogger("gateway.agents")

# A model turn: the request, where deltas go, the candidate chain, the system prompt and the
# tools the turn may use.
ModelTurn = Callable[[RunRequest, DeltaSink, rv.ModelChain, str, Toolset], Awaitable[RunOutcome]]
IDEMPOTENCY_MEMORY = 1000
WEBCHAT = "webchat"  # the channel of chat.send turns


class AgentService:
    def __init__(self, gateway: Gateway, model_turn: ModelTurn) -> None:
        self.gateway = gateway
        self._model_turn = model_turn
        self._tools: asyncio.Future[dict[str, Tool]] | None = None
        cfg = self.config
        defaults = cfg.agents.defaults
        self.store = SessionStore(gateway.settings.state_dir)
        reply: ReplyFn = self._reply
        self.runner = Runner(
            store=self.store,
            reply=reply,
            listener=self._on_event,
            agent_listener=self._on_agent_event,
            max_concurrent=defaults.max_concurrent,
            timeout_seconds=float(defaults.timeout_seconds),
            queue=rv.queue_settings(cfg),
        )
        self._watchers: dict[str, weakref.WeakSet[Connection]] = {}
        self._run_listeners: dict[str, Callable[[RunEvent], None]] = {}
        self._agent_run_listeners: dict[str, Callable[[dict[str, Any]], None]] = {}
        self._idempotent: OrderedDict[str, dict[str, Any]] = OrderedDict()
        # Runs asked for by chat.send: their `final` carries the usage footer (the channels
        # add theirs on delivery).
        self._webchat_runs: OrderedDict[str, None] = OrderedDict()
        self._bootstrap_cache: dict[Path, tuple[Any, list[BootstrapFile]]] = {}
        # Client feed hook (gateway/ws/feed.py): when set it receives every run event and
        # delivers `chat` itself (to every operator connection, with `agent` events around
        # it) instead of the per-session watchers below.
        self.feed: Callable[[RunEvent], None] | None = None
        # Its `agent` counterpart: the runner's agent events (lifecycle start, tool and item
        # steps) go through the feed to every operator connection, not only to watchers.
        self.agent_feed: Callable[[str, dict[str, Any]], None] | None = None
        self.on_sessions_changed: Callable[[str, str], None] | None = None

    @property
    def config(self) -> OpenClawConfig:
        # Read live so a saved config (config.set) applies to the next turn.
        return self.gateway.loaded.config

    # --- keys and submission ----------------------------------------------------------------

    def session_key(self, key: str | None, agent_id: str | None = None) -> str:
        return canonical_session_key(key, agent_id or rv.default_agent_id(self.config))

    def watch(self, session_key: str, conn: Connection) -> None:
        self._watchers.setdefault(session_key, weakref.WeakSet()).add(conn)

    def remembered(self, idempotency_key: str) -> dict[str, Any] | None:
        return self._idempotent.get(idempotency_key)

    def remember(self, idempotency_key: str, result: dict[str, Any]) -> None:
        self._idempotent[idempotency_key] = result
        while len(self._idempotent) > IDEMPOTENCY_MEMORY:
            self._idempotent.popitem(last=False)

    def submit(
        self,
        request: SubmitRequest,
        on_event: Callable[[RunEvent], None] | None = None,
        on_agent_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> RunHandle:
        if request.max_user_turns is None:
            # DM history window (channels.*.dmHistoryLimit / dms.<peer>.historyLimit; issue 14)
            limit = dm_history_limit(self.config, request.session_key, request.channel)
            request = replace(request, max_user_turns=limit)
        handle = self.runner.submit(request)
        if request.channel == WEBCHAT:
            self._webchat_runs[handle.run_id] = None
            while len(self._webchat_runs) > IDEMPOTENCY_MEMORY:
                self._webchat_runs.popitem(last=False)
        if on_event is not None:
            self._run_listeners[handle.run_id] = on_event
        if on_agent_event is not None:  # tool progress for a channel's preview (issue 20)
            self._agent_run_listeners[handle.run_id] = on_agent_event
        return handle

    # --- the model boundary -------------------------------------------------------------------

    async def _reply(self, req: RunRequest, sink: DeltaSink) -> RunOutcome:
        cfg = self.config
        chain = rv.model_chain(cfg, req.agent_id)
        tools = allowed_tools(cfg, req.agent_id, req.requester, await self.tool_registry())
        override = req.metadata.get("modelOverride")
        if isinstance(override, str) and override.strip():
            # A cron job's own model (payload.model / fallbacks; [] = strict).
            fallbacks = req.metadata.get("fallbacksOverride")
            chain = rv.ModelChain(
                rv.resolve_model_ref(override.strip(), rv.model_aliases(cfg)),
                tuple(fallbacks) if isinstance(fallbacks, list | tuple) else chain.fallbacks,
            )
        prompt = req.system_prompt
        if prompt is None:
            prompt = self._system_prompt(cfg, req, chain, tools)
        outcome: RunOutcome = await self._model_turn(
            req, sink, chain, prompt, self._toolset(cfg, req, tools)
        )
        return outcome

    def _toolset(self, cfg: OpenClawConfig, req: RunRequest, tools: dict[str, Tool]) -> Toolset:
        entry = cfg.agents.entries.get(req.agent_id)
        cap = entry.max_tool_iterations if entry and entry.max_tool_iterations else None
        context = ToolContext(
            agent_id=req.agent_id,
            session_key=req.session_key,
            run_id=req.run_id,
            workspace=rv.workspace_dir(cfg, req.agent_id, self.gateway.settings.state_dir),
            config=cfg,
            requester=req.requester,
            gateway=self.gateway,
        )
        return Toolset(tools, context, cap or cfg.agents.defaults.max_tool_iterations)

    def _system_prompt(
        self,
        cfg: OpenClawConfig,
        req: RunRequest,
        chain: rv.ModelChain,
        tools: Mapping[str, Tool] | None = None,
    ) -> str:
        defaults = cfg.agents.defaults
        workspace = rv.workspace_dir(cfg, req.agent_id, self.gateway.settings.state_dir)
        files = self._bootstrap_files(workspace, defaults)
        parsed = parse_session_key(req.session_key)
        group_prompt = req.metadata.get("groupSystemPrompt")
        return build_system_prompt(
            PromptContext(
                workspace=workspace,
                files=files,
                session_key=req.session_key,
                model_ref=chain.primary,
                tools=[
                    f"{name}: {_summary(t.description)}"
                    for name, t in sorted((tools or {}).items())
                ],
                is_group=parsed is not None and parsed.kind in ("group", "channel"),
                group_system_prompt=group_prompt if isinstance(group_prompt, str) else None,
                timezone_name=defaults.user_timezone,
                # Memory goes only to the owner's private sessions (workspace.py).
                requester=req.requester,
                daily_notes=load_daily_notes(workspace, today_in(defaults.user_timezone)),
            )
        )

    def _bootstrap_files(self, workspace: Path, defaults: AgentDefaults) -> list[BootstrapFile]:
        """The workspace's bootstrap files, re-read only when one of them changed.

        A stat per file is all a turn costs while nothing changes; an edit (mtime or size)
        or a deleted workspace is picked up on the next turn.
        """
        caps = (defaults.bootstrap_max_chars, defaults.bootstrap_total_max_chars)
        stamp = (caps, _stat_stamp(workspace))
        cached = self._bootstrap_cache.get(workspace)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        ensure_workspace(workspace, skip_bootstrap=defaults.skip_bootstrap)
        stamp = (caps, _stat_stamp(workspace))
        files = load_bootstrap_files(workspace, max_chars=caps[0], total_max_chars=caps[1])
        self._bootstrap_cache[workspace] = (stamp, files)
        return files

    async def tool_registry(self) -> Mapping[str, Tool]:
        """The registered tools, their modules imported off the event loop on first use.

        Tool modules pull in heavier libraries (HTML extraction, SQLite FTS, cron parsing);
        importing them inline stalled every other connection for over a second."""
        if self._tools is None:
            self._tools = asyncio.ensure_future(asyncio.to_thread(tool_modules.load))
        return await asyncio.shield(self._tools)

    # --- events ---------------------------------------------------------------------------------

    def _on_event(self, event: RunEvent) -> None:
        if event.state in ("final", "error", "aborted") and event.run_id in self._webchat_runs:
            self._webchat_runs.pop(event.run_id, None)
            if event.state == "final":
                event = self._with_usage_footer(event)
        if self.feed is not None:
            try:
                self.feed(event)
            except Exception:
                log.exception("client feed failed on run %s", event.run_id)
        else:
            for conn in list(self._watchers.get(event.session_key, ())):
                conn.send_event("chat", event.payload)
        listener = self._run_listeners.get(event.run_id)
        if listener is not None:
            try:
                listener(event)
            except Exception:
                log.exception("run listener failed for %s", event.run_id)
            if event.state in ("final", "error", "aborted"):
                self._run_listeners.pop(event.run_id, None)
        if event.state in ("final", "error", "aborted"):
            self._agent_run_listeners.pop(event.run_id, None)

    def _with_usage_footer(self, event: RunEvent) -> RunEvent:
        """`/usage tokens|full` for a chat.send answer: the final message gains the footer
        (the transcript keeps the model's own text)."""
        message = event.payload.get("message")
        if event.silent or event.outcome is None or not isinstance(message, dict):
            return event
        try:
            agent_id = str(event.payload.get("agentId") or rv.default_agent_id(self.config))
            line = turn_footer(
                self.config,
                self.store.get(event.session_key),
                event.outcome,
                agent_id=agent_id,
                channel=WEBCHAT,
            )
        except Exception:  # a footer is never worth losing the answer over
            log.exception("usage footer failed for %s", event.session_key)
            return event
        if not line:
            return event
        text = with_footer(event.text, line)
        shown = {**message, "content": [{"type": "text", "text": text}]}
        return replace(event, payload={**event.payload, "message": shown}, text=text)

    def _on_agent_event(self, session_key: str, payload: dict[str, Any]) -> None:
        run_listener = self._agent_run_listeners.get(str(payload.get("runId")))
        if run_listener is not None:
            try:
                run_listener(payload)
            except Exception:
                log.exception("agent event listener failed for %s", payload.get("runId"))

        if self.agent_feed is not None:
            self.agent_feed(session_key, payload)
            return
        for conn in list(self._watchers.get(session_key, ())):
            if TOOL_EVENTS_CAP in getattr(conn, "caps", ()):
                conn.send_event("agent", payload)

    def announce(self, session_key: str, run_id: str, text: str) -> None:
        """A reply that needed no model (a command's answer) as one `final` chat event.

        Sent on the next loop turn so the request's own response goes out first.
        """
        payload = {
            "runId": run_id,
            "sessionKey": session_key,
            "seq": 1,
            "state": "final",
            "message": {
                "role": "assistant",
                "content": [{"type": "text", "text": text}],
                "timestamp": int(time.time() * 1000),
            },
        }

        def send() -> None:
            if self.feed is not None:
                event = RunEvent("final", run_id, session_key, 1, payload, text)
                self.feed(event)
                return
            for conn in list(self._watchers.get(session_key, ())):
                conn.send_event("chat", payload)

        asyncio.get_running_loop().call_soon(send)

    def sessions_changed(self, session_key: str, reason: str) -> None:
        if self.on_sessions_changed is not None:
            self.on_sessions_changed(session_key, reason)
            return
        self.gateway.broadcast("sessions.changed", {"sessionKey": session_key, "reason": reason})

    # --- summaries ------------------------------------------------------------------------------

    def session_counts(self, agent_id: str) -> tuple[int, list[tuple[str, int]]]:
        """(count, [(key, updatedAt)] newest first) for health and status."""
        page = self.store.list_sessions(agent_id=agent_id, limit=5)
        return page.total_count, [(row.key, row.updated_at) for row in page.rows]

    async def stop(self, drain_s: float) -> None:
        """Let in-flight runs finish for up to `drain_s`, then abort what is left."""
        try:
            await asyncio.wait_for(self.runner.wait_idle(), drain_s)
        except TimeoutError:
            log.warning(
                "stopping with agent runs still in flight after %.0fs; aborting them", drain_s
            )
        await self.runner.close()
        self.store.compact()


def _summary(description: str) -> str:
    first = description.strip().splitlines()[0] if description.strip() else ""
    return first[:160]


def _stat_stamp(workspace: Path) -> tuple[tuple[int, int] | None, ...]:
    out: list[tuple[int, int] | None] = []
    for spec in BOOTSTRAP_FILES:
        try:
            st = os.stat(workspace / spec.name)
            out.append((st.st_mtime_ns, st.st_size))
        except OSError:
            out.append(None)
    return tuple(out)


def attach(gateway: Gateway) -> Service:
    """Create the agent service, expose it to RPC and health; returns its lifetime Service.

    The caller appends the Service after the channels' so that on shutdown the agent runs
    drain first, while channels can still deliver their replies.
    """
    from gateway.agents.model_turn import ModelTurns

    turns = ModelTurns(gateway)
    svc = AgentService(gateway, turns)
    gateway.extensions["agents"] = svc
    gateway.extensions["agents.sessions"] = svc.session_counts

    async def start() -> None:
        return None

    async def stop() -> None:
        await svc.stop(gateway.drain_timeout_s * 0.8)
        await turns.close()

    return Service("agents", start, stop)
