"""A stand-in gateway process for the secret tests: it holds the secrets in its environment
(and so in /proc/<pid>/environ), runs each command of argv[1] (JSON list) through the real
exec tool, and prints the results as JSON. argv[2] "no-namespace" disables the PID namespace
so the PR_SET_DUMPABLE line of defence is tested on its own."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

from gateway.agents.tools import environment

from .helpers import call, config, context


async def main() -> None:
    commands = json.loads(sys.argv[1])
    if len(sys.argv) > 2 and sys.argv[2] == "no-namespace":
        environment._isolation = []
    cfg = config(json.loads(os.environ.get("EXEC_HOST_CONFIG", "{}")), os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        ctx = context(Path(tmp) / "workspace", cfg)
        results = []
        for command in commands:
            out = await call(
                ctx, "exec", command=command.replace("{GATEWAY_PID}", str(os.getpid()))
            )
            results.append(out.text)
    print(json.dumps({"pid": os.getpid(), "results": results}))


if __name__ == "__main__":
    asyncio.run(main())
