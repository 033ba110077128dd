"""Scheduler overhead with many jobs: memory, CPU per timer tick, add/fire/restart costs.

    .venv/bin/python bench/cron.py [--jobs 10000]

Runs the real CronService and store (files under a temp dir) on a hand clock, so no waiting:
* add: `cron.add`-path cost per job (validation, next-run, atomic rewrite of jobs.json);
* memory: Python heap held by the jobs (tracemalloc) and the process RSS;
* idle tick: one timer round with nothing due (the due scan + the next-wake computation);
* fire: a round in which 100 jobs are due (marker write, run, run-log entry, state write);
  the payload is an agent turn with no agent service attached, so it ends at once — this is
  the scheduler's own overhead, not a model call;
* restart: load + recovery of the whole store from disk.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.config.loader import LoadedConfig
from gateway.config.models import OpenClawConfig
from gateway.cron.clock import ManualClock
from gateway.cron.service import CronService
from gateway.cron.store import CronStore
from gateway.runtime import Gateway
from gateway.server import resolve_settings
from gateway.settings import Flags

T0 = 1_795_770_000_000
MIN = 60_000


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_gateway(state_dir: Path) -> Gateway:
    loaded = LoadedConfig(path=state_dir / "openclaw.json", exists=False, config=OpenClawConfig())
    env = {"OPENCLAW_STATE_DIR": str(state_dir), "OPENCLAW_GATEWAY_TOKEN": "bench"}
    settings = resolve_settings(Flags(port=1, bind="loopback"), loaded, env)
    return Gateway.from_loaded(settings, loaded)


def job(i: int) -> dict[str, object]:
    kind = i % 3
    if kind == 0:
        schedule: dict[str, object] = {"kind": "every", "everyMs": (5 + i % 55) * MIN}
    elif kind == 1:
        schedule = {"kind": "cron", "expr": f"{i % 60} {i % 24} * * *", "tz": "Europe/Berlin"}
    else:
        schedule = {"kind": "at", "at": str(T0 + (1 + i % 10_000) * MIN)}
    return {
        "name": f"job-{i}",
        "schedule": schedule,
        "sessionTarget": "isolated",
        "wakeMode": "now",
        "payload": {"kind": "agentTurn", "message": f"task {i}"},
        "delivery": {"mode": "none"},
    }


async def bench(n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="clawgate-cron-bench-") as tmp:
        state = Path(tmp)
        gw = make_gateway(state)
        clock = ManualClock(T0)
        svc = CronService(gw, CronStore(state), clock)
        svc._sem = asyncio.Semaphore(8)  # started without the timer task: we drive the ticks

        rss0 = rss_mb()
        tracemalloc.start()
        # Adding rewrites jobs.json per job (that is the durability rule), so time a sample
        # and bulk-load the rest the way a restart would.
        sample = 200
        t = time.perf_counter()
        for i in range(sample):
            svc.add(job(i))
        add_ms = (time.perf_counter() - t) * 1000 / sample
        # Bulk: validate + insert without rewriting the file each time, then save once.
        store_save = svc._save_jobs
        svc._save_jobs = lambda: None  # type: ignore[method-assign]
        svc._save_states = lambda: None  # type: ignore[method-assign]
        for i in range(sample, n):
            svc.add(job(i))
        svc._save_jobs = store_save  # type: ignore[method-assign]
        del svc._save_states
        heap_mb = tracemalloc.get_traced_memory()[0] / 1e6
        tracemalloc.stop()
        t = time.perf_counter()
        svc._save_jobs()
        save_jobs_ms = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        svc._save_states()
        save_states_ms = (time.perf_counter() - t) * 1000
        rss1 = rss_mb()

        # Idle ticks: nothing due.
        rounds = 50
        cpu = time.process_time()
        for _ in range(rounds):
            await svc.tick()
            svc.next_delay_ms()
        idle_tick_ms = (time.process_time() - cpu) * 1000 / rounds

        # A busy round: move the clock to just past the 100 earliest slots.
        slots = sorted(j.state.next_run_at_ms or 0 for j in svc.jobs.values())
        await clock.set(slots[99])
        cpu = time.process_time()
        wall = time.perf_counter()
        fired = await svc.tick()
        await svc.wait_idle()
        svc.flush()
        fire_cpu_ms = (time.process_time() - cpu) * 1000
        fire_wall_ms = (time.perf_counter() - wall) * 1000

        # Restart: a fresh service loads and recovers the store.
        svc2 = CronService(gw, CronStore(state), ManualClock(slots[99] + MIN))
        t = time.perf_counter()
        svc2.load()
        svc2.recover()
        restart_ms = (time.perf_counter() - t) * 1000

        size_kb = (state / "cron" / "jobs.json").stat().st_size / 1024
        state_kb = (state / "cron" / "jobs-state.json").stat().st_size / 1024

    print(f"jobs                         {n}")
    print(f"add (validate+save, each)    {add_ms:.2f} ms  (jobs.json {size_kb:.0f} KB)")
    print(f"save jobs.json / state       {save_jobs_ms:.1f} ms / {save_states_ms:.1f} ms"
          f"  (state {state_kb:.0f} KB)")  # fmt: skip
    print(f"heap held by jobs            {heap_mb:.1f} MB  ({heap_mb * 1e6 / n:.0f} B/job)")
    print(f"process RSS                  {rss0:.0f} → {rss1:.0f} MB (max RSS)")
    print(f"idle timer tick (CPU)        {idle_tick_ms:.2f} ms")
    print(f"round firing {len(fired)} jobs        {fire_cpu_ms:.0f} ms CPU, {fire_wall_ms:.0f} ms wall"
          f" ({fire_cpu_ms / max(1, len(fired)):.2f} ms CPU/fire)")  # fmt: skip
    print(f"restart load + recover       {restart_ms:.0f} ms")
    print(f"cpus                         {os.cpu_count()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    args = parser.parse_args()
    asyncio.run(bench(args.jobs))


if __name__ == "__main__":
    main()
