"""The run queue (agents.md §6.2–6.3, §10.1).

* Per session key: strictly one run at a time (lane `session:<key>`); messages arriving
  while a run is active are queued per `messages.queue` (mode, cap, drop, debounce).
* Globally: at most `agents.defaults.maxConcurrent` runs across sessions (a semaphore taken
  after the session lane, like the reference's `main` lane).
* Each run: user message appended to the transcript when the run starts, the model is
  called through the injected `ReplyFn`, the final assistant message (or one error entry,
  or the aborted partial) is appended, and run events are emitted to the listener.

Queue modes: `followup` runs one turn per queued message; `collect` coalesces everything
queued into one turn; `interrupt` aborts the active run (and drops queued ones) and runs the
newest; `steer` (the default) needs a tool loop to inject into a running turn, so it
behaves exactly like `followup` — which is what the reference does when a run cannot
accept steering. `queue`/`steer-backlog` (legacy names) also map to `followup`.
Drop policy at the cap: `old` drops the oldest queued message, `new` rejects the newcomer
(`QueueFull`), `summarize` drops the oldest but keeps a one-line summary that is handed to
the next run as `RunRequest.overflow_summary`.

Run events (`RunEvent.payload`) are protocol `chat` event payloads, ready to forward:
`{runId, sessionKey, agentId, seq, state, ...}` with state `delta` | `final` | `error` |
`aborted`; `seq` starts at 1 and increases per run.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from gateway.agents.loop import dangling_results
from gateway.agents.session_keys import agent_id_from_session_key
from gateway.agents.store import SILENT_REPLY_TOKEN, SessionStore, is_silent_reply
from gateway.agents.tools.registry import Requester
from gateway.agents.transcript import now_ms

log = logging.getLogger(__name__)

QueueMode = Literal["followup", "collect", "interrupt"]
DropPolicy = Literal["summarize", "old", "new"]
TerminalState = Literal["final", "error", "aborted"]
EventState = Literal["delta", "final", "error", "aborted"]

DEFAULT_QUEUE_CAP = 20
DEFAULT_DEBOUNCE_MS = 500
DEFAULT_TIMEOUT_SECONDS = 172_800

TIMEOUT_TEXT = "LLM request timed out."
EMPTY_RESPONSE_TEXT = "The model returned an empty response. Please try again."
GENERIC_FAILURE_TEXT = (
    "⚠️ Something went wrong while answering. Please try again, or send /new to start over."
)
_ERROR_KINDS = frozenset({"refusal", "timeout", "rate_limit", "context_length", "unknown"})
_ERROR_KIND_ALIASES = {"context_overflow": "context_length"}
_ERROR_DETAIL_TEXT_KEYS = (
    "provider",
    "model",
    "failoverReason",
    "providerRuntimeFailureKind",
    "providerErrorType",
    "providerErrorMessagePreview",
)
_SUMMARY_MAX_CHARS = 160
DISK_FULL_TEXT = (
    "⚠️ The gateway's disk is full, so this conversation could not be saved."
    " Free some space on the state volume and try again."
)


def _disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def resolve_max_concurrent(value: float | None, cpu_count: int | None = None) -> int:
    """`agents.defaults.maxConcurrent`: unset → max(8, cpus*4); explicit → floored, ≥ 1."""
    if value is None:
        cpus = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
        return max(8, cpus * 4)
    return max(1, int(value // 1))


def effective_queue_mode(mode: str | None) -> QueueMode:
    """Map any configured mode onto the behaviour we implement (see module doc)."""
    text = (mode or "steer").strip().lower()
    if text == "collect":
        return "collect"
    if text == "interrupt":
        return "interrupt"
    return "followup"  # steer, followup, queue, steer-backlog, unknown


# --- the injected model boundary --------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    total_tokens: int | None = None
    cost_total: float | None = None
    cost: Mapping[str, float] | None = None  # {input, output, cacheRead, cacheWrite, total} USD

    def to_json(self) -> dict[str, Any]:
        """Transcript / protocol usage shape (agents.md §4.3)."""
        total = self.total_tokens
        if total is None:
            total = self.input + self.output + self.cache_read + self.cache_write
        return {
            "input": self.input,
            "output": self.output,
            "cacheRead": self.cache_read,
            "cacheWrite": self.cache_write,
            "totalTokens": total,
            "cost": dict(self.cost) if self.cost is not None else {"total": self.cost_total or 0},
        }


@dataclass(frozen=True)
class RunFailure:
    """A terminal, user-facing failure (text already safe to show; agents.md §9.6)."""

    message: str
    kind: str | None = None  # refusal | timeout | rate_limit | context_length | unknown
    detail: Mapping[str, Any] | None = None  # redacted errorDetail facts


@dataclass(frozen=True)
class RunOutcome:
    """What a `ReplyFn` returns: the final answer, or `failure`."""

    text: str = ""
    usage: Usage | None = None  # the final model call (what the transcript entry records)
    provider: str | None = None
    model: str | None = None
    api: str | None = None
    stop_reason: str = "stop"
    response_id: str | None = None
    failure: RunFailure | None = None
    # Every model call of the turn summed (tool steps + the final call); cost None when a
    # call had no price. The usage footer reports it (gateway/agents/usage_footer.py).
    turn_usage: Usage | None = None


@dataclass(frozen=True)
class RunRequest:
    """Everything the model layer needs for one turn."""

    run_id: str
    session_key: str
    agent_id: str
    session_id: str
    text: str  # the current user message (coalesced text in `collect` mode)
    history: tuple[dict[str, Any], ...]  # prior transcript messages, oldest first
    system_prompt: str | None = None
    channel: str | None = None
    overflow_summary: str | None = None  # queue overflow notice (drop: summarize)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    # Who asked (decides the tools); a stranger unless the source says otherwise.
    requester: Requester = field(default_factory=lambda: Requester(owner=False))
    # Transcript blocks referencing the message's files (gateway.media), never the bytes.
    media: tuple[dict[str, Any], ...] = ()


class DeltaSink(Protocol):
    """The run's outlet handed to the `ReplyFn`: text deltas, tool-step records, events."""

    def __call__(self, text: str) -> None:
        """Append a text delta (incremental, not accumulated)."""

    def reset(self) -> None:
        """Discard what was streamed so far (a fallback model or the next tool step)."""

    def record(self, messages: Sequence[dict[str, Any]]) -> None:
        """Append messages of a tool step to the transcript now, durably."""

    def agent_event(self, stream: str, data: dict[str, Any]) -> None:
        """Emit one protocol `agent` event of this run (seq shared with `chat` events)."""


ReplyFn = Callable[[RunRequest, DeltaSink], Awaitable[RunOutcome]]


# --- events and handles ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunEvent:
    """One run event. `payload` is the protocol `chat` event payload, forwarded as is."""

    state: EventState
    run_id: str
    session_key: str
    seq: int
    payload: dict[str, Any]
    text: str = ""  # current/final text, or the failure text for `error`
    silent: bool = False  # final answer was NO_REPLY: deliver nothing
    outcome: RunOutcome | None = None  # `final`: what the model layer returned


RunListener = Callable[[RunEvent], None]
# (session key, protocol `agent` event payload)
AgentListener = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class RunResult:
    run_id: str
    session_key: str
    state: TerminalState
    text: str = ""  # final answer, failure text, or aborted partial
    silent: bool = False
    stop_reason: str | None = None
    outcome: RunOutcome | None = None
    merged_into: str | None = None  # collect mode: the run that answered this message


class QueueFull(Exception):
    """`drop: new` and the session queue is at its cap: the new message is rejected."""

    def __init__(self, session_key: str, cap: int) -> None:
        super().__init__(f"session {session_key} already has {cap} queued messages")
        self.session_key = session_key
        self.cap = cap


class RunHandle:
    """Returned by `submit`: the run id at once, the result when the run ends."""

    def __init__(self, run_id: str, session_key: str, future: asyncio.Future[RunResult]) -> None:
        self.run_id = run_id
        self.session_key = session_key
        self._future = future

    def done(self) -> bool:
        return self._future.done()

    async def wait(self) -> RunResult:
        return await asyncio.shield(self._future)


@dataclass(frozen=True)
class QueueSettings:
    """`messages.queue` (config.md §3.11)."""

    mode: str = "steer"
    by_channel: Mapping[str, str] = field(default_factory=dict)
    cap: int = DEFAULT_QUEUE_CAP
    drop: DropPolicy = "summarize"
    debounce_ms: int = DEFAULT_DEBOUNCE_MS


@dataclass(frozen=True)
class SubmitRequest:
    """One inbound message for a session."""

    session_key: str
    text: str
    agent_id: str | None = None  # default: from the session key
    run_id: str | None = None  # e.g. the chat.send idempotency key
    channel: str | None = None
    chat_type: str | None = None
    account_id: str | None = None
    display_name: str | None = None
    system_prompt: str | None = None
    queue_mode: str | None = None  # per-message / per-session override
    timeout_seconds: float | None = None  # override of the runner default; 0 = unlimited
    dm_history_limit: int | None = None
    max_user_turns: int | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    # Decided once by the message's source (tools.md §2.8): operator clients are the owner,
    # channel senders per commands.ownerAllowFrom; anything else is a stranger.
    requester: Requester = field(default_factory=lambda: Requester(owner=False))
    # Pictures and files of the message as transcript blocks (gateway.media.refs.MediaRef).
    media: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class LaneStatus:
    active_run_id: str | None
    queued: int
    active_started: bool = False  # False while the active run waits for a global slot


# --- internals ---------------------------------------------------------------------------------


def _assistant_display(text: str, timestamp: int | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": [{"type": "text", "text": text}]}
    if timestamp is not None:
        message["timestamp"] = timestamp
    return message


def _might_become_silent(text: str) -> bool:
    # Hold deltas back while the answer could still turn out to be exactly NO_REPLY.
    return SILENT_REPLY_TOKEN.startswith(text.strip())


def _error_kind(kind: str | None) -> str | None:
    if not kind:
        return None
    kind = _ERROR_KIND_ALIASES.get(kind, kind)
    return kind if kind in _ERROR_KINDS else "unknown"


def _error_detail(detail: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Project onto the protocol's closed `errorDetail` shape (strings ≤ 300 chars)."""
    if not detail:
        return None
    out: dict[str, Any] = {}
    for key in _ERROR_DETAIL_TEXT_KEYS:
        value = detail.get(key)
        if isinstance(value, str) and value.strip():
            out[key] = value.strip()[:300]
    status = detail.get("httpStatus")
    if isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599:
        out["httpStatus"] = status
    return out or None


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _SUMMARY_MAX_CHARS else line[: _SUMMARY_MAX_CHARS - 1] + "…"


def _collect_text(texts: Sequence[str]) -> str:
    if len(texts) == 1:
        return texts[0]
    parts = ["[Messages sent while you were busy, oldest first]"]
    parts += [f"[{index}] {text}" for index, text in enumerate(texts, start=1)]
    return "\n\n".join(parts)


class _Sink:
    def __init__(self, runner: Runner, run: _Run) -> None:
        self._runner, self._run = runner, run

    def __call__(self, text: str) -> None:
        self._runner._on_delta(self._run, text)

    def reset(self) -> None:
        self._run.streamed = ""

    def record(self, messages: Sequence[dict[str, Any]]) -> None:
        self._runner._record(self._run, messages)

    def agent_event(self, stream: str, data: dict[str, Any]) -> None:
        self._runner._emit_agent(self._run, stream, data)


@dataclass(eq=False)
class _Run:
    run_id: str
    request: SubmitRequest
    mode: QueueMode
    future: asyncio.Future[RunResult]
    text: str
    seq: int = 0
    streamed: str = ""
    started: bool = False
    abort_reason: str | None = None
    task: asyncio.Task[None] | None = None
    absorbed: list[_Run] = field(default_factory=list)  # collect mode
    media: list[dict[str, Any]] = field(default_factory=list)
    overflow_summary: str | None = None
    session_id: str | None = None
    unindexed: int = 0  # tool-step messages not yet counted in the session row

    @property
    def agent_id(self) -> str:
        return self.request.agent_id or agent_id_from_session_key(self.request.session_key)


@dataclass(eq=False)
class _Lane:
    key: str
    queue: deque[_Run] = field(default_factory=deque)
    active: _Run | None = None
    worker: asyncio.Task[None] | None = None
    last_enqueue: float = 0.0
    dropped: list[str] = field(default_factory=list)  # one-line summaries (drop: summarize)


class Runner:
    """Session lanes + global concurrency + timeouts + abort around an injected `ReplyFn`."""

    def __init__(
        self,
        *,
        store: SessionStore,
        reply: ReplyFn,
        listener: RunListener | None = None,
        agent_listener: AgentListener | None = None,
        max_concurrent: int | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        queue: QueueSettings | None = None,
    ) -> None:
        self._store = store
        self._reply = reply
        self._listener = listener
        self._agent_listener = agent_listener
        self.max_concurrent = resolve_max_concurrent(max_concurrent)
        self._slots = asyncio.Semaphore(self.max_concurrent)
        self._timeout = timeout_seconds
        self._queue = queue or QueueSettings()
        self._lanes: dict[str, _Lane] = {}
        self._runs: dict[str, _Run] = {}
        self._closed = False

    # -- public API ------------------------------------------------------------------------------

    def submit(self, request: SubmitRequest) -> RunHandle:
        """Accept a message for its session; returns at once (must run inside the loop)."""
        if self._closed:
            raise RuntimeError("runner is closed")
        loop = asyncio.get_running_loop()
        key = request.session_key
        mode = effective_queue_mode(
            request.queue_mode
            or self._queue.by_channel.get((request.channel or "").lower())
            or self._queue.mode
        )
        run_id = request.run_id or str(uuid.uuid4())
        if run_id in self._runs:
            raise ValueError(f"run id {run_id} is already in use")
        run = _Run(
            run_id, request, mode, loop.create_future(), text=request.text, media=[*request.media]
        )
        lane = self._lanes.setdefault(key, _Lane(key))
        if lane.worker is None:
            # Idle session: this run owns the lane right away (not queued behind anyone).
            lane.active = run
            lane.worker = loop.create_task(self._drain(lane), name=f"session:{key}")
        else:
            if mode == "interrupt":
                self._interrupt(lane)
            elif len(lane.queue) >= max(1, self._queue.cap):
                self._overflow(lane)  # raises QueueFull for drop: new
            lane.queue.append(run)
            lane.last_enqueue = loop.time()
        self._runs[run_id] = run
        return RunHandle(run_id, key, run.future)

    def abort(
        self,
        session_key: str,
        run_id: str | None = None,
        *,
        include_queued: bool = True,
        reason: str = "aborted",
    ) -> list[str]:
        """Abort one run (by id) or the session's active run (+ queued ones first).

        Returns the aborted run ids; `aborted` events follow (queued: at once; active: as
        soon as its task unwinds)."""
        lane = self._lanes.get(session_key)
        if lane is None:
            return []
        aborted: list[str] = []
        if run_id is not None:
            active = lane.active
            if active is not None and (
                active.run_id == run_id or any(r.run_id == run_id for r in active.absorbed)
            ):
                self._abort_active(active, reason)
                return [active.run_id]
            for queued in list(lane.queue):
                if queued.run_id == run_id:
                    lane.queue.remove(queued)
                    self._finish_aborted(queued, None, reason)
                    return [run_id]
            return []
        if include_queued:
            while lane.queue:
                queued = lane.queue.popleft()
                self._finish_aborted(queued, None, reason)
                aborted.append(queued.run_id)
        active = lane.active
        if active is not None and self._abort_active(active, reason):
            aborted.insert(0, active.run_id)
        return aborted

    def next_seq(self, run_id: str) -> int | None:
        """The next event number of a run still known here (None once it is forgotten).

        `chat` and `agent` events of one run share one counter, whoever sends them."""
        run = self._runs.get(run_id)
        if run is None:
            return None
        run.seq += 1
        return run.seq

    def abort_run(self, run_id: str, *, reason: str = "aborted") -> bool:
        run = self._runs.get(run_id)
        if run is None:
            return False
        return bool(self.abort(run.request.session_key, run_id, reason=reason))

    def status(self, session_key: str) -> LaneStatus:
        lane = self._lanes.get(session_key)
        if lane is None:
            return LaneStatus(active_run_id=None, queued=0)
        active = lane.active
        return LaneStatus(
            active_run_id=active.run_id if active else None,
            queued=len(lane.queue),
            active_started=bool(active and active.started),
        )

    def is_busy(self, session_key: str) -> bool:
        status = self.status(session_key)
        return status.active_run_id is not None or status.queued > 0

    async def wait_idle(self) -> None:
        """Until every lane has drained (tests, graceful shutdown)."""
        while True:
            workers = [lane.worker for lane in self._lanes.values() if lane.worker]
            if not workers:
                return
            await asyncio.wait(workers)

    async def close(self) -> None:
        """Abort everything (reason `shutdown`) and wait for the tasks to unwind."""
        self._closed = True
        for key in list(self._lanes):
            self.abort(key, reason="shutdown")
        for lane in list(self._lanes.values()):
            if lane.active is None and lane.worker is not None:
                lane.worker.cancel()  # idle in the debounce window: nothing left to run
        await self.wait_idle()

    # -- queue policy ----------------------------------------------------------------------------

    def _interrupt(self, lane: _Lane) -> None:
        while lane.queue:
            self._finish_aborted(lane.queue.popleft(), None, "interrupted")
        if lane.active is not None:
            self._abort_active(lane.active, "interrupted")

    def _overflow(self, lane: _Lane) -> None:
        policy = self._queue.drop
        if policy == "new":
            raise QueueFull(lane.key, self._queue.cap)
        dropped = lane.queue.popleft()
        if policy == "summarize":
            lane.dropped.append(_one_line(dropped.text))
        self._finish_aborted(dropped, None, "queue_overflow")
        log.info(
            "session %s: queue cap %d reached; dropped run %s",
            lane.key,
            self._queue.cap,
            dropped.run_id,
        )

    def _take_next(self, lane: _Lane) -> _Run:
        run = lane.queue.popleft()
        if run.mode == "collect":
            while lane.queue and lane.queue[0].mode == "collect":
                run.absorbed.append(lane.queue.popleft())
            if run.absorbed:
                run.text = _collect_text([run.text, *(r.text for r in run.absorbed)])
                run.media = [*run.media, *(b for r in run.absorbed for b in r.media)]
        if lane.dropped:
            # Injected into the turn itself so the model sees it whatever the ReplyFn does.
            run.overflow_summary = (
                f"[{len(lane.dropped)} earlier message(s) were dropped because the queue was "
                "full: " + " | ".join(lane.dropped) + "]"
            )
            run.text = f"{run.overflow_summary}\n\n{run.text}"
            lane.dropped.clear()
        return run

    async def _quiet_window(self, lane: _Lane) -> None:
        """Debounce: drain followup/collect only after `debounce_ms` without new messages."""
        loop = asyncio.get_running_loop()
        while lane.queue and lane.queue[0].mode != "interrupt":
            remaining = lane.last_enqueue + self._queue.debounce_ms / 1000 - loop.time()
            if remaining <= 0:
                return
            await asyncio.sleep(remaining)

    # -- lane worker ---------------------------------------------------------------------------

    async def _drain(self, lane: _Lane) -> None:
        """Lane worker: run the active run, then queued ones, until the lane is empty."""
        try:
            run = lane.active
            while run is not None:
                if not run.future.done():
                    run.task = asyncio.get_running_loop().create_task(self._run_body(run))
                    await asyncio.wait({run.task})
                if not run.future.done():
                    # Cancelled before its body ever ran.
                    self._finish_aborted(run, None, run.abort_reason or "aborted")
                lane.active = None
                run = await self._next(lane)
        finally:
            # Normal exit: queue empty, nothing active. Cancelled worker: end what is left.
            lane.worker = None
            if lane.active is not None:
                self._abort_active(lane.active, "shutdown")
            lane.active = None
            while lane.queue:
                self._finish_aborted(lane.queue.popleft(), None, "shutdown")
            if self._lanes.get(lane.key) is lane:
                del self._lanes[lane.key]

    async def _next(self, lane: _Lane) -> _Run | None:
        if lane.queue:
            await self._quiet_window(lane)
        if not lane.queue:
            return None
        run = self._take_next(lane)
        lane.active = run
        return run

    def _abort_active(self, run: _Run, reason: str) -> bool:
        if run.future.done() or run.abort_reason is not None:
            return False
        run.abort_reason = reason
        if run.task is not None:
            run.task.cancel()
        else:
            self._finish_aborted(run, None, reason)  # reserved but not started yet
        return True

    # -- one run ---------------------------------------------------------------------------------

    def _timeout_for(self, run: _Run) -> float | None:
        value = run.request.timeout_seconds
        value = self._timeout if value is None else value
        return value if value and value > 0 else None

    async def _run_body(self, run: _Run) -> None:
        try:
            await self._slots.acquire()
        except asyncio.CancelledError:
            if run.abort_reason is None:
                raise
            self._finish_aborted(run, None, run.abort_reason)
            return
        try:
            await self._call_model(run)
        finally:
            self._slots.release()

    async def _call_model(self, run: _Run) -> None:
        req = run.request
        key = req.session_key
        try:
            row = self._store.ensure(
                key,
                channel=req.channel,
                chat_type=req.chat_type,
                account_id=req.account_id,
                display_name=req.display_name,
            )
            history = self._store.model_history(
                key, dm_history_limit=req.dm_history_limit, max_user_turns=req.max_user_turns
            )
            # A crash or lost abort can leave tool calls without results: close them first.
            repairs = dangling_results(history)
            if repairs:
                log.warning(
                    "run %s: %d tool call(s) of %s had no result; closed with an error result",
                    run.run_id,
                    len(repairs),
                    key,
                )
                history = [*history, *repairs]
            content: str | list[dict[str, Any]] = run.text
            if run.media:
                content = [{"type": "text", "text": run.text}, *run.media]
            user_message = {"role": "user", "content": content, "timestamp": now_ms()}
            self._store.for_key(key).append_messages(
                key,
                [*repairs, user_message],
                session_id=row.session_id,
                run_id=run.run_id,
                sync=False,
            )
        except Exception as exc:
            if _disk_full(exc):
                log.error("run %s: cannot save session %s: %s", run.run_id, key, exc)
                text = DISK_FULL_TEXT
            else:
                log.exception("run %s: could not prepare session %s", run.run_id, key)
                text = GENERIC_FAILURE_TEXT
            self._finish_failure(run, None, RunFailure(text, "unknown"), None)
            return
        run.started = True
        run.session_id = row.session_id
        # The run has begun (its user message is on disk): clients following runs (the TUI)
        # learn of it now, not at its first streamed text.
        self._emit_agent(run, "lifecycle", {"phase": "start", "startedAt": now_ms()})
        request = RunRequest(
            run_id=run.run_id,
            session_key=key,
            agent_id=run.agent_id,
            session_id=row.session_id,
            text=run.text,
            history=tuple(history),
            system_prompt=req.system_prompt,
            channel=req.channel,
            overflow_summary=run.overflow_summary,
            metadata=req.metadata,
            requester=req.requester,
            media=tuple(run.media),
        )
        try:
            async with asyncio.timeout(self._timeout_for(run)):
                outcome = await self._reply(request, _Sink(self, run))
        except TimeoutError:
            log.warning("run %s: timed out after %ss", run.run_id, self._timeout_for(run))
            outcome = RunOutcome(failure=RunFailure(TIMEOUT_TEXT, "timeout"))
        except asyncio.CancelledError:
            if run.abort_reason is None:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # our own abort: this task ends normally
            self._finish_aborted(run, row.session_id, run.abort_reason)
            return
        except Exception:
            log.exception("run %s: reply function failed", run.run_id)
            outcome = RunOutcome(failure=RunFailure(GENERIC_FAILURE_TEXT, "unknown"))
        if run.abort_reason is not None:
            # The reply function swallowed our cancellation; the abort still wins.
            self._finish_aborted(run, row.session_id, run.abort_reason)
            return
        self._finish_outcome(run, row.session_id, outcome)

    # -- streaming ---------------------------------------------------------------------------------

    def _on_delta(self, run: _Run, text: str) -> None:
        if not text or run.future.done() or run.abort_reason is not None:
            return
        run.streamed += text
        if _might_become_silent(run.streamed):
            return
        self._emit(
            run,
            "delta",
            {
                "deltaText": run.streamed,
                "replace": True,
                "message": _assistant_display(run.streamed),
            },
            text=run.streamed,
        )

    # -- terminal states ---------------------------------------------------------------------------

    def _finish_outcome(self, run: _Run, session_id: str, outcome: RunOutcome) -> None:
        if outcome.failure is not None:
            self._finish_failure(run, session_id, outcome.failure, outcome)
            return
        text = outcome.text or run.streamed
        if not text.strip():
            self._finish_failure(run, session_id, RunFailure(EMPTY_RESPONSE_TEXT), outcome)
            return
        key = run.request.session_key
        timestamp = now_ms()
        message: dict[str, Any] = _assistant_display(text)
        optional = {
            "api": outcome.api,
            "provider": outcome.provider,
            "model": outcome.model,
            "usage": outcome.usage.to_json() if outcome.usage else None,
            "stopReason": outcome.stop_reason,
            "timestamp": timestamp,
            "responseId": outcome.response_id,
        }
        message.update({k: v for k, v in optional.items() if v is not None})
        before: list[dict[str, Any]] = []
        row = self._store.get(key)
        if (
            outcome.model
            and row is not None
            and row.session_id == session_id
            and (row.model, row.model_provider) != (outcome.model, outcome.provider)
        ):
            before.append(
                {"type": "model_change", "provider": outcome.provider, "modelId": outcome.model}
            )
        self._persist(run, session_id, message, before=before, outcome=outcome)
        silent = is_silent_reply(text)
        payload: dict[str, Any] = {"stopReason": outcome.stop_reason}
        if not silent:
            payload["message"] = _assistant_display(text, timestamp)
        if outcome.usage:
            payload["usage"] = outcome.usage.to_json()
        self._emit(run, "final", payload, text=text, silent=silent, outcome=outcome)
        self._resolve(run, "final", text, silent=silent, stop=outcome.stop_reason, outcome=outcome)

    def _finish_failure(
        self,
        run: _Run,
        session_id: str | None,
        failure: RunFailure,
        outcome: RunOutcome | None,
    ) -> None:
        if session_id is not None:
            entry: dict[str, Any] = {
                "role": "assistant",
                "content": [],
                "stopReason": "error",
                "errorMessage": failure.message,
                "timestamp": now_ms(),
            }
            if outcome is not None:
                entry.update(
                    {
                        k: v
                        for k, v in (("provider", outcome.provider), ("model", outcome.model))
                        if v
                    }
                )
            self._persist(run, session_id, entry)
        payload: dict[str, Any] = {"errorMessage": failure.message, "stopReason": "error"}
        kind = _error_kind(failure.kind)
        if kind:
            payload["errorKind"] = kind
        detail = _error_detail(failure.detail)
        if detail:
            payload["errorDetail"] = detail
        self._emit(run, "error", payload, text=failure.message)
        self._resolve(run, "error", failure.message, stop="error", outcome=outcome)

    def _finish_aborted(self, run: _Run, session_id: str | None, reason: str) -> None:
        if run.future.done():
            return
        partial = run.streamed
        if session_id is not None and partial.strip():
            entry = _assistant_display(partial, now_ms())
            entry["stopReason"] = "aborted"
            self._persist(run, session_id, entry)
        payload: dict[str, Any] = {"stopReason": reason}
        if partial.strip():
            payload["message"] = _assistant_display(partial)
        self._emit(run, "aborted", payload, text=partial)
        self._resolve(run, "aborted", partial, stop=reason)

    def _persist(
        self,
        run: _Run,
        session_id: str,
        message: dict[str, Any],
        *,
        before: Sequence[dict[str, Any]] = (),
        outcome: RunOutcome | None = None,
    ) -> None:
        key = run.request.session_key
        try:
            self._store.for_key(key).append_messages(
                key,
                [message],
                session_id=session_id,
                before=before,
                run_id=run.run_id,
                usage=outcome.usage.to_json() if outcome and outcome.usage else None,
                model=outcome.model if outcome else None,
                provider=outcome.provider if outcome else None,
                earlier=run.unindexed,
            )
            run.unindexed = 0
        except Exception:
            # The answer still reaches the user; the operator sees why it is not on disk.
            log.exception("run %s: could not write the transcript of %s", run.run_id, key)

    def _record(self, run: _Run, messages: Sequence[dict[str, Any]]) -> None:
        """A tool step's messages, written before the next step.

        Written through to the kernel at once, so a killed process leaves them on disk; the
        fsync and the session-index update are left to the turn's final append (like the
        user message's fsync), which keeps disk flushes and index rewrites off every call.
        """
        if run.session_id is None or not messages:
            return
        key = run.request.session_key
        self._store.for_key(key).append_messages(
            key,
            list(messages),
            session_id=run.session_id,
            run_id=run.run_id,  # the run's messages, for `session.message` and `__openclaw`
            sync=False,
            index=False,
        )
        run.unindexed += len(messages)

    def _emit_agent(self, run: _Run, stream: str, data: dict[str, Any]) -> None:
        if run.future.done():
            return
        run.seq += 1
        payload = {
            "runId": run.run_id,
            "seq": run.seq,
            "stream": stream,
            "ts": now_ms(),
            "data": data,
            "sessionKey": run.request.session_key,
            "agentId": run.agent_id,
            "isHeartbeat": False,
        }
        if self._agent_listener is None:
            return
        try:
            self._agent_listener(run.request.session_key, payload)
        except Exception:
            log.exception("agent event listener failed on run %s", run.run_id)

    def _emit(
        self,
        run: _Run,
        state: EventState,
        extra: dict[str, Any],
        *,
        text: str = "",
        silent: bool = False,
        outcome: RunOutcome | None = None,
    ) -> None:
        run.seq += 1
        payload: dict[str, Any] = {
            "runId": run.run_id,
            "sessionKey": run.request.session_key,
            "agentId": run.agent_id,
            "seq": run.seq,
            "state": state,
            **extra,
        }
        event = RunEvent(
            state, run.run_id, run.request.session_key, run.seq, payload, text, silent, outcome
        )
        if self._listener is None:
            return
        try:
            self._listener(event)
        except Exception:
            log.exception("run listener failed on %s event of run %s", state, run.run_id)

    def _resolve(
        self,
        run: _Run,
        state: TerminalState,
        text: str,
        *,
        silent: bool = False,
        stop: str | None = None,
        outcome: RunOutcome | None = None,
    ) -> None:
        key = run.request.session_key
        lane = self._lanes.get(key)
        if lane is not None and lane.active is run:
            lane.active = None  # observers see the lane idle as soon as the result is out
        for member in (run, *run.absorbed):
            self._runs.pop(member.run_id, None)
            if member.future.done():
                continue
            member.future.set_result(
                RunResult(
                    run_id=member.run_id,
                    session_key=key,
                    state=state,
                    text=text,
                    silent=silent,
                    stop_reason=stop,
                    outcome=outcome,
                    merged_into=None if member is run else run.run_id,
                )
            )
