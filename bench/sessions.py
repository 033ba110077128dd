"""Does a turn cost more when an agent has more sessions? (issue 22: 5,000 must cost as 5.)

Part 1, in process: the session-store calls one turn makes (as `gateway/agents/runner.py`,
`channels/pipeline.py` and the context counters make them: record_inbound, ensure, model
history, the user message append, get, the counters, the final fsynced append) over 5 active
sessions, in an index of 5, 500 or 5,000 sessions, in CPU time of this thread (user + system:
the fsync's syscall counts, waiting for the disk or for a core does not); and `sessions.list`
with the Control UI's page size (200). The settings alternate within every round (the order
rotating) so a load change hits them alike.

Part 2, end to end: three real gateway processes (5, 500 and 5,000 sessions) running at once,
taking chat turns in turn (zero-latency fake model), gateway CPU per turn from /proc per chunk
of turns; then again with a second client per gateway that asks for `sessions.list` (200 rows)
on every `sessions.changed`, as the Control UI's sessions page does (twice a turn).

Each figure is the median over rounds (chunks) with the spread (min-max); the comparison is
the median of the per-round ratios, with their range.

    .venv/bin/python bench/sessions.py [rounds, default 15] [turns per round, default 200] \
        [end-to-end chunks of 100 turns, default 8; 0 skips part 2]
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _proc import (
    ROOT,
    connect_params,
    cpu_s,
    open_client,
    pct,
    prefill_sessions,
    start,
    stop,
    wait_healthy,
)
from pipeline import send_and_wait, write_config

sys.path.insert(0, str(ROOT))
from gateway.agents.store import SessionRow, SessionStore
from tests.fakes.llm import FakeLLM

SIZES = (5, 500, 5000)
ACTIVE = 5
LIST_PAGE = 200  # the Control UI's sessions page (gateway/ui/static/js/pages/sessions.js)


def active_key(n: int) -> str:
    return f"agent:main:telegram:direct:active-{n}"


def counters(row: SessionRow) -> None:
    """The context facts the context engine records after each model call (unsynced)."""
    row.context_tokens = 200_000
    row.extra["cacheRead"] = 0
    row.extra["cacheWrite"] = 0
    row.extra["totalTokensFresh"] = True


def one_turn(store: SessionStore, key: str, n: int) -> None:
    agent = store.for_key(key)
    route = {"channel": "telegram", "to": key.rsplit(":", 1)[1], "accountId": "default"}
    store.record_inbound(key, last_route=route, channel="telegram", chat_type="direct")
    row = store.ensure(key, channel="telegram", chat_type="direct")
    store.model_history(key)
    run = f"run-{n}"
    question = {"role": "user", "content": f"ping {n}", "timestamp": n}
    agent.append_messages(key, [question], session_id=row.session_id, run_id=run, sync=False)
    store.get(key)
    usage = {"input": 120, "output": 8, "totalTokens": 128}
    answer = {"role": "assistant", "content": [{"type": "text", "text": "pong"}], "usage": usage}
    agent.update_row(key, counters, sync=False)
    agent.append_messages(
        key,
        [answer],
        session_id=row.session_id,
        run_id=run,
        usage=usage,
        model="gpt-bench",
        provider="openai",
    )


class Setting:
    def __init__(self, size: int) -> None:
        self.size = size
        self.state = tempfile.mkdtemp(prefix=f"clawgate-bench-sessions-{size}-")
        prefill_sessions(self.state, size - ACTIVE)
        self.store = SessionStore(Path(self.state))
        for n in range(ACTIVE):
            self.store.ensure(active_key(n), channel="telegram", chat_type="direct")
        self.turn_cpu: list[float] = []  # per round: CPU seconds per turn
        self.turn_max: list[float] = []  # per round: the slowest turn's CPU seconds
        self.list_cpu: list[float] = []  # per round: CPU seconds per sessions.list page
        self.turns = 0
        self.spent = self.slowest = 0.0

    def start_round(self) -> None:
        for n in range(ACTIVE):  # a fresh history each round: rounds stay alike
            self.store.for_key(active_key(n)).new_session(active_key(n))
        self.spent = self.slowest = 0.0

    def turn(self) -> None:
        self.turns += 1
        t0 = time.thread_time()
        one_turn(self.store, active_key(self.turns % ACTIVE), self.turns)
        spent = time.thread_time() - t0
        self.spent += spent
        self.slowest = max(self.slowest, spent)

    def end_round(self, turns: int) -> None:
        self.turn_cpu.append(self.spent / turns)
        self.turn_max.append(self.slowest)
        self.list_cpu.append(timed(lambda: self.store.list_sessions(limit=LIST_PAGE), 20))

    def close(self) -> None:
        shutil.rmtree(self.state, ignore_errors=True)


def timed(call: Callable[[], object], times: int) -> float:
    t0 = time.thread_time()
    for _ in range(times):
        call()
    return (time.thread_time() - t0) / times


def ms(values: list[float]) -> str:
    m = [v * 1000 for v in values]
    return f"{statistics.median(m):7.3f} ms (min {min(m):.3f}, max {max(m):.3f})"


def ratio_line(name: str, base: list[float], other: list[float]) -> str:
    ratios = [o / b for b, o in zip(base, other, strict=True)]
    mid = statistics.median(ratios)
    return (
        f"{name}: {(mid - 1) * 100:+.1f} % (median of per-round ratios; "
        f"rounds {(min(ratios) - 1) * 100:+.1f} % to {(max(ratios) - 1) * 100:+.1f} %)"
    )


def store_part(rounds: int, turns: int) -> None:
    settings = [Setting(size) for size in SIZES]
    try:
        for r in range(rounds + 1):  # round 0 warms up: imports, caches, first writes
            for setting in settings:
                setting.start_round()
            for t in range(turns if r else 20):  # one turn each, in a rotating order
                for setting in settings[t % len(settings) :] + settings[: t % len(settings)]:
                    setting.turn()
            for setting in settings:
                setting.end_round(turns)
                if r == 0:
                    setting.turn_cpu.clear()
                    setting.turn_max.clear()
                    setting.list_cpu.clear()
    finally:
        for setting in settings:
            setting.close()
    print(
        f"session store, in process: {rounds} rounds x {turns} turns over {ACTIVE} active"
        f" sessions per setting, turns interleaved; load average {os.getloadavg()[0]:.2f}"
    )
    for setting in settings:
        print(
            f"  {setting.size:>5} sessions: store CPU per turn {ms(setting.turn_cpu)};"
            f" slowest turn {ms(setting.turn_max)};"
            f" sessions.list limit {LIST_PAGE} {ms(setting.list_cpu)}"
        )
    base, top = settings[0], settings[-1]
    print("  " + ratio_line("store CPU per turn, 5,000 vs 5 sessions", base.turn_cpu, top.turn_cpu))
    print(
        "  "
        + ratio_line("sessions.list, 5,000 vs 500 sessions", settings[1].list_cpu, top.list_cpu)
    )


# --- part 2: end to end -------------------------------------------------------------------------


class SessionsPage:
    """A client with the Control UI's sessions page open: one page of `sessions.list` again on
    every `sessions.changed` event (twice a turn), as the page does."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.sent = self.answered = 0
        self.idle = asyncio.Event()  # set while every listing asked for is answered
        self.idle.set()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for raw in self.ws:
            msg = json.loads(raw)
            if msg.get("event") == "sessions.changed":
                self.sent += 1
                self.idle.clear()
                frame = {"type": "req", "id": f"l{self.sent}", "method": "sessions.list"}
                await self.ws.send(json.dumps({**frame, "params": {"limit": LIST_PAGE}}))
            elif msg.get("type") == "res" and str(msg.get("id", "")).startswith("l"):
                assert msg.get("ok"), msg
                self.answered += 1
                if self.answered == self.sent:
                    self.idle.set()

    async def settle(self) -> None:
        await asyncio.sleep(0.02)  # the last turn's `sessions.changed` may still be on its way
        await self.idle.wait()


class Gateway:
    """A real gateway process with `size` sessions in its index, a fake model, a chat client
    and (optionally) a client with the sessions page open."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.fake = FakeLLM(default_text="pong")
        self.overheads: list[float] = []
        self.cpu: list[float] = []  # per chunk: CPU seconds per turn
        self.page: SessionsPage | None = None

    async def open(self, lister: bool) -> None:
        await self.fake.start()
        self.state = write_config(self.fake)
        prefill_sessions(self.state, self.size - ACTIVE)
        self.proc, port = start(self.state)
        await asyncio.to_thread(wait_healthy, port)
        url = f"ws://127.0.0.1:{port}/"
        self.ws = await open_client(url, connect_params(["operator.write"]))
        if lister:
            self.page = SessionsPage(await open_client(url, connect_params(["operator.read"])))

    async def turn(self, n: int, timed: bool) -> None:
        before = len(self.fake.requests)
        sent = time.monotonic()
        run = f"bench-{n}"
        received = await send_and_wait(self.ws, run, active_key(n % ACTIVE), f"ping {n}")
        if timed:  # the gateway's own legs: request in -> model request, model done -> final
            inbound = self.fake.requests[before]["at"] - sent
            self.overheads.append(inbound + received - self.fake.completed_at[-1])

    async def settle(self) -> float:
        if self.page is not None:
            await self.page.settle()
        return cpu_s(self.proc.pid)

    async def close(self) -> None:
        for ws in (self.ws, self.page.ws if self.page else None):
            if ws is not None:
                await ws.close()
        if self.page is not None:
            self.page.task.cancel()
        stop(self.proc)
        await self.fake.stop()
        shutil.rmtree(self.state, ignore_errors=True)  # 5,000 transcripts a run


async def interleaved(sizes: tuple[int, ...], lister: bool, chunks: int, turns: int) -> None:
    """All settings' gateways run at once and take turns one turn each (the order rotating):
    the machine's load changes hit them alike, so the per-chunk ratios are steady."""
    gateways = [Gateway(size) for size in sizes]
    try:
        for gateway in gateways:
            await gateway.open(lister)
        n = 0
        for _ in range(20):  # warm-up: imports, the model SDK, caches, the index load
            for gateway in gateways:
                await gateway.turn(n, timed=False)
            n += 1
        marks = [await gateway.settle() for gateway in gateways]
        for _ in range(chunks):
            for t in range(turns):
                for gateway in gateways[t % len(gateways) :] + gateways[: t % len(gateways)]:
                    await gateway.turn(n, timed=True)
                n += 1
            for i, gateway in enumerate(gateways):
                now = await gateway.settle()
                gateway.cpu.append((now - marks[i]) / turns)
                marks[i] = now
    finally:
        for gateway in gateways:
            await gateway.close()
    what = "with a client listing sessions on each change" if lister else "no listing client"
    print(
        f"end to end, real gateway processes ({what}): {chunks} chunks x {turns} turns each,"
        f" turns interleaved; load average {os.getloadavg()[0]:.2f}"
    )
    for gateway in gateways:
        overhead = statistics.median(gateway.overheads) * 1000
        print(
            f"  {gateway.size:>5} sessions: gateway CPU per turn {ms(gateway.cpu)};"
            f" overhead p50 {overhead:.2f} ms, p99 {pct(gateway.overheads, 0.99) * 1000:.2f} ms"
        )
    base = gateways[1] if lister else gateways[0]  # a listing's page is full from 200 sessions
    label = f"CPU per turn, 5,000 vs {base.size:,} sessions"
    print("  " + ratio_line(label, base.cpu, gateways[-1].cpu))


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    turns = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    chunks = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    store_part(rounds, turns)
    if chunks:
        asyncio.run(interleaved(SIZES, lister=False, chunks=chunks, turns=100))
        asyncio.run(interleaved(SIZES, lister=True, chunks=chunks, turns=100))


if __name__ == "__main__":
    main()
