"""Run queue tests, driven through our own `ReplyFn` boundary with a scripted fake model."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from gateway.agents.runner import (
    EMPTY_RESPONSE_TEXT,
    GENERIC_FAILURE_TEXT,
    TIMEOUT_TEXT,
    DeltaSink,
    QueueFull,
    QueueSettings,
    RunEvent,
    RunFailure,
    Runner,
    RunOutcome,
    RunRequest,
    SubmitRequest,
    Usage,
    effective_queue_mode,
    resolve_max_concurrent,
)
from gateway.agents.store import SessionStore

KEY = "agent:main:main"
OTHER = "agent:main:telegram:direct:42"

# Protocol `ChatEvent` (delta/final/aborted/error) from @openclaw/gateway-protocol: closed objects.
_TEXT = {"type": "string", "minLength": 1}
_BASE = {
    "runId": _TEXT,
    "sessionKey": _TEXT,
    "agentId": _TEXT,
    "spawnedBy": _TEXT,
    "seq": {"type": "integer", "minimum": 0},
}


def _variant(state: str, required: list[str], **props: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["runId", "sessionKey", "seq", "state", *required],
        "properties": {**_BASE, "state": {"const": state}, "message": {}, **props},
        "additionalProperties": False,
    }


_DETAIL_TEXT = {"type": "string", "maxLength": 300}
CHAT_EVENT_SCHEMA = {
    "anyOf": [
        _variant(
            "delta",
            ["deltaText"],
            deltaText={"type": "string"},
            replace={"type": "boolean"},
            usage={},
        ),
        _variant("final", [], usage={}, stopReason={"type": "string"}, yielded={"const": True}),
        _variant("aborted", [], errorMessage={"type": "string"}, stopReason={"type": "string"}),
        _variant(
            "error",
            [],
            errorMessage={"type": "string"},
            errorKind={"enum": ["refusal", "timeout", "rate_limit", "context_length", "unknown"]},
            errorDetail={
                "type": "object",
                "properties": {
                    "provider": _DETAIL_TEXT,
                    "model": _DETAIL_TEXT,
                    "failoverReason": _DETAIL_TEXT,
                    "providerRuntimeFailureKind": _DETAIL_TEXT,
                    "providerErrorType": _DETAIL_TEXT,
                    "httpStatus": {"type": "integer", "minimum": 100, "maximum": 599},
                    "providerErrorMessagePreview": _DETAIL_TEXT,
                },
                "additionalProperties": False,
            },
            usage={},
            stopReason={"type": "string"},
        ),
    ]
}


jsonschema.Draft202012Validator.check_schema(CHAT_EVENT_SCHEMA)
CHAT_EVENT = jsonschema.Draft202012Validator(CHAT_EVENT_SCHEMA)


class Events:
    """The runner listener: records events, lets tests await a condition (no sleeps)."""

    def __init__(self) -> None:
        self.items: list[RunEvent] = []
        self._changed = asyncio.Event()

    def __call__(self, event: RunEvent) -> None:
        CHAT_EVENT.validate(event.payload)  # every payload is a valid protocol ChatEvent
        self.items.append(event)
        self._changed.set()

    async def wait_for(self, predicate: Callable[[list[RunEvent]], bool]) -> None:
        async with asyncio.timeout(3):
            while not predicate(self.items):
                self._changed.clear()
                await self._changed.wait()

    def of(self, run_id: str) -> list[RunEvent]:
        return [e for e in self.items if e.run_id == run_id]

    def terminal(self, run_id: str) -> RunEvent | None:
        done = [e for e in self.of(run_id) if e.state != "delta"]
        assert len(done) <= 1
        return done[0] if done else None


class FakeModel:
    """Scripted by the message text: `hold:<gate>`, `never`, `fail`, `raise`, `silent`, …"""

    def __init__(self) -> None:
        self.requests: list[RunRequest] = []
        self.gates: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.started: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.active = 0
        self.max_active = 0

    async def wait_started(self, text: str) -> None:
        async with asyncio.timeout(3):
            await self.started[text].wait()

    async def __call__(self, req: RunRequest, sink: DeltaSink) -> RunOutcome:
        self.requests.append(req)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        self.started[req.text].set()
        try:
            return await self._script(req, sink)
        finally:
            self.active -= 1

    async def _script(self, req: RunRequest, sink: DeltaSink) -> RunOutcome:
        text = req.text
        ok = RunOutcome(
            usage=Usage(input=10, output=5),
            provider="anthropic",
            model="claude-haiku-4-5",
            api="anthropic-messages",
            response_id="msg_1",
        )
        if text.startswith("hold:"):
            sink("partial ")
            await self.gates[text.split(":", 1)[1]].wait()
            sink("answer")
            return _with(ok, text="partial answer")
        if text == "never":
            sink("thinking…")
            await asyncio.Event().wait()
        if text == "fail":
            return RunOutcome(
                provider="anthropic",
                model="claude-haiku-4-5",
                failure=RunFailure(
                    "⚠️ API rate limit reached. Please try again later.",
                    "rate_limit",
                    {
                        "provider": "anthropic",
                        "httpStatus": 429,
                        "rawBody": "x",
                        "model": "m" * 400,
                    },
                ),
            )
        if text == "overflow":
            return RunOutcome(failure=RunFailure("too big", "context_overflow"))
        if text == "raise":
            raise RuntimeError("provider exploded with sk-secret")
        if text == "silent":
            sink("NO_")
            sink("REPLY")
            return _with(ok, text="NO_REPLY")
        if text == "empty":
            return _with(ok, text="  ")
        if text == "restart":
            sink("from the failed model")
            sink.reset()
            sink("fallback ")
            sink("answer")
            return _with(ok, text="", model="claude-sonnet-4-6")
        if text == "swallow":
            sink("half")
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                return _with(ok, text="finished anyway")
        answer = f"echo: {text}"
        sink(answer[:3])
        sink(answer[3:])
        return _with(ok, text=answer)


def _with(outcome: RunOutcome, **changes: Any) -> RunOutcome:
    from dataclasses import replace

    return replace(outcome, **changes)


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    return SessionStore(tmp_path)


@pytest.fixture
def model() -> FakeModel:
    return FakeModel()


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
async def make_runner(
    store: SessionStore, model: FakeModel, events: Events
) -> AsyncIterator[Callable[..., Runner]]:
    runners: list[Runner] = []

    def factory(**kwargs: Any) -> Runner:
        kwargs.setdefault("queue", QueueSettings(debounce_ms=0))
        runner = Runner(store=store, reply=model, listener=events, **kwargs)
        runners.append(runner)
        return runner

    yield factory
    for runner in runners:
        await runner.close()


def submit(runner: Runner, text: str, key: str = KEY, **kwargs: Any) -> Any:
    return runner.submit(SubmitRequest(session_key=key, text=text, **kwargs))


def transcript_messages(store: SessionStore, key: str = KEY) -> list[dict[str, Any]]:
    row = store.get(key)
    assert row is not None
    events = store.for_key(key).transcript(row.session_id).events()
    return [e["message"] for e in events if e["type"] == "message"]


async def test_single_run_events_and_transcript(
    make_runner: Callable[..., Runner], store: SessionStore, events: Events
) -> None:
    agent: list[dict[str, Any]] = []
    runner = make_runner(agent_listener=lambda _key, payload: agent.append(payload))
    handle = submit(runner, "hello", channel="webchat")
    result = await handle.wait()
    assert result.state == "final" and result.text == "echo: hello" and not result.silent

    # The run announces its start before any text (seq 1 of the run's one counter).
    assert [(a["stream"], a["data"]["phase"], a["seq"]) for a in agent] == [
        ("lifecycle", "start", 1)
    ]
    evs = events.of(handle.run_id)
    assert [e.state for e in evs] == ["delta", "delta", "final"]
    assert [e.seq for e in evs] == [2, 3, 4]
    assert evs[0].payload == {
        "runId": handle.run_id,
        "sessionKey": KEY,
        "agentId": "main",
        "seq": 2,
        "state": "delta",
        "deltaText": "ech",
        "replace": True,
        "message": {"role": "assistant", "content": [{"type": "text", "text": "ech"}]},
    }
    assert evs[1].payload["deltaText"] == "echo: hello"  # accumulated, replace semantics
    final = evs[2].payload
    assert final["message"]["content"] == [{"type": "text", "text": "echo: hello"}]
    assert final["message"]["role"] == "assistant"
    assert final["stopReason"] == "stop"
    assert final["usage"]["totalTokens"] == 15

    row = store.get(KEY)
    assert row is not None
    assert row.channel == "webchat" and row.message_count == 2 and row.last_run_id == handle.run_id
    assert (row.model, row.model_provider, row.total_tokens) == (
        "claude-haiku-4-5",
        "anthropic",
        15,
    )
    raw = store.for_key(KEY).transcript(row.session_id).events()
    assert [e["type"] for e in raw] == ["message", "model_change", "message"]
    assert raw[1]["provider"] == "anthropic" and raw[1]["modelId"] == "claude-haiku-4-5"
    user, assistant = (e["message"] for e in raw if e["type"] == "message")
    assert user["role"] == "user" and user["content"] == "hello"
    assert isinstance(user["timestamp"], int)
    assert assistant == {
        "role": "assistant",
        "content": [{"type": "text", "text": "echo: hello"}],
        "api": "anthropic-messages",
        "provider": "anthropic",
        "model": "claude-haiku-4-5",
        "usage": {
            "input": 10,
            "output": 5,
            "cacheRead": 0,
            "cacheWrite": 0,
            "totalTokens": 15,
            "cost": {"total": 0},
        },
        "stopReason": "stop",
        "timestamp": assistant["timestamp"],
        "responseId": "msg_1",
    }


async def test_second_run_sees_history_and_no_repeated_model_change(
    make_runner: Callable[..., Runner], store: SessionStore, model: FakeModel
) -> None:
    runner = make_runner()
    await submit(runner, "one").wait()
    await submit(runner, "two").wait()
    assert [m["role"] for m in model.requests[1].history] == ["user", "assistant"]
    assert model.requests[1].history[0]["content"] == "one"
    row = store.get(KEY)
    assert row is not None
    kinds = [e["type"] for e in store.for_key(KEY).transcript(row.session_id).events()]
    assert kinds.count("model_change") == 1


async def test_one_run_at_a_time_per_session_in_order(
    make_runner: Callable[..., Runner], model: FakeModel, store: SessionStore
) -> None:
    runner = make_runner()
    first = submit(runner, "hold:a")
    second = submit(runner, "second")
    third = submit(runner, "third")
    await model.wait_started("hold:a")
    assert runner.status(KEY).active_run_id == first.run_id
    assert runner.status(KEY).queued == 2
    assert [r.text for r in model.requests] == ["hold:a"]
    model.gates["a"].set()
    results = [await h.wait() for h in (first, second, third)]
    assert [r.state for r in results] == ["final"] * 3
    assert [r.text for r in model.requests] == ["hold:a", "second", "third"]
    assert model.max_active == 1
    contents = [m["content"] for m in transcript_messages(store) if m["role"] == "user"]
    assert contents == ["hold:a", "second", "third"]
    assert not runner.is_busy(KEY)


async def test_sessions_run_in_parallel_up_to_max_concurrent(
    make_runner: Callable[..., Runner], model: FakeModel
) -> None:
    runner = make_runner(max_concurrent=2)
    keys = [f"agent:main:discord:channel:{i}" for i in range(4)]
    handles = [submit(runner, f"hold:g{i}", key=key) for i, key in enumerate(keys)]
    await model.wait_started("hold:g0")
    await model.wait_started("hold:g1")
    assert model.active == 2
    assert not model.started["hold:g2"].is_set() and not model.started["hold:g3"].is_set()
    model.gates["g0"].set()
    await model.wait_started("hold:g2")
    assert model.active == 2
    for i in (1, 2, 3):
        model.gates[f"g{i}"].set()
    results = [await h.wait() for h in handles]
    assert all(r.state == "final" for r in results)
    assert model.max_active == 2


async def test_timeout_is_a_failed_turn(
    make_runner: Callable[..., Runner], store: SessionStore, events: Events
) -> None:
    runner = make_runner(timeout_seconds=0.05)
    handle = submit(runner, "never")
    result = await handle.wait()
    assert result.state == "error" and result.text == TIMEOUT_TEXT
    terminal = events.terminal(handle.run_id)
    assert terminal is not None
    assert terminal.payload["errorMessage"] == TIMEOUT_TEXT
    assert terminal.payload["errorKind"] == "timeout"
    error_entry = transcript_messages(store)[-1]
    assert error_entry["stopReason"] == "error" and error_entry["errorMessage"] == TIMEOUT_TEXT
    assert store.model_history(KEY) == [transcript_messages(store)[0]]  # error kept out
    after = await submit(runner, "still alive", timeout_seconds=0).wait()  # 0 = unlimited
    assert after.state == "final"


async def test_abort_active_run_by_id_keeps_partial(
    make_runner: Callable[..., Runner], model: FakeModel, store: SessionStore, events: Events
) -> None:
    runner = make_runner()
    first = submit(runner, "hold:x")
    queued = submit(runner, "next")
    await model.wait_started("hold:x")
    assert runner.abort(KEY, first.run_id) == [first.run_id]
    result = await first.wait()
    assert result.state == "aborted" and result.text == "partial "
    terminal = events.terminal(first.run_id)
    assert terminal is not None
    assert terminal.payload["stopReason"] == "aborted"
    assert terminal.payload["message"]["content"][0]["text"] == "partial "
    assert (await queued.wait()).state == "final"  # the queue moves on
    messages = transcript_messages(store)
    assert messages[1]["stopReason"] == "aborted"
    assert messages[1]["content"] == [{"type": "text", "text": "partial "}]
    assert runner.abort(KEY, first.run_id) == []  # unknown / finished run


async def test_abort_by_session_drops_queued_first(
    make_runner: Callable[..., Runner], model: FakeModel, events: Events
) -> None:
    runner = make_runner()
    active = submit(runner, "hold:y")
    q1, q2 = submit(runner, "q1"), submit(runner, "q2")
    await model.wait_started("hold:y")
    aborted = runner.abort(KEY)
    assert aborted == [active.run_id, q1.run_id, q2.run_id]
    for handle in (active, q1, q2):
        assert (await handle.wait()).state == "aborted"
    assert [r.text for r in model.requests] == ["hold:y"]
    q1_events = events.of(q1.run_id)
    assert [e.state for e in q1_events] == ["aborted"] and q1_events[0].seq == 1
    assert runner.abort(KEY) == []


async def test_abort_queued_run_by_id(make_runner: Callable[..., Runner], model: FakeModel) -> None:
    runner = make_runner()
    active = submit(runner, "hold:z")
    victim, keeper = submit(runner, "victim"), submit(runner, "keeper")
    await model.wait_started("hold:z")
    assert runner.abort_run(victim.run_id)
    model.gates["z"].set()
    assert (await victim.wait()).state == "aborted"
    assert (await keeper.wait()).state == "final"
    assert (await active.wait()).state == "final"
    assert [r.text for r in model.requests] == ["hold:z", "keeper"]


async def test_abort_while_waiting_for_a_global_slot(
    make_runner: Callable[..., Runner], model: FakeModel, store: SessionStore
) -> None:
    runner = make_runner(max_concurrent=1)
    busy = submit(runner, "hold:slot", key=OTHER)
    await model.wait_started("hold:slot")
    waiting = submit(runner, "waits")
    assert runner.status(KEY).active_run_id == waiting.run_id
    for _ in range(5):  # let the lane worker start the run, which then blocks on the slot
        await asyncio.sleep(0)
    assert runner.status(KEY).active_run_id == waiting.run_id
    assert not runner.status(KEY).active_started
    assert runner.status(OTHER).active_started
    assert runner.abort(KEY) == [waiting.run_id]
    assert (await waiting.wait()).state == "aborted"
    assert store.get(KEY) is None  # never started: nothing persisted
    model.gates["slot"].set()
    assert (await busy.wait()).state == "final"


async def test_abort_right_after_submit_never_calls_the_model(
    make_runner: Callable[..., Runner], model: FakeModel, events: Events
) -> None:
    runner = make_runner()
    handle = submit(runner, "instant")
    assert runner.abort(KEY, handle.run_id) == [handle.run_id]
    assert (await handle.wait()).state == "aborted"
    await runner.wait_idle()
    assert model.requests == []
    assert [e.state for e in events.of(handle.run_id)] == ["aborted"]


async def test_queue_cap_drop_old(make_runner: Callable[..., Runner], model: FakeModel) -> None:
    runner = make_runner(queue=QueueSettings(mode="followup", cap=2, drop="old", debounce_ms=0))
    active = submit(runner, "hold:c")
    queued = [submit(runner, f"m{i}") for i in range(4)]
    await model.wait_started("hold:c")
    assert runner.status(KEY).queued == 2
    dropped = [await h.wait() for h in queued[:2]]
    assert [(r.state, r.stop_reason) for r in dropped] == [("aborted", "queue_overflow")] * 2
    model.gates["c"].set()
    assert [(await h.wait()).state for h in (active, *queued[2:])] == ["final"] * 3
    assert [r.text for r in model.requests] == ["hold:c", "m2", "m3"]


async def test_queue_cap_drop_new_rejects(
    make_runner: Callable[..., Runner], model: FakeModel
) -> None:
    runner = make_runner(queue=QueueSettings(cap=1, drop="new", debounce_ms=0))
    submit(runner, "hold:n")
    kept = submit(runner, "kept")
    with pytest.raises(QueueFull):
        submit(runner, "rejected")
    assert runner.status(KEY).queued == 1
    model.gates["n"].set()
    assert (await kept.wait()).state == "final"
    assert "rejected" not in [r.text for r in model.requests]


async def test_queue_cap_summarize_injects_notice(
    make_runner: Callable[..., Runner], model: FakeModel
) -> None:
    runner = make_runner(queue=QueueSettings(cap=1, drop="summarize", debounce_ms=0))
    submit(runner, "hold:s")
    first = submit(runner, "first   dropped\nmessage")
    last = submit(runner, "survivor")
    assert (await first.wait()).stop_reason == "queue_overflow"
    model.gates["s"].set()
    await last.wait()
    request = model.requests[-1]
    assert request.overflow_summary is not None
    assert "1 earlier message(s) were dropped" in request.overflow_summary
    assert "first dropped message" in request.overflow_summary
    assert request.text.endswith("\n\nsurvivor")


async def test_collect_coalesces_queued_messages(
    make_runner: Callable[..., Runner], model: FakeModel, events: Events
) -> None:
    runner = make_runner(queue=QueueSettings(mode="collect", debounce_ms=0))
    active = submit(runner, "hold:k")
    a, b, c = (submit(runner, t) for t in ("a", "b", "c"))
    model.gates["k"].set()
    results = [await h.wait() for h in (active, a, b, c)]
    assert len(model.requests) == 2
    merged = model.requests[1].text
    assert merged.index("[1] a") < merged.index("[2] b") < merged.index("[3] c")
    assert results[1].run_id == a.run_id and results[1].merged_into is None
    assert results[2].merged_into == a.run_id and results[3].merged_into == a.run_id
    assert results[3].state == "final"
    assert events.of(b.run_id) == []  # absorbed runs stream under the collecting run's id


async def test_interrupt_aborts_active_and_runs_newest(
    make_runner: Callable[..., Runner], model: FakeModel
) -> None:
    runner = make_runner(queue=QueueSettings(mode="interrupt", debounce_ms=0))
    first = submit(runner, "hold:i")
    await model.wait_started("hold:i")
    middle = submit(runner, "hold:j")  # interrupts first, then is itself interrupted
    newest = submit(runner, "newest")
    assert (await first.wait()).stop_reason == "interrupted"
    assert (await middle.wait()).stop_reason == "interrupted"
    assert (await newest.wait()).state == "final"
    assert [r.text for r in model.requests] == ["hold:i", "newest"]


async def test_per_message_queue_mode_override(
    make_runner: Callable[..., Runner], model: FakeModel
) -> None:
    runner = make_runner(queue=QueueSettings(mode="followup", debounce_ms=0))
    first = submit(runner, "hold:o")
    await model.wait_started("hold:o")
    urgent = submit(runner, "urgent", queue_mode="interrupt")
    assert (await first.wait()).state == "aborted"
    assert (await urgent.wait()).state == "final"


async def test_debounce_waits_for_quiet_window(
    make_runner: Callable[..., Runner], model: FakeModel
) -> None:
    runner = make_runner(queue=QueueSettings(mode="followup", debounce_ms=50))
    loop = asyncio.get_running_loop()
    active = submit(runner, "hold:d")
    await model.wait_started("hold:d")
    queued = submit(runner, "later")
    enqueued_at = loop.time()
    model.gates["d"].set()
    await active.wait()
    await model.wait_started("later")
    assert loop.time() - enqueued_at >= 0.05
    assert (await queued.wait()).state == "final"


async def test_failure_outcome_event_and_transcript(
    make_runner: Callable[..., Runner], store: SessionStore, events: Events
) -> None:
    runner = make_runner()
    handle = submit(runner, "fail")
    result = await handle.wait()
    assert result.state == "error"
    assert result.text == "⚠️ API rate limit reached. Please try again later."
    terminal = events.terminal(handle.run_id)
    assert terminal is not None
    payload = terminal.payload
    assert payload["errorKind"] == "rate_limit"
    assert payload["errorDetail"] == {
        "provider": "anthropic",
        "httpStatus": 429,
        "model": "m" * 300,
    }
    entry = transcript_messages(store)[-1]
    assert entry["content"] == [] and entry["stopReason"] == "error"
    assert entry["provider"] == "anthropic"
    overflow = await submit(runner, "overflow").wait()
    overflow_event = events.terminal(overflow.run_id)
    assert overflow_event is not None and overflow_event.payload["errorKind"] == "context_length"


async def test_reply_exception_gives_generic_text_without_leaking(
    make_runner: Callable[..., Runner], events: Events
) -> None:
    runner = make_runner()
    handle = submit(runner, "raise")
    result = await handle.wait()
    assert result.state == "error" and result.text == GENERIC_FAILURE_TEXT
    assert "sk-secret" not in repr([e.payload for e in events.items])


async def test_empty_answer_is_a_failure(make_runner: Callable[..., Runner]) -> None:
    runner = make_runner()
    result = await submit(runner, "empty").wait()
    assert result.state == "error" and result.text == EMPTY_RESPONSE_TEXT


async def test_silent_reply_streams_nothing_and_final_has_no_message(
    make_runner: Callable[..., Runner], events: Events, store: SessionStore
) -> None:
    runner = make_runner()
    handle = submit(runner, "silent")
    result = await handle.wait()
    assert result.silent and result.state == "final"
    evs = events.of(handle.run_id)
    assert [e.state for e in evs] == ["final"]
    assert "message" not in evs[0].payload and evs[0].silent
    assert store.chat_history(KEY).messages == [transcript_messages(store)[0]]


async def test_sink_reset_restarts_streamed_text(
    make_runner: Callable[..., Runner], events: Events, store: SessionStore
) -> None:
    runner = make_runner()
    handle = submit(runner, "restart")
    result = await handle.wait()
    assert result.text == "fallback answer"
    deltas = [e.payload["deltaText"] for e in events.of(handle.run_id) if e.state == "delta"]
    assert deltas == ["from the failed model", "fallback ", "fallback answer"]
    assert transcript_messages(store)[-1]["model"] == "claude-sonnet-4-6"


async def test_abort_wins_even_if_reply_swallows_cancellation(
    make_runner: Callable[..., Runner], model: FakeModel
) -> None:
    runner = make_runner()
    handle = submit(runner, "swallow")
    await model.wait_started("swallow")
    runner.abort(KEY)
    assert (await handle.wait()).state == "aborted"


async def test_listener_errors_do_not_break_runs(store: SessionStore, model: FakeModel) -> None:
    def broken(event: RunEvent) -> None:
        raise ValueError("listener bug")

    runner = Runner(store=store, reply=model, listener=broken)
    try:
        assert (await submit(runner, "ok").wait()).state == "final"
    finally:
        await runner.close()


async def test_close_aborts_everything(
    make_runner: Callable[..., Runner], model: FakeModel
) -> None:
    runner = make_runner()
    active = submit(runner, "hold:never-opened")
    queued = submit(runner, "queued")
    other = submit(runner, "never", key=OTHER)
    await model.wait_started("hold:never-opened")
    await runner.close()
    for handle in (active, queued, other):
        result = await handle.wait()
        assert result.state == "aborted" and result.stop_reason == "shutdown"
    with pytest.raises(RuntimeError):
        submit(runner, "late")


async def test_run_id_override_and_reuse_rejected(
    make_runner: Callable[..., Runner], model: FakeModel
) -> None:
    runner = make_runner()
    handle = submit(runner, "hold:r", run_id="idem-1")
    assert handle.run_id == "idem-1"
    with pytest.raises(ValueError):
        submit(runner, "again", run_id="idem-1")
    model.gates["r"].set()
    assert (await handle.wait()).run_id == "idem-1"


async def test_new_session_mid_run_keeps_answer_in_old_transcript(
    make_runner: Callable[..., Runner], model: FakeModel, store: SessionStore
) -> None:
    runner = make_runner()
    handle = submit(runner, "hold:m")
    await model.wait_started("hold:m")
    old = store.get(KEY)
    assert old is not None
    fresh = store.reset(KEY, "new")
    model.gates["m"].set()
    await handle.wait()
    old_events = store.for_key(KEY).transcript(old.session_id).events()
    assert old_events[-1]["message"]["content"][0]["text"] == "partial answer"
    assert store.chat_history(KEY).messages == []
    assert store.get(KEY) is not None and store.get(KEY).session_id == fresh.session_id  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("value", "cpus", "expected"),
    [(None, 1, 8), (None, 2, 8), (None, 4, 16), (3, 64, 3), (2.9, 1, 2), (0, 1, 1), (-5, 1, 1)],
)
def test_resolve_max_concurrent(value: float | None, cpus: int, expected: int) -> None:
    assert resolve_max_concurrent(value, cpus) == expected


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (None, "followup"),
        ("steer", "followup"),
        ("followup", "followup"),
        ("queue", "followup"),
        ("steer-backlog", "followup"),
        ("Collect", "collect"),
        ("interrupt", "interrupt"),
    ],
)
def test_effective_queue_mode(mode: str | None, expected: str) -> None:
    assert effective_queue_mode(mode) == expected


async def test_close_does_not_wait_out_the_debounce_window(
    make_runner: Callable[..., Runner], model: FakeModel
) -> None:
    runner = make_runner(queue=QueueSettings(debounce_ms=60_000))
    active = submit(runner, "hold:w")
    queued = submit(runner, "queued")
    model.gates["w"].set()
    assert (await active.wait()).state == "final"
    async with asyncio.timeout(1):
        await runner.close()
    assert (await queued.wait()).stop_reason == "shutdown"
