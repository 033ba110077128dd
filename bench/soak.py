"""Soak: chat, WebSocket reconnects, Telegram and Discord traffic mixed, for a bounded time.

The gateway runs as a separate `python -m gateway` process with both channels enabled against
the fake Bot API and fake Discord; the model is the zero-latency fake OpenAI server. Workers:
  chat       CHAT_CLIENTS persistent clients, one turn after another over rotating sessions
  reconnect  RECONNECT_CLIENTS loops of connect -> health -> close
  telegram   one DM after another (inject at the fake, wait for the reply)
  discord    the same through the fake Discord gateway
Every minute: operations, errors, latency p50/p99 per kind; every 5 s the gateway's RSS.
The RSS and chat latency p50/p99 per 15 s interval are drawn to test-output/soak.svg.

    .venv/bin/python bench/soak.py [minutes, default 3] [--new-every N] [--full]

`--new-every N` sends `/new` in each Telegram and Discord conversation every N messages, so
channel session histories stay short: compare its RSS with a plain run to see how much of the
growth is those histories.

`--full` turns everything on, as a small deployment would run it: both providers (Anthropic
primary, OpenAI fallback and the model of the cron jobs), tools (a third of the chat turns make
the model call `read`, a third `memory_search`), the memory index with vector search against the
fake embeddings server over a workspace of notes, and 100 cron jobs (10 of them isolated agent
turns every minute, 90 daily). The report adds the steady-state RSS: the mean over the first
and the last third of the samples after the warm-up, and the slope between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import websockets
from _proc import ROOT, connect_params, last_user_text, pct, rss_mb

sys.path.insert(0, str(ROOT))
from tests.fakes.llm import tool_names, tool_results

CHAT_CLIENTS = 4
RECONNECT_CLIENTS = 2
SAMPLE_S = 5.0
PLOT_INTERVAL_S = 15.0  # latency percentiles per interval in the SVG
SVG_PATH = ROOT / "test-output" / "soak.svg"
RESET_EVERY = 25  # turns per session before sessions.reset keeps history bounded
CONNECT = connect_params(["operator.admin"], client_id="soak")
WARMUP_S = 180.0  # RSS samples before this are the warm-up (SDKs, caches, first sessions)
CRON_JOBS = 100
CRON_FREQUENT = 10  # of which run every minute
NOTES = 40  # memory/*.md files in the workspace


@dataclass
class Recorder:
    """Latencies and errors per kind and per minute since `t0`; RSS samples over time."""

    t0: float = field(default_factory=time.monotonic)
    latencies: dict[tuple[int, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[tuple[int, str], int] = field(default_factory=lambda: defaultdict(int))
    error_samples: list[str] = field(default_factory=list)
    rss: list[tuple[float, float]] = field(default_factory=list)
    # chat latencies per PLOT_INTERVAL_S bucket, for the plot
    chat_buckets: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))

    def minute(self) -> int:
        return int((time.monotonic() - self.t0) // 60)

    def ok(self, kind: str, seconds: float) -> None:
        self.latencies[(self.minute(), kind)].append(seconds)
        if kind == "chat":
            bucket = int((time.monotonic() - self.t0) // PLOT_INTERVAL_S)
            self.chat_buckets[bucket].append(seconds)

    def fail(self, kind: str, exc: BaseException | str) -> None:
        self.errors[(self.minute(), kind)] += 1
        if len(self.error_samples) < 10:
            self.error_samples.append(f"{kind}: {exc!r}"[:200])

    def kinds(self) -> list[str]:
        return sorted({k for _, k in self.latencies} | {k for _, k in self.errors})

    def minutes(self) -> list[int]:
        return sorted({m for m, _ in self.latencies} | {m for m, _ in self.errors})

    def all_latencies(self, kind: str) -> list[float]:
        return [v for (_, k), vs in self.latencies.items() if k == kind for v in vs]


# --- the protocol, minimal --------------------------------------------------------------------


class Ws:
    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.n = 0
        self.waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.finals: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.ws:
                msg = json.loads(raw)
                if msg.get("type") == "res" and msg.get("id") in self.waiting:
                    self.waiting.pop(msg["id"]).set_result(msg)
                elif msg.get("event") == "chat":
                    payload = msg["payload"]
                    fut = self.finals.get(payload.get("runId"))
                    if fut is not None and payload["state"] in ("final", "error", "aborted"):
                        self.finals.pop(payload["runId"])
                        fut.set_result(payload)
        for fut in [*self.waiting.values(), *self.finals.values()]:
            if not fut.done():
                fut.set_exception(ConnectionError("connection closed"))

    async def call(self, method: str, params: Any = None, within: float = 30) -> Any:
        self.n += 1
        req_id = f"{self.n}"
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[req_id] = fut
        frame = {"type": "req", "id": req_id, "method": method, "params": params or {}}
        await self.ws.send(json.dumps(frame))
        res = await asyncio.wait_for(fut, within)
        if not res.get("ok"):
            raise RuntimeError(f"{method}: {res.get('error')}")
        return res.get("payload")

    async def chat(self, session: str, text: str, within: float = 30) -> dict[str, Any]:
        self.n += 1
        ack = await self.call(
            "chat.send",
            {"sessionKey": session, "message": text, "idempotencyKey": f"{id(self)}-{self.n}"},
        )
        fut = self.finals.get(ack["runId"])
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            self.finals[ack["runId"]] = fut
        return await asyncio.wait_for(fut, within)


@contextlib.asynccontextmanager
async def session(port: int) -> AsyncIterator[Ws]:
    async with websockets.connect(f"ws://127.0.0.1:{port}/", max_size=None) as raw:
        json.loads(await asyncio.wait_for(raw.recv(), 10))  # connect.challenge
        ws = Ws(raw)
        await ws.call("connect", CONNECT)
        try:
            yield ws
        finally:
            # Close while the reader still drains: with it gone, the gateway's events fill the
            # client's receive queue, websockets stops reading, never sees the gateway's close
            # frame and waits out its 10 s close timeout (the old reconnect p99 of ~10 s).
            await raw.close()
            await ws.reader


# --- workers -----------------------------------------------------------------------------------


async def chat_worker(
    port: int, rec: Recorder, me: int, deadline: float, sessions: int, full: bool = False
) -> int:
    turns = 0
    while time.monotonic() < deadline:
        try:
            async with session(port) as ws:
                while time.monotonic() < deadline:
                    key = f"soak-{me}-{turns % sessions}"
                    # With --full, the fake model answers "read …" and "recall …" with a tool call.
                    verb = ("turn", "read", "recall")[turns % 3] if full else "turn"
                    t0 = time.perf_counter()
                    final = await ws.chat(key, f"{verb} {turns}")
                    if final["state"] != "final":
                        rec.fail("chat", f"state {final['state']}: {final.get('errorMessage')}")
                    else:
                        rec.ok("chat", time.perf_counter() - t0)
                    turns += 1
                    if turns % (RESET_EVERY * sessions) == 0:
                        for s in range(sessions):
                            await ws.call("sessions.reset", {"key": f"soak-{me}-{s}"})
        except Exception as exc:
            rec.fail("chat", exc)
            await asyncio.sleep(0.5)
    return turns


async def reconnect_worker(port: int, rec: Recorder, deadline: float) -> int:
    n = 0
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        try:
            async with session(port) as ws:
                await ws.call("health")
            rec.ok("reconnect", time.perf_counter() - t0)
        except Exception as exc:
            rec.fail("reconnect", exc)
            await asyncio.sleep(0.2)
        n += 1
    return n


async def platform_worker(
    name: str,
    inject: Callable[[int, str], Awaitable[None]],
    replies: Callable[[], int],
    wait_replies: Callable[[int, float], Awaitable[None]],
    rec: Recorder,
    deadline: float,
    new_every: int = 0,
) -> int:
    n = 0
    while time.monotonic() < deadline:
        before = replies()
        t0 = time.perf_counter()
        # Ten conversations in turn; with new_every, each one starts over every N messages.
        rounds = n // 10
        reset = new_every > 0 and rounds > 0 and rounds % new_every == 0
        try:
            await inject(n % 10, "/new" if reset else f"soak {n}")
            await wait_replies(before + 1, 30)
            rec.ok(name, time.perf_counter() - t0)
        except Exception as exc:
            rec.fail(name, exc)
        n += 1
    return n


async def sample_rss(pid: int, rec: Recorder, deadline: float) -> None:
    while time.monotonic() < deadline:
        rec.rss.append((time.monotonic() - rec.t0, rss_mb(pid)))
        await asyncio.sleep(SAMPLE_S)
    rec.rss.append((time.monotonic() - rec.t0, rss_mb(pid)))


# --- report ------------------------------------------------------------------------------------


def report(rec: Recorder, title: str) -> None:
    print(title)
    print(f"{'min':>3} {'kind':<10} {'ops':>7} {'errors':>6} {'p50 ms':>8} {'p99 ms':>8}")
    for minute in rec.minutes():
        for kind in rec.kinds():
            lat = rec.latencies.get((minute, kind), [])
            errs = rec.errors.get((minute, kind), 0)
            if not lat and not errs:
                continue
            p50 = statistics.median(lat) * 1000 if lat else float("nan")
            print(
                f"{minute:>3} {kind:<10} {len(lat):>7} {errs:>6} {p50:>8.1f} {pct(lat, 0.99) * 1000:>8.1f}"
            )
    print("totals:")
    for kind in rec.kinds():
        lat = rec.all_latencies(kind)
        errs = sum(v for (_, k), v in rec.errors.items() if k == kind)
        if lat:
            print(
                f"  {kind:<10} {len(lat):>7} ok {errs:>4} errors   p50 {statistics.median(lat) * 1000:6.1f} ms"
                f"   p99 {pct(lat, 0.99) * 1000:6.1f} ms   max {max(lat) * 1000:7.1f} ms"
            )
        else:
            print(f"  {kind:<10}       0 ok {errs:>4} errors")
    for sample in rec.error_samples:
        print(f"  error: {sample}")
    print_rss(rec)


def print_rss(rec: Recorder) -> None:
    if not rec.rss:
        return
    values = [v for _, v in rec.rss]
    print(
        f"RSS MB: start {values[0]:.1f}  end {values[-1]:.1f}  max {max(values):.1f}"
        f"  (samples every {SAMPLE_S:.0f} s: {len(values)})"
    )
    by_minute: dict[int, list[float]] = defaultdict(list)
    for at, value in rec.rss:
        by_minute[int(at // 60)].append(value)
    series = "  ".join(f"m{m}: {max(vs):.1f}" for m, vs in sorted(by_minute.items()))
    print(f"RSS per minute (max): {series}")


def _polyline(points: list[tuple[float, float]], color: str, dash: str = "") -> str:
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    extra = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<polyline fill="none" stroke="{color}" stroke-width="2"{extra} points="{coords}"/>'


def _panel(
    top: float,
    title: str,
    unit: str,
    series: list[tuple[str, str, str, list[tuple[float, float]]]],
    t_max: float,
) -> list[str]:
    """One chart 760x230 at y=`top`: axes, 4 gridlines, one polyline per (label, color, dash)."""
    left, width, height = 70.0, 660.0, 180.0
    values = [v for _, _, _, pts in series for _, v in pts]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    lo = 0.0 if unit == "ms" else lo * 0.98
    hi = hi * 1.05 if hi > lo else lo + 1.0
    out = [f'<text x="{left}" y="{top - 8}" font-weight="bold">{title}</text>']
    for i in range(5):
        value = lo + (hi - lo) * i / 4
        y = top + height - height * i / 4
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + width}" y2="{y:.1f}" stroke="#ddd"/>'
        )
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{value:.1f}</text>')
    out.append(f'<text x="{left - 6}" y="{top - 8}" text-anchor="end">{unit}</text>')
    for i in range(7):
        t = t_max * i / 6
        x = left + width * i / 6
        out.append(
            f'<text x="{x:.1f}" y="{top + height + 16}" text-anchor="middle">{t:.0f} s</text>'
        )
    out.append(
        f'<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="none" stroke="#888"/>'
    )
    for n, (label, color, dash, pts) in enumerate(series):
        scaled = [
            (left + width * t / t_max, top + height - height * (v - lo) / (hi - lo)) for t, v in pts
        ]
        if scaled:
            out.append(_polyline(scaled, color, dash))
        lx = left + width - 150
        ly = top + 16 + 16 * n
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(
            f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 24}" y2="{ly - 4}" stroke="{color}"'
            f' stroke-width="2"{dash_attr}/>'
        )
        out.append(f'<text x="{lx + 30}" y="{ly}">{label}</text>')
    return out


def write_svg(rec: Recorder, path: Path, title: str) -> None:
    """RSS over time and chat latency p50/p99 per interval, as a dependency-free SVG."""
    half = PLOT_INTERVAL_S / 2
    p50 = [
        (b * PLOT_INTERVAL_S + half, statistics.median(v) * 1000)
        for b, v in sorted(rec.chat_buckets.items())
        if v
    ]
    p99 = [
        (b * PLOT_INTERVAL_S + half, pct(v, 0.99) * 1000)
        for b, v in sorted(rec.chat_buckets.items())
        if v
    ]
    t_max = max([t for t, _ in rec.rss] + [t + half for t, _ in p50] + [1.0])
    body = [
        '<svg xmlns="http://www.w3.org/2000/svg" width="800" height="560"'
        ' font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="400" y="22" text-anchor="middle" font-size="14">{escape(title)}</text>',
        *_panel(
            60, "gateway RSS (sampled every 5 s)", "MB", [("RSS", "#1f77b4", "", rec.rss)], t_max
        ),
        *_panel(
            330,
            f"chat turn latency per {PLOT_INTERVAL_S:.0f} s",
            "ms",
            [("p50", "#2ca02c", "", p50), ("p99", "#d62728", "5,3", p99)],
            t_max,
        ),
        "</svg>",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(body) + "\n")


# --- everything on (--full) ---------------------------------------------------------------------


def full_responder(api: str, body: dict[str, Any]) -> dict[str, Any]:
    if tool_results(body):
        return {"text": "done with the tool"}
    text = last_user_text(body)
    offered = tool_names(body)
    if "read" in text and "read" in offered:
        return {"tool_calls": [{"name": "read", "arguments": {"path": "MEMORY.md"}}]}
    if "recall" in text and "memory_search" in offered:
        return {"tool_calls": [{"name": "memory_search", "arguments": {"query": "backup plan"}}]}
    return {"text": "pong"}


def full_config(embeddings_url: str) -> Callable[[Any, Path], dict[str, Any]]:
    def extra(llm: Any, state: Path) -> dict[str, Any]:
        llm.responder = full_responder
        notes = state / "workspace" / "memory"
        notes.mkdir(parents=True)
        (state / "workspace" / "MEMORY.md").write_text(
            "# Memory\n\nThe backup plan: nightly snapshots, kept for 30 days.\n"
        )
        for n in range(NOTES):
            lines = [f"# Notes {n}", ""]
            lines += [
                f"- item {n}.{i}: the database migration step {i} of project {n}" for i in range(30)
            ]
            (notes / f"notes-{n}.md").write_text("\n".join(lines) + "\n")
        return {
            "models": {
                "providers": {
                    "anthropic": {"baseUrl": llm.url, "apiKey": "sk-ant-bench"},
                    "openai": {"baseUrl": llm.url + "/v1", "apiKey": "sk-bench"},
                }
            },
            "agents": {
                "defaults": {
                    "model": {
                        "primary": "anthropic/claude-bench",
                        "fallbacks": ["openai/gpt-bench"],
                    }
                }
            },
            "memory": {
                "search": {
                    "provider": "openai",
                    "model": "text-embedding-3-small",
                    "remote": {"baseUrl": embeddings_url, "apiKey": "sk-emb"},
                }
            },
        }

    return extra


async def add_cron_jobs(port: int) -> None:
    async with session(port) as ws:
        for i in range(CRON_JOBS):
            frequent = i < CRON_FREQUENT
            schedule = (
                {"kind": "every", "everyMs": 60_000}
                if frequent
                else {"kind": "cron", "expr": f"{i % 60} {i % 24} * * *", "tz": "Europe/Berlin"}
            )
            await ws.call(
                "cron.add",
                {
                    "name": f"soak-{i}",
                    "schedule": schedule,
                    "sessionTarget": "isolated",
                    "wakeMode": "now",
                    "payload": {
                        "kind": "agentTurn",
                        "message": f"scheduled check {i}",
                        "model": "openai/gpt-bench",
                    },
                    "delivery": {"mode": "none"},
                },
            )


def steady_state(rec: Recorder) -> str:
    """Mean RSS of the first and last thirds after the warm-up, and the slope between them."""
    steady = [(t, v) for t, v in rec.rss if t >= WARMUP_S]
    if len(steady) < 6:
        return f"steady RSS: run longer than {WARMUP_S / 60:.0f} min to see it"
    third = len(steady) // 3
    first, last = steady[:third], steady[-third:]
    mean_first = statistics.fmean(v for _, v in first)
    mean_last = statistics.fmean(v for _, v in last)
    span_min = (statistics.fmean(t for t, _ in last) - statistics.fmean(t for t, _ in first)) / 60
    slope = (mean_last - mean_first) / span_min if span_min > 0 else float("nan")
    return (
        f"steady RSS after {WARMUP_S / 60:.0f} min warm-up: mean {mean_first:.1f} MB (first third)"
        f" -> {mean_last:.1f} MB (last third), max {max(v for _, v in steady):.1f} MB,"
        f" trend {slope:+.2f} MB/min"
    )


# --- main --------------------------------------------------------------------------------------


async def main(minutes: float, new_every: int = 0, full: bool = False) -> None:
    # bench/channels.py by path: the name `channels` is the product package here.
    spec = importlib.util.spec_from_file_location("bench_channels", ROOT / "bench" / "channels.py")
    assert spec is not None and spec.loader is not None
    bench_channels = importlib.util.module_from_spec(spec)
    sys.modules["bench_channels"] = bench_channels  # dataclasses look their module up there
    spec.loader.exec_module(bench_channels)
    telegram_platform, discord_platform = (
        bench_channels.telegram_platform,
        bench_channels.discord_platform,
    )

    from tests.fakes.embeddings import FakeEmbeddings

    counts: dict[str, int] = {}
    embeddings = FakeEmbeddings()
    await embeddings.start()
    extra = full_config(embeddings.base_url) if full else None
    async with bench_channels.channel_rig("clawgate-soak-", extra) as rig:
        proc, port, tg, dc = rig.proc, rig.port, rig.tg, rig.dc
        if full:
            await add_cron_jobs(port)
        rec = Recorder()
        deadline = time.monotonic() + minutes * 60
        tgp, dcp = telegram_platform(tg), discord_platform(dc)
        jobs: dict[str, Awaitable[Any]] = {
            **{
                f"chat{i}": chat_worker(port, rec, i, deadline, sessions=5, full=full)
                for i in range(CHAT_CLIENTS)
            },
            **{
                f"reconnect{i}": reconnect_worker(port, rec, deadline)
                for i in range(RECONNECT_CLIENTS)
            },
            "telegram": platform_worker(
                "telegram", tgp.inject, tgp.replies, tgp.wait_replies, rec, deadline, new_every
            ),
            "discord": platform_worker(
                "discord", dcp.inject, dcp.replies, dcp.wait_replies, rec, deadline, new_every
            ),
            "rss": sample_rss(proc.pid, rec, deadline),
        }
        results = await asyncio.gather(*jobs.values())
        counts = {k: v for k, v in zip(jobs, results, strict=True) if isinstance(v, int)}
        alive = proc.poll() is None
        if full:
            async with session(port) as ws:
                cron = await ws.call("cron.status")
            print(f"cron at the end: {json.dumps(cron)[:300]}")
            scheduled = sum(
                1 for body in rig.llm.bodies if "scheduled check" in last_user_text(body)
            )
            tool_calls = sum(1 for body in rig.llm.bodies if tool_results(body))
            print(
                f"model requests from cron runs: {scheduled}; requests answering a tool: {tool_calls}"
            )
    await embeddings.stop()
    resets = f", /new every {new_every} messages per DM" if new_every else ""
    everything = (
        f", everything on ({CRON_JOBS} cron jobs, tools, memory index, both providers)"
        if full
        else ""
    )
    title = (
        f"soak {minutes:g} min, {time.strftime('%Y-%m-%d')}: {CHAT_CLIENTS} chat clients,"
        f" {RECONNECT_CLIENTS} reconnect loops, Telegram + Discord DMs{resets},"
        f" zero-latency fake model{everything}"
    )
    report(rec, title)
    print(steady_state(rec))
    write_svg(rec, SVG_PATH, title)
    print(f"plot: {SVG_PATH}")
    print(f"operations per worker: {counts}")
    print(f"gateway alive at the end: {alive}; exit code after SIGTERM: {proc.returncode}")


if __name__ == "__main__":
    args = sys.argv[1:]
    every = 0
    full = "--full" in args
    if full:
        args.remove("--full")
    if "--new-every" in args:
        i = args.index("--new-every")
        every = int(args[i + 1])
        del args[i : i + 2]
    asyncio.run(main(float(args[0]) if args else 3.0, every, full))
