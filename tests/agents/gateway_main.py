"""`python -m tests.agents.gateway_main …`: the real gateway with the loop-test tools loaded."""

from __future__ import annotations

from gateway.cli import main
from tests.agents.loop_tools import install

if __name__ == "__main__":
    install()
    raise SystemExit(main())
