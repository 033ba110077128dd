"""The agent service: one session store and run queue for all agents, events to watchers."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.agents import roster as rv
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
from gateway.runtime import Service

if TYPE_CHECKING:
    from gateway.runtime import Gateway
    from gateway.ws.connection import Connection

log = logging.getLogger("gateway.agents")

# A model turn: the request, where deltas go, the candidate chain and the system prompt.
ModelTurn = Callable[[RunRequest, DeltaSink, rv.ModelChain, str], Awaitable[RunOutcome]]
IDEMPOTENCY_MEMORY = 1000


class AgentService:
    def __init__(self, gateway: Gateway, model_turn: ModelTurn) -> None:
        self.gateway = gateway
        self._model_turn = model_turn
        cfg = self.config
        defaults = cfg.agents.defaults
        self.store = SessionStore(gateway.settings.state_dir)
        reply: ReplyFn = self._reply
        self.runner = Runner(
            store=self.store,
            reply=reply,
            listener=self._on_event,
            max_concurrent=defaults.max_concurrent,
            timeout_seconds=float(defaults.timeout_seconds),
            queue=rv.queue_settings(cfg),
        )
        self._watchers: dict[str, weakref.WeakSet[Connection]] = {}
        self._run_listeners: dict[str, Callable[[RunEvent], None]] = {}
        self._idempotent: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._bootstrap_cache: dict[Path, tuple[Any, list[BootstrapFile]]] = {}

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
        self, request: SubmitRequest, on_event: Callable[[RunEvent], None] | None = None
    ) -> RunHandle:
        handle = self.runner.submit(request)
        if on_event is not None:
            self._run_listeners[handle.run_id] = on_event
        return handle

    # --- the model boundary -------------------------------------------------------------------

    async def _reply(self, req: RunRequest, sink: DeltaSink) -> RunOutcome:
        cfg = self.config
        chain = rv.model_chain(cfg, req.agent_id)
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
            prompt = self._system_prompt(cfg, req, chain)
        outcome: RunOutcome = await self._model_turn(req, sink, chain, prompt)
        return outcome

    def _system_prompt(self, cfg: OpenClawConfig, req: RunRequest, chain: rv.ModelChain) -> str:
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
                is_group=parsed is not None and parsed.kind in ("group", "channel"),
                group_system_prompt=group_prompt if isinstance(group_prompt, str) else None,
                timezone_name=defaults.user_timezone,
                # memweb: memory goes only to the owner's private sessions (RunRequest gains
                # `requester` from the loop work; until then memory stays out, fail closed).
                requester=getattr(req, "requester", None),
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

    # --- events ---------------------------------------------------------------------------------

    def _on_event(self, event: RunEvent) -> None:
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
            for conn in list(self._watchers.get(session_key, ())):
                conn.send_event("chat", payload)

        asyncio.get_running_loop().call_soon(send)

    def sessions_changed(self, session_key: str, reason: str) -> None:
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
