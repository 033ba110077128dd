"""`python -m tests.agents.gateway_main …`: the real gateway with the loop-test tools loaded."""

from __future__ import annotations

import tests.agents.loop_tools  # noqa: F401  (registers the test tools)
from gateway.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
