"""Many concurrent authenticated WebSocket clients against the real gateway process.

Measures `health` RPC latency (p50/p99) from a sample of clients while N clients stay connected,
and the gateway's RSS, at each client count.

    .venv/bin/python bench/ws_load.py [counts, default 0,500,2000] [requests per level, default 400]
"""

from __future__ import annotations

import asyncio
import json
import resource
import statistics
import sys
import time

import websockets
from _proc import connect_params, open_client, pct, rss_mb, start, stop, wait_healthy

READ = connect_params(["operator.read"])


async def idle_reader(ws: websockets.ClientConnection) -> None:
    # Keep reading (events, pings) like a real client, so the server never sees a dead peer.
    try:
        async for _ in ws:
            pass
    except websockets.ConnectionClosed:
        pass


async def call_health(ws: websockets.ClientConnection, n: int) -> float:
    t0 = time.perf_counter()
    await ws.send(json.dumps({"type": "req", "id": f"h{n}", "method": "health"}))
    while json.loads(await ws.recv()).get("id") != f"h{n}":
        pass
    return (time.perf_counter() - t0) * 1000


async def main() -> None:
    counts = [int(c) for c in (sys.argv[1] if len(sys.argv) > 1 else "0,500,2000").split(",")]
    per_level = int(sys.argv[2]) if len(sys.argv) > 2 else 400
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    proc, port = start()
    url = f"ws://127.0.0.1:{port}/"
    clients: list[websockets.ClientConnection] = []
    readers: list[asyncio.Task[None]] = []
    try:
        wait_healthy(port)
        probe = await open_client(url, READ)
        print(f"{'clients':>8} {'health p50 ms':>14} {'p99 ms':>8} {'RSS MB':>8}")
        for target in counts:
            while len(clients) < target:
                batch = min(200, target - len(clients))
                clients += await asyncio.gather(*(open_client(url, READ) for _ in range(batch)))
                readers += [asyncio.create_task(idle_reader(c)) for c in clients[len(readers) :]]
            await asyncio.sleep(1.0)
            # The probe asks while all the other clients stay connected (and reading).
            latencies = [await call_health(probe, n) for n in range(per_level)]
            print(
                f"{len(clients):>8} {statistics.median(latencies):>14.2f} {pct(latencies, 0.99):>8.2f} {rss_mb(proc.pid):>8.1f}"
            )
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        stop(proc)


if __name__ == "__main__":
    asyncio.run(main())
