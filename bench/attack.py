"""Issue 12's attacks, rerun against a real gateway process on 127.0.0.1, with figures.

    .venv/bin/python bench/attack.py                 # everything (~2 minutes)
    .venv/bin/python bench/attack.py preauth pending # some of: preauth headers slowloris
                                                     # pending fds lockout pairing deep

Each attack prints what it did and what the gateway cost / answered. Defaults are the shipped
limits (gateway/ws/limits.py); nothing is shrunk except where a line says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import websockets

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fakes.llm import FakeLLM  # noqa: E402
from tests.fakes.telegram import TOKEN as TG_TOKEN  # noqa: E402
from tests.fakes.telegram import FakeTelegram  # noqa: E402
from tests.hardening.rawclient import (  # noqa: E402
    close_code,
    closed_within,
    frame_header,
    open_raw,
    read_frame,
    text_frame,
    ws_open,
)
from tests.harness import Client, connect_params, free_port  # noqa: E402

TOKEN = "attack-bench-token-0123456789abcdef"
MIB = 1024 * 1024


# --- the gateway process ------------------------------------------------------------------------


@dataclass
class Gateway:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def rss_mb(self) -> float:
        return _status_kb(self.proc.pid, "VmRSS") / 1024

    def peak_mb(self) -> float:
        return _status_kb(self.proc.pid, "VmHWM") / 1024

    def log_lines(self) -> list[str]:
        try:
            return self.log.read_text(errors="replace").splitlines()
        except OSError:
            return []


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak(pid: int) -> None:
    # Writing 5 to clear_refs resets VmHWM (Linux ≥ 4.0), so each attack's peak is its own.
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


@contextlib.asynccontextmanager
async def gateway(
    work: Path,
    config: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    nofile: int | None = None,
) -> AsyncIterator[Gateway]:
    state = Path(tempfile.mkdtemp(prefix="state-", dir=work))
    (state / "openclaw.json").write_text(json.dumps(config or {"gateway": {"mode": "local"}}))
    port = free_port()
    log = state / "gateway.log"
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OPENCLAW_", "FLY_"))}
    full.update(
        OPENCLAW_STATE_DIR=str(state),
        OPENCLAW_GATEWAY_TOKEN=TOKEN,
        PYTHONUNBUFFERED="1",
        CLAWGATE_FAILOVER_TIME_SCALE="0.001",
    )
    if config is None or "channels" not in config:
        full["OPENCLAW_SKIP_CHANNELS"] = "1"
    full.update(env or {})
    cmd = [sys.executable, "-m", "gateway", "--bind", "loopback", "--port", str(port)]
    if nofile is not None:
        cmd = ["prlimit", f"--nofile={nofile}:{nofile}", "--", *cmd]
    proc = _spawn(cmd, full, log)
    gw = Gateway(proc, port, log)
    try:
        await _healthy(gw)
        yield gw
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                await asyncio.to_thread(proc.wait, 15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def to_chat(chat: int | str) -> Any:
    return lambda p: str(p.get("chat_id")) == str(chat)


async def _healthy(gw: Gateway, within: float = 30.0) -> None:
    start = time.perf_counter()
    while time.perf_counter() - start < within:
        if gw.proc.poll() is not None:
            raise RuntimeError("gateway exited:\n" + "\n".join(gw.log_lines()[-30:]))
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.write(b"GET /healthz HTTP/1.0\r\n\r\n")
            status = await reader.readline()
            writer.close()
            if b" 200 " in status:
                return
        except OSError:
            pass
        await asyncio.sleep(0.02)
    raise RuntimeError("gateway not healthy:\n" + "\n".join(gw.log_lines()[-30:]))


async def operator_connect(
    gw: Gateway, headers: dict[str, str] | None = None, token: str = TOKEN
) -> float:
    """Seconds from TCP connect to hello-ok for a client with the right secret."""
    start = time.perf_counter()
    async with websockets.connect(
        gw.ws, additional_headers=headers or {}, open_timeout=30, max_size=None
    ) as ws:
        client = Client(ws)
        await client.recv(30)
        res = await client.request("connect", connect_params(token=token), timeout=30)
        if not res.get("ok"):
            raise RuntimeError(f"operator refused: {res}")
    return time.perf_counter() - start


def show(title: str, rows: dict[str, Any]) -> None:
    print(f"\n== {title}")
    for key, value in rows.items():
        print(f"  {key:<52} {value}")


# --- 1. memory before login ---------------------------------------------------------------------


async def preauth(work: Path) -> None:
    async with gateway(work) as gw:
        await asyncio.sleep(0.5)
        before = gw.rss_mb()
        _reset_peak(gw.proc.pid)

        async def one() -> tuple[int | None, int]:
            reader, writer, _ = await ws_open(gw.port)
            await read_frame(reader)
            writer.write(frame_header(25 * MIB))
            answer = asyncio.create_task(asyncio.wait_for(read_frame(reader), 5))
            sent = 0
            chunk = b"x" * MIB
            with contextlib.suppress(ConnectionError, OSError):
                for _ in range(25):
                    writer.write(chunk)
                    await writer.drain()
                    sent += MIB
            code = None
            with contextlib.suppress(Exception):
                opcode, payload = await answer
                code = close_code(payload) if opcode == 8 else None
            writer.close()
            return code, sent

        start = time.perf_counter()
        results = await asyncio.gather(*(one() for _ in range(12)))
        took = time.perf_counter() - start
        await asyncio.sleep(0.5)
        show(
            "12 unauthenticated connections each sending one 25 MiB message",
            {
                "close codes": sorted({c for c, _ in results}, key=str),
                "MiB the attackers managed to send (of 300)": round(
                    sum(s for _, s in results) / MIB, 1
                ),
                "RSS before → peak → after (MB)": f"{before:.1f} → {gw.peak_mb():.1f} → "
                f"{gw.rss_mb():.1f}",
                "peak growth (MB)": round(gw.peak_mb() - before, 1),
                "attack took (s)": round(took, 2),
            },
        )


async def headers(work: Path) -> None:
    async with gateway(work) as gw:
        await asyncio.sleep(0.5)
        before = gw.rss_mb()
        _reset_peak(gw.proc.pid)

        async def bomb() -> tuple[int, float]:
            reader, writer = await open_raw(gw.port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Bomb: ")
            sent, start = 0, time.perf_counter()
            with contextlib.suppress(ConnectionError, OSError):
                for _ in range(50):
                    writer.write(b"a" * MIB)
                    await writer.drain()
                    sent += MIB
            await closed_within(reader, 5)
            writer.close()
            return sent, time.perf_counter() - start

        results = await asyncio.gather(*(bomb() for _ in range(10)))
        show(
            "10 clients each sending a never-ending (50 MiB) header",
            {
                "MiB accepted before the server closed, per client (max)": round(
                    max(s for s, _ in results) / MIB, 2
                ),
                "closed after (s, max)": round(max(t for _, t in results), 2),
                "RSS before → peak (MB)": f"{before:.1f} → {gw.peak_mb():.1f}",
            },
        )


async def slowloris(work: Path) -> None:
    async with gateway(work) as gw:
        # From 100 addresses: from one, all but 32 would be refused at once (the per-address cap).
        conns = [await open_raw(gw.port, f"127.0.4.{i + 1}") for i in range(100)]
        start = time.perf_counter()
        stop = asyncio.Event()

        async def trickle(writer: asyncio.StreamWriter) -> None:
            writer.write(b"GET / HTTP/1.1\r\n")
            for i in range(60):
                if stop.is_set():
                    return
                await asyncio.sleep(1)
                with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                    writer.write(f"X-Slow-{i}: x\r\n".encode())

        async def closed_at(reader: asyncio.StreamReader) -> float:
            await closed_within(reader, 40)
            return time.perf_counter() - start

        feeders = [asyncio.create_task(trickle(w)) for _, w in conns[:50]]  # 50 slowloris
        times = await asyncio.gather(*(closed_at(r) for r, _ in conns))  # + 50 silent
        stop.set()
        await asyncio.gather(*feeders, return_exceptions=True)
        for _, w in conns:
            w.close()
        show(
            "50 slowloris connections (a header line a second) + 50 silent ones",
            {
                "slowloris closed after (s, min/max)": f"{min(times[:50]):.1f} / "
                f"{max(times[:50]):.1f}",
                "silent closed after (s, min/max)": f"{min(times[50:]):.1f} / "
                f"{max(times[50:]):.1f}",
                "header timeout (CLAWGATE_HEADER_TIMEOUT_MS)": "10 s",
            },
        )


# --- pending connections ---------------------------------------------------------------------


async def _flood(port: int, total: int, sources: list[str]) -> list[asyncio.StreamWriter]:
    writers: list[asyncio.StreamWriter] = []
    sem = asyncio.Semaphore(400)

    async def one(i: int) -> None:
        async with sem:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                _, writer, _ = await asyncio.wait_for(ws_open(port, sources[i % len(sources)]), 10)
                writers.append(writer)

    await asyncio.gather(*(one(i) for i in range(total)))
    return writers


@contextlib.asynccontextmanager
async def flood_process(port: int, total: int, sources: list[str]) -> AsyncIterator[Any]:
    """The flood from another process, so it never delays the client we time here."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--flood",
        str(port),
        str(total),
        ",".join(sources),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.wait(), 30)
        if proc.returncode is None:
            proc.kill()


async def flood_main(port: int, total: int, sources: list[str]) -> None:
    print("go", flush=True)
    writers = await _flood(port, total, sources)
    print(f"upgraded {len(writers)}", flush=True)
    await asyncio.to_thread(sys.stdin.read)


async def pending(work: Path) -> None:
    for label, sources in (
        ("9,000 pending WebSockets from one address", ["127.0.0.2"]),
        (
            "9,000 pending WebSockets from 300 addresses",
            [f"127.0.{i // 250 + 1}.{i % 250 + 1}" for i in range(300)],
        ),
    ):
        async with gateway(work) as gw:
            idle = statistics.median([await operator_connect(gw) for _ in range(5)])
            async with flood_process(gw.port, 9000, sources) as flood:
                assert flood.stdout is not None
                await asyncio.wait_for(flood.stdout.readline(), 60)  # "go"
                started = time.perf_counter()
                done = asyncio.create_task(flood.stdout.readline())
                during: list[float] = []
                while not done.done() or not during:
                    during.append(await operator_connect(gw))
                flood_s = time.perf_counter() - started
                line = (await asyncio.wait_for(done, 120)).decode().split()
                held = [await operator_connect(gw) for _ in range(5)]
                rss = gw.rss_mb()
                fds = len(os.listdir(f"/proc/{gw.proc.pid}/fd"))
            show(
                label,
                {
                    "real client connect → hello-ok, idle (ms, median)": round(idle * 1000, 1),
                    f"... during the flood ({flood_s:.1f} s, {len(during)} connects)"
                    " (ms, median / max)": _ms(during),
                    "... with the flood held open (ms, median / max)": _ms(held),
                    "attacker upgrades answered (101)": line[1],
                    "gateway descriptors with the flood held": fds,
                    "gateway RSS with the flood held (MB)": round(rss, 1),
                },
            )


def _ms(times: list[float]) -> str:
    return f"{statistics.median(times) * 1000:.1f} / {max(times) * 1000:.1f}"


# --- fd exhaustion with a Telegram DM arriving ---------------------------------------------------


async def fds(work: Path) -> None:
    tg = FakeTelegram()
    llm = FakeLLM(default_text="still here")
    await tg.start()
    await llm.start()
    config = {
        "gateway": {"mode": "local"},
        "models": {"providers": {"openai": {"baseUrl": llm.url + "/v1", "apiKey": "sk-bench"}}},
        "agents": {"defaults": {"model": {"primary": "openai/gpt-bench"}}},
        "channels": {
            "telegram": {
                "botToken": TG_TOKEN,
                "apiRoot": tg.url,
                "dmPolicy": "open",
                "allowFrom": ["*"],
            }
        },
    }
    try:
        async with gateway(work, config, nofile=256) as gw:
            await tg.wait_for("getUpdates", lambda p: True, 30)
            lines_before = len(gw.log_lines())
            sources = [f"127.0.3.{i + 1}" for i in range(100)]
            writers = await _flood(gw.port, 3000, sources)
            await asyncio.sleep(1)
            answered = []
            for i in range(5):
                start = time.perf_counter()
                tg.text_update(f"dm {i} during the flood", user_id=7000 + i, chat_id=7000 + i)
                await tg.wait_for("sendMessage", to_chat(7000 + i), 30)
                answered.append(time.perf_counter() - start)
            await asyncio.sleep(3)
            flood_lines = gw.log_lines()[lines_before:]
            fd_count = len(os.listdir(f"/proc/{gw.proc.pid}/fd"))
            show(
                "descriptor limit 256 (prlimit), 3,000 connections from 100 addresses, 5 DMs",
                {
                    "gateway descriptors in use (limit 256)": fd_count,
                    "attacker connections upgraded": len(writers),
                    "DMs answered": f"{len(answered)}/5",
                    "DM → reply (s, max)": round(max(answered), 3),
                    "log lines during the flood": len(flood_lines),
                    "'out of system resource' lines": sum(
                        "out of system resource" in line for line in flood_lines
                    ),
                },
            )
            for w in writers:
                w.close()
    finally:
        await tg.stop()
        await llm.stop()


# --- lockout behind a proxy ----------------------------------------------------------------------


async def lockout(work: Path) -> None:
    # A Fly Machine: every peer is Fly's proxy; Fly-Client-IP names the client.
    async with gateway(work, env={"FLY_APP_NAME": "attack-bench"}) as gw:
        stop = asyncio.Event()
        answers: list[tuple[float, str]] = []

        async def attacker() -> None:
            while not stop.is_set():
                with contextlib.suppress(Exception):
                    reader, writer, _ = await ws_open(
                        gw.port, headers={"Fly-Client-IP": "203.0.113.66"}
                    )
                    await read_frame(reader)
                    writer.write(
                        text_frame(
                            json.dumps(
                                {
                                    "type": "req",
                                    "id": "x",
                                    "method": "connect",
                                    "params": connect_params(token="guess"),
                                }
                            )
                        )
                    )
                    _, payload = await asyncio.wait_for(read_frame(reader), 20)
                    code = json.loads(payload)["error"]["details"]["code"]
                    answers.append((time.perf_counter(), code))
                    writer.close()

        # 20 at a time: under the address's 32 unauthenticated connections, so the operator
        # sharing the address still finds a place (a flood over 32 would crowd it out).
        tasks = [asyncio.create_task(attacker()) for _ in range(20)]
        await asyncio.sleep(3)
        other = [await operator_connect(gw, {"Fly-Client-IP": "198.51.100.7"}) for _ in range(5)]
        same = [await operator_connect(gw, {"Fly-Client-IP": "203.0.113.66"}) for _ in range(5)]
        t_window = time.perf_counter()
        await asyncio.sleep(20)
        stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        limited = [a for a in answers if a[1] == "AUTH_RATE_LIMITED" and a[0] >= t_window]
        show(
            "Fly proxy (FLY_APP_NAME set): 20 concurrent attackers guessing from one address",
            {
                "wrong guesses answered before the throttle": sum(
                    1 for _, c in answers if c == "AUTH_TOKEN_MISMATCH"
                ),
                "guesses/s once throttled (20 s window)": round(len(limited) / 20, 2),
                "operator, other address: connect (ms, max)": round(max(other) * 1000, 1),
                "operator, the attacker's address: connect (ms, max)": round(max(same) * 1000, 1),
            },
        )


# --- pairing flood --------------------------------------------------------------------------------


async def pairing(work: Path) -> None:
    tg = FakeTelegram()
    llm = FakeLLM()
    await tg.start()
    await llm.start()
    config = {
        "gateway": {"mode": "local"},
        "models": {"providers": {"openai": {"baseUrl": llm.url + "/v1", "apiKey": "sk-bench"}}},
        "agents": {"defaults": {"model": {"primary": "openai/gpt-bench"}}},
        "channels": {"telegram": {"botToken": TG_TOKEN, "apiRoot": tg.url}},
    }
    try:
        async with gateway(work, config) as gw:
            await tg.wait_for("getUpdates", lambda p: True, 30)
            for user in range(3):  # the attacker's three slots
                tg.text_update("pair me", user_id=8000 + user, chat_id=8000 + user)
            for round_ in range(3):  # 200 newcomers, three messages each
                for user in range(200):
                    tg.text_update(f"hello {round_}", user_id=9000 + user, chat_id=9000 + user)
            tg.text_update("genuine newcomer", user_id=9999, chat_id=9999)
            told = await tg.wait_for("sendMessage", lambda p: str(p["chat_id"]) == "9999", 60)
            await asyncio.sleep(2)
            sent = tg.calls("sendMessage")
            full = [m for m in sent if "too many pending" in m["text"]]
            per_chat: dict[str, int] = {}
            for m in full:
                per_chat[str(m["chat_id"])] = per_chat.get(str(m["chat_id"]), 0) + 1
            owner_lines = [line for line in gw.log_lines() if "pending list is full" in line]
            show(
                "pairing flood: 3 pending + 200 newcomers x3 messages + a genuine newcomer",
                {
                    "the genuine newcomer was told": "too many pending" in told["text"],
                    "'too many pending' replies (one per newcomer)": f"{len(full)} to "
                    f"{len(per_chat)} chats, max {max(per_chat.values())} per chat",
                    "owner log lines": len(owner_lines),
                },
            )
    finally:
        await tg.stop()
        await llm.stop()


# --- deep JSON -------------------------------------------------------------------------------------


async def deep(work: Path) -> None:
    async with gateway(work) as gw:
        async with websockets.connect(gw.ws, max_size=None) as ws:
            client = Client(ws)
            await client.recv()
            await client.request("connect", connect_params(token=TOKEN))
            rows: dict[str, Any] = {}
            for name, params in (
                ("1,000,000-deep arrays", "[" * 1_000_000 + "]" * 1_000_000),
                ("a 5,000-digit integer", "9" * 5000),
            ):
                start = time.perf_counter()
                await ws.send(f'{{"type":"req","id":"d","method":"health","params":{params}}}')
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    if frame.get("type") == "res":
                        break
                took = (time.perf_counter() - start) * 1000
                rows[name] = (
                    f"{frame['error']['code']}: {frame['error']['message']} ({took:.0f} ms)"
                )
            show("after login: frames that used to get no answer", rows)


ATTACKS = {
    "preauth": preauth,
    "headers": headers,
    "slowloris": slowloris,
    "pending": pending,
    "fds": fds,
    "lockout": lockout,
    "pairing": pairing,
    "deep": deep,
}


async def main(argv: list[str]) -> None:
    logging.getLogger("asyncio").setLevel(logging.ERROR)  # our own writes after a refusal
    if argv[:1] == ["--flood"]:
        await flood_main(int(argv[1]), int(argv[2]), argv[3].split(","))
        return
    which = [a for a in argv if a in ATTACKS] or list(ATTACKS)
    print(f"attack bench {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="clawgate-attack-") as tmp:
        for name in which:
            await ATTACKS[name](Path(tmp))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
