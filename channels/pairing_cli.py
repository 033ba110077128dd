"""`python -m gateway pairing list [channel]` / `pairing approve <channel> <code>`.

Works on the state dir's pairing store directly, whether or not a gateway is running (the
running gateway re-reads approvals on every DM admission check).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from channels.pairing import PairingStore
from gateway.paths import state_dir

CHANNELS = ("discord", "telegram")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gateway pairing", description="DM pairing requests."
    )
    sub = parser.add_subparsers(dest="action", required=True)
    ls = sub.add_parser("list", help="pending pairing requests")
    ls.add_argument("channel", nargs="?", choices=CHANNELS)
    ls.add_argument("--account", help="channel account id")
    ap = sub.add_parser("approve", help="approve a pairing code")
    ap.add_argument("channel", choices=CHANNELS)
    ap.add_argument("code")
    ap.add_argument("--account", help="channel account id")
    return parser


def main(argv: Sequence[str]) -> int:
    try:
        ns = _parser().parse_args(list(argv))
    except SystemExit as exc:
        return 1 if exc.code else 0
    store = PairingStore(state_dir())
    if ns.action == "list":
        requests = store.pending(ns.channel, ns.account)
        if not requests:
            print("No pending pairing requests.")
            return 0
        for r in requests:
            created = datetime.fromtimestamp(r.created_at / 1000, tz=UTC).strftime(
                "%Y-%m-%d %H:%M UTC"
            )
            label = f" ({r.sender_label})" if r.sender_label else ""
            print(f"{r.channel}\t{r.account_id}\t{r.code}\t{r.sender_id}{label}\t{created}")
        return 0
    approved = store.approve(ns.channel, ns.code, ns.account)
    if approved is None:
        print(
            f"No pending {ns.channel} pairing request with code {ns.code.upper()}.", file=sys.stderr
        )
        return 1
    print(f"Approved {ns.channel} sender {approved.sender_id}; their next DM reaches the agent.")
    return 0
