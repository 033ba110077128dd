"""`python -m gateway`: the gateway's command line."""

import gc

# Cyclic collections are paused for a start's imports and resumed by the CLI (gateway/cli.py
# `run`); any other command resumes them at once.
gc.disable()

from gateway.cli import main  # noqa: E402

raise SystemExit(main())
