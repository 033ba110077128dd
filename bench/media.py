"""Memory of big uploads: a 20 MB file through Telegram, Discord and chat.send.

The gateway runs as its own `python -m gateway` process against the fake Bot API, fake
Discord and fake model of tests/fakes. After one small warm-up file per route (libraries
loaded), each route gets ROUNDS files of SIZE_MB of random bytes (stored to disk, described
to the agent); the gateway's RSS is read before, at its peak (VmHWM) and, steady, SETTLE
seconds after the last answer. Files go to disk as they arrive (chat.send base64 is decoded
piece by piece), and freed buffers are handed back to the system (gateway/media/memory.py),
so the steady figure stays near the baseline; the WebSocket library keeps a connection's
last frame until its next one, so chat.send keeps one frame (~1.3 x the file) per connection.

    .venv/bin/python bench/media.py [size_mb, default 20] [rounds, default 3]
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from _proc import ROOT, connect_params, open_client, start, stop, wait_healthy

sys.path.insert(0, str(ROOT))
from tests.fakes import discord as fd
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import FakeTelegram

SETTLE = 3.0
MB = 1024 * 1024


def status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def disk_usage(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


async def main(size_mb: float, rounds: int) -> None:
    llm, tg, dc = FakeLLM(default_text="stored"), FakeTelegram(), FakeDiscord()
    for server in (llm, tg, dc):
        await server.start()
    state = tempfile.mkdtemp(prefix="clawgate-bench-media-")
    open_dms = {"dmPolicy": "open", "allowFrom": ["*"]}
    config = {
        "models": {"providers": {"openai": {"baseUrl": llm.url + "/v1", "apiKey": "sk-bench"}}},
        "agents": {"defaults": {"model": {"primary": "openai/gpt-bench"}}},
        "channels": {
            "telegram": {"botToken": tg.token, "apiRoot": tg.url, **open_dms},
            "discord": {"token": dc.token, **open_dms},
        },
    }
    (Path(state) / "openclaw.json").write_text(json.dumps(config))
    proc, port = start(state, {"OPENCLAW_SKIP_CHANNELS": "", "DISCORD_API_URL": dc.api_base})
    answers = 0

    async def answered(n: int) -> None:
        await llm.wait_until(lambda reqs: len([r for r in reqs if "body" in r]) >= n, 120)

    try:
        await asyncio.to_thread(wait_healthy, port)
        await tg.wait_until(lambda reqs: any(r["method"] == "getUpdates" for r in reqs), 30)
        await dc.wait_until(lambda _: dc.connected_sockets > 0, 30)
        ws = await open_client(f"ws://127.0.0.1:{port}/", connect_params(["operator.write"]))
        size = int(size_mb * MB)
        chat_size = min(size, 19_000_000)  # one WebSocket frame's attachment ceiling
        user = 100

        async def telegram(n: int) -> None:
            nonlocal user
            user += 1  # a conversation each: no queueing behind the previous file
            tg.document_update(
                os.urandom(n), "blob.bin", "application/octet-stream", user_id=user, chat_id=user
            )

        async def discord(n: int) -> None:
            att = dc.attachment("blob.bin", os.urandom(n), "application/octet-stream")
            await dc.message_create(fd.message("", fd.DM_CH, attachments=[att]))

        async def chat_send(n: int) -> None:
            content = base64.b64encode(os.urandom(n)).decode()
            frame = {
                "type": "req",
                "id": f"r{time.monotonic_ns()}",
                "method": "chat.send",
                "params": {
                    "sessionKey": f"bench-{time.monotonic_ns()}",
                    "message": "",
                    "idempotencyKey": f"k{time.monotonic_ns()}",
                    "attachments": [{"type": "file", "fileName": "blob.bin", "content": content}],
                },
            }
            await ws.send(json.dumps(frame))

        routes = {"telegram": telegram, "discord": discord, "chat.send": chat_send}
        for send in routes.values():  # warm-up: every code path loaded once
            await send(64 * 1024)
            answers += 1
            await answered(answers)
        await asyncio.sleep(SETTLE)
        base = status_mb(proc.pid, "VmRSS")
        print(
            f"{rounds} x {size_mb:g} MB per route (chat.send: {chat_size / MB:.1f} MB), "
            f"gateway RSS baseline after warm-up {base:.1f} MB"
        )
        for name, send in routes.items():
            before = status_mb(proc.pid, "VmRSS")
            t0 = time.perf_counter()
            for _ in range(rounds):
                await send(chat_size if name == "chat.send" else size)
                answers += 1
                await answered(answers)
            took = (time.perf_counter() - t0) / rounds
            await asyncio.sleep(SETTLE)
            steady = status_mb(proc.pid, "VmRSS")
            print(
                f"  {name:<9} {took:5.2f} s/file   RSS before {before:6.1f} MB   "
                f"steady after {steady:6.1f} MB ({steady - before:+.1f} MB)"
            )
        stored = await asyncio.to_thread(disk_usage, Path(state, "media"))
        print(
            f"peak RSS (VmHWM) {status_mb(proc.pid, 'VmHWM'):.1f} MB; "
            f"on disk under media/: {stored / MB:.0f} MB"
        )
        await ws.close()
    finally:
        stop(proc)
        for server in (llm, tg, dc):
            await server.stop()


if __name__ == "__main__":
    size_arg = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    rounds_arg = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    asyncio.run(main(size_arg, rounds_arg))
