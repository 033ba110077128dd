"""`python -m gateway`: the gateway's command line."""

from gateway.cli import main

raise SystemExit(main())
