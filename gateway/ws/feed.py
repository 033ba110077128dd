"""Run events as the official clients follow them (official-clients spec §3).

One run of the agent service becomes, on the wire:
* `agent` events (stream `lifecycle` start/end/error, `assistant` text, and the runner's own
  `item`/`tool` steps) and the `chat` events, to every operator connection with read access
  (the TUI follows runs through them); `tool` steps only to connections with the `tool-events`
  cap, and as `session.tool` to the session's message subscribers;
* `chat.send_timing` (dispatch-started, agent-run-started, first-assistant-event,
  dispatch-completed) to the connection whose `chat.send` started the run;
* `session.message` for each transcript message of the run, to the connections that called
  `sessions.messages.subscribe` for that session;
* `sessions.changed` with the session row at run start and end, to every operator connection
  (clawgate's own Control UI listens without subscribing; `sessions.subscribe` is honoured
  because a subscriber is an operator connection).

It also remembers, for this process, which runs are active per session, so that session rows
carry the status the clients show (`running`, `done`, `failed`, `aborted`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.agents.chat_view import run_messages
from gateway.agents.runner import RunEvent
from gateway.protocol import scopes as sc
from gateway.protocol.frames import TOOL_EVENTS_CAP

if TYPE_CHECKING:
    from gateway.agents.service import AgentService
    from gateway.runtime import Gateway
    from gateway.ws.connection import Connection

log = logging.getLogger("gateway.ws.feed")

_TERMINAL_STATUS = {"final": "done", "error": "failed", "aborted": "aborted"}
_RECENT_RUNS = 1000
DIAGNOSTICS_CAPACITY = 1000


@dataclass
class _Timing:
    """When the server got and acknowledged a `chat.send`, for `chat.send_timing`."""

    conn: weakref.ReferenceType[Connection]
    session_key: str
    agent_id: str
    received_at: int
    acked_at: int
    dispatch_started_at: int | None = None
    assistant_seen: bool = False


@dataclass
class _Run:
    run_id: str
    session_key: str
    agent_id: str
    started_at: int
    seq: int = 0
    text: str = ""


@dataclass
class SessionActivity:
    """What this process saw of a session's runs."""

    active: dict[str, int] = field(default_factory=dict)  # runId -> startedAt
    status: str | None = None
    started_at: int | None = None
    ended_at: int | None = None
    last_run_id: str | None = None


def _now() -> int:
    return int(time.time() * 1000)


class ClientFeed:
    def __init__(self, gateway: Gateway, service: AgentService) -> None:
        self.gateway = gateway
        self.service = service
        self._runs: dict[str, _Run] = {}
        self._activity: dict[str, SessionActivity] = {}
        self._message_subs: dict[str, weakref.WeakSet[Connection]] = {}
        self._session_subs: weakref.WeakSet[Connection] = weakref.WeakSet()
        # `diagnostics.stability`: the latest run facts, oldest dropped first.
        self.diagnostics: deque[dict[str, Any]] = deque(maxlen=DIAGNOSTICS_CAPACITY)
        self.diagnostics_seq = 0
        self._timings: dict[str, _Timing] = {}

    def _record(self, kind: str, **facts: Any) -> None:
        self.diagnostics_seq += 1
        entry = {"seq": self.diagnostics_seq, "ts": _now(), "type": kind}
        entry.update({k: v for k, v in facts.items() if v is not None})
        self.diagnostics.append(entry)

    # --- subscriptions ------------------------------------------------------------------------

    def subscribe_sessions(self, conn: Connection) -> None:
        self._session_subs.add(conn)

    def subscribe_messages(self, session_key: str, conn: Connection) -> None:
        self._message_subs.setdefault(session_key, weakref.WeakSet()).add(conn)

    def unsubscribe_messages(self, session_key: str, conn: Connection) -> None:
        subs = self._message_subs.get(session_key)
        if subs is not None:
            subs.discard(conn)
            if not subs:
                del self._message_subs[session_key]

    def activity(self, session_key: str) -> SessionActivity | None:
        return self._activity.get(session_key)

    # --- fan-out ------------------------------------------------------------------------------

    def _readers(self) -> list[Connection]:
        return [
            c
            for c in list(self.gateway.connections)
            if c.state == "open" and sc.satisfies(c.scopes, sc.READ)
        ]

    def _broadcast(self, name: str, payload: dict[str, Any]) -> None:
        for conn in self._readers():
            conn.send_event(name, payload)

    def _agent_event(self, run: _Run, stream: str, data: dict[str, Any]) -> None:
        # The run's own counter while the runner knows it (shared with its chat and tool
        # events); after that, on from the last number this feed saw.
        shared = self.service.runner.next_seq(run.run_id)
        run.seq = shared if shared is not None else run.seq + 1
        self._broadcast(
            "agent",
            {
                "runId": run.run_id,
                "seq": run.seq,
                "stream": stream,
                "ts": _now(),
                "data": data,
                # Beyond the 2026.9.1 schema, as the reference sends: the TUI matches runs
                # to the session it shows by these.
                "sessionKey": run.session_key,
                "agentId": run.agent_id,
            },
        )

    def _send_agent(self, payload: dict[str, Any]) -> None:
        """One `agent` event of the runner: tool steps only to clients that asked for them."""
        tool = payload.get("stream") == "tool"
        for conn in self._readers():
            if not tool or TOOL_EVENTS_CAP in conn.caps:
                conn.send_event("agent", payload)
        if tool:
            for conn in list(self._message_subs.get(str(payload.get("sessionKey")), ())):
                conn.send_event("session.tool", payload)

    # --- chat.send_timing ---------------------------------------------------------------------

    def dispatch_started(
        self,
        conn: Connection,
        run_id: str,
        session_key: str,
        agent_id: str,
        received_at: int,
    ) -> None:
        """A `chat.send` from `conn` was acknowledged; its timing phases go to `conn`."""
        timing = _Timing(weakref.ref(conn), session_key, agent_id, received_at, _now())
        self._timings[run_id] = timing
        while len(self._timings) > _RECENT_RUNS:
            self._timings.pop(next(iter(self._timings)))

        def send() -> None:  # after the chat.send response, as the reference orders them
            self._timing(run_id, "dispatch-started")

        asyncio.get_running_loop().call_soon(send)

    def _timing(self, run_id: str, phase: str) -> None:
        timing = self._timings.get(run_id)
        if timing is None:
            return
        now = _now()
        if phase == "dispatch-started":
            timing.dispatch_started_at = now
        payload: dict[str, Any] = {
            "phase": phase,
            "runId": run_id,
            "sessionKey": timing.session_key,
            "agentId": timing.agent_id,
            "ackToPhaseMs": max(0, now - timing.acked_at),
            "receivedToPhaseMs": max(0, now - timing.received_at),
        }
        if timing.dispatch_started_at is not None:
            payload["dispatchStartedToPhaseMs"] = max(0, now - timing.dispatch_started_at)
        if phase == "dispatch-completed":
            del self._timings[run_id]
        conn = timing.conn()
        if conn is not None and conn.state == "open":
            conn.send_event("chat.send_timing", payload)

    def _first_assistant(self, run_id: str) -> None:
        timing = self._timings.get(run_id)
        if timing is not None and not timing.assistant_seen:
            timing.assistant_seen = True
            self._timing(run_id, "first-assistant-event")

    def sessions_changed(self, session_key: str, **facts: Any) -> None:
        """`sessions.changed` with the current row (its fields repeated flat, as the ref)."""
        row = self.session_row(session_key)
        payload: dict[str, Any] = {**(row or {}), "sessionKey": session_key, "ts": _now()}
        payload.update({k: v for k, v in facts.items() if v is not None})
        if row is not None:
            payload["session"] = row
        self._broadcast("sessions.changed", payload)

    def session_row(self, session_key: str) -> dict[str, Any] | None:
        row = self.service.store.get(session_key)
        if row is None:
            return None
        wire = row.to_wire()
        self.decorate(wire)
        return wire

    def decorate(self, row: dict[str, Any]) -> None:
        """Add the run status this process knows to a `sessions.list` row."""
        seen = self._activity.get(str(row.get("key")))
        if seen is None:
            row.setdefault("hasActiveRun", False)
            return
        row["hasActiveRun"] = bool(seen.active)
        if seen.active:
            row["status"] = "running"
            row["activeRunIds"] = list(seen.active)
        elif seen.status is not None:
            row["status"] = seen.status
        if seen.started_at is not None:
            row["startedAt"] = seen.started_at
        if seen.ended_at is not None and not seen.active:
            row["endedAt"] = seen.ended_at
            if seen.started_at is not None:
                row["runtimeMs"] = max(0, seen.ended_at - seen.started_at)

    def _send_messages(self, run: _Run, role_filter: tuple[str, ...]) -> None:
        subs = self._message_subs.get(run.session_key)
        if not subs:
            return
        row = self.service.store.get(run.session_key)
        for seq, entry_id, message in run_messages(self.service.store, run.session_key, run.run_id):
            if message.get("role") not in role_filter:
                continue
            payload = {
                "sessionKey": run.session_key,
                "agentId": run.agent_id,
                "sessionId": row.session_id if row else None,
                "messageId": entry_id,
                "messageSeq": seq,
                "message": message,
                "updatedAt": row.updated_at if row else _now(),
            }
            for conn in list(subs):
                conn.send_event("session.message", payload)

    # --- the runner's agent events (AgentService.agent_feed) ----------------------------------

    def on_agent(self, session_key: str, payload: dict[str, Any]) -> None:
        run_id = str(payload.get("runId"))
        data = payload.get("data") or {}
        run = self._runs.get(run_id)
        if payload.get("stream") == "lifecycle" and data.get("phase") == "start":
            if run is None:
                agent_id = str(payload.get("agentId") or "main")
                started = data.get("startedAt")
                run = _Run(
                    run_id, session_key, agent_id, started if isinstance(started, int) else _now()
                )
                self._begin(run, payload)
            return
        if run is not None:
            run.seq = max(run.seq, int(payload.get("seq") or 0))
        if payload.get("stream") in ("tool", "item"):
            self._first_assistant(run_id)
        self._send_agent(payload)

    # --- the run-event listener (AgentService.feed) ------------------------------------------

    def __call__(self, event: RunEvent) -> None:
        run = self._runs.get(event.run_id)
        if run is None:
            # A run that ends without having started (queued then aborted, a command's answer,
            # a failure before the model): announce its start here, on the run's own counter.
            agent_id = str(event.payload.get("agentId") or "main")
            run = _Run(event.run_id, event.session_key, agent_id, _now())
            self._begin(run, None)
        run.seq = max(run.seq, event.seq)
        if event.state == "delta":
            text = event.text
            delta = text[len(run.text) :] if text.startswith(run.text) else text
            run.text = text
            self._first_assistant(run.run_id)
            self._agent_event(run, "assistant", {"text": text, "delta": delta})
            self._broadcast("chat", event.payload)
            return
        self._finish(run, event)

    def _begin(self, run: _Run, start: dict[str, Any] | None) -> None:
        """Run bookkeeping and the start events; `start` is the runner's lifecycle event."""
        self._runs[run.run_id] = run
        while len(self._runs) > _RECENT_RUNS:
            self._runs.pop(next(iter(self._runs)))
        seen = self._activity.setdefault(run.session_key, SessionActivity())
        seen.active[run.run_id] = run.started_at
        seen.started_at, seen.ended_at, seen.last_run_id = run.started_at, None, run.run_id
        self._record(
            "session.state", outcome="processing", reason="run_started", sessionKey=run.session_key
        )
        self._send_messages(run, ("user",))
        if start is not None:
            run.seq = max(run.seq, int(start.get("seq") or 0))
            self._send_agent(start)
        else:
            self._agent_event(run, "lifecycle", {"phase": "start", "startedAt": run.started_at})
        self._timing(run.run_id, "agent-run-started")
        self.sessions_changed(run.session_key, phase="start", runId=run.run_id)

    def _finish(self, run: _Run, event: RunEvent) -> None:
        self._runs.pop(run.run_id, None)
        ended = _now()
        seen = self._activity.setdefault(run.session_key, SessionActivity())
        seen.active.pop(run.run_id, None)
        seen.status = _TERMINAL_STATUS.get(event.state, "done")
        seen.ended_at = ended
        stop = event.payload.get("stopReason")
        self._record(
            "run.completed",
            outcome=seen.status,
            reason=stop if isinstance(stop, str) else None,
            sessionKey=run.session_key,
            durationMs=max(0, ended - run.started_at),
        )
        if event.state == "error":
            self._agent_event(
                run,
                "lifecycle",
                {
                    "phase": "error",
                    "startedAt": run.started_at,
                    "endedAt": ended,
                    "error": event.text,
                },
            )
        else:
            data: dict[str, Any] = {
                "phase": "end",
                "startedAt": run.started_at,
                "endedAt": ended,
                "aborted": event.state == "aborted",
                "stopReason": stop if isinstance(stop, str) else "stop",
            }
            if event.state == "final" and not event.silent and event.text:
                data["terminalReply"] = {"disposition": "visible", "text": event.text}
            self._agent_event(run, "lifecycle", data)
        self._broadcast("chat", event.payload)
        self._send_messages(run, ("assistant", "toolResult"))
        self.sessions_changed(
            run.session_key, phase="error" if event.state == "error" else "end", runId=run.run_id
        )
        self._timing(run.run_id, "dispatch-completed")


def attach(gateway: Gateway) -> ClientFeed | None:
    """Install the feed on the agent service (if agents run); returns it."""
    service = gateway.extensions.get("agents")
    if service is None:
        return None
    feed = ClientFeed(gateway, service)
    service.feed = feed
    service.agent_feed = feed.on_agent
    service.on_sessions_changed = lambda key, reason: feed.sessions_changed(key, reason=reason)
    gateway.extensions["clients.feed"] = feed
    return feed


def feed_of(gateway: Gateway) -> ClientFeed | None:
    feed = gateway.extensions.get("clients.feed")
    return feed if isinstance(feed, ClientFeed) else None
