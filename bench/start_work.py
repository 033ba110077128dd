"""Instructions executed from `python -m gateway` to the listening socket, counted by valgrind.

Wall time on a shared 2-core VM moves with the neighbours' load; an instruction count does not
(with a fixed hash seed it repeats to the instruction), so this is how a change to the start
path is judged before `bench/startup.py` confirms it on a quiet machine. The gateway runs as
`python -m gateway` does (collections paused from the first line) with the deferred start
switched off, and exits the moment uvicorn accepts on the socket. Needs `valgrind`
(apt install valgrind); takes ~20 s per run under callgrind.

    .venv/bin/python bench/start_work.py [--bare]

`--bare` also counts an empty interpreter, for scale.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile

from _proc import ROOT, free_port

HARNESS = """
import gc, os, sys, asyncio
gc.disable()
import gateway.cli as cli, gateway.runtime as runtime, gateway.server as server
runtime.Gateway.start_in_background = lambda self: None  # nothing after the socket
async def serve(gateway, sock, drain_timeout_s=None):
    s = server.make_server(gateway, 1.0)
    asyncio.get_running_loop().create_task(s.serve(sockets=[sock]))
    while not s.started:
        await asyncio.sleep(0.001)
    os._exit(0)
server.serve = serve
cli.main(["--allow-unconfigured", "--bind", "loopback", "--port", sys.argv[1]])
"""


def count(args: list[str], env: dict[str, str]) -> int:
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"Collected : (\d+)", out.stderr)
    if match is None:
        raise RuntimeError(f"no count from valgrind:\n{out.stderr[-2000:]}")
    return int(match.group(1))


def main() -> None:
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt install valgrind)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCLAW_")}
    env.update(
        OPENCLAW_STATE_DIR=tempfile.mkdtemp(prefix="clawgate-bench-startwork-"),
        OPENCLAW_GATEWAY_TOKEN="bench-token",
        OPENCLAW_SKIP_CHANNELS="1",
        PYTHONHASHSEED="0",
    )
    python = sys.executable
    work = count([python, "-c", HARNESS, str(free_port())], env)
    print(f"start → listening socket: {work / 1e6:,.0f} M instructions")
    if "--bare" in sys.argv[1:]:
        bare = count([python, "-c", "pass"], env)
        print(f"empty interpreter:        {bare / 1e6:,.0f} M instructions")
    shutil.rmtree(env["OPENCLAW_STATE_DIR"], ignore_errors=True)


if __name__ == "__main__":
    main()
