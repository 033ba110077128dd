#!/usr/bin/env python3
"""Exit 0 when GET /healthz on the running gateway answers 200 {"ok": true}.

The image's Docker HEALTHCHECK (`/usr/local/bin/clawgate-healthcheck`; Fly ignores it and uses
fly.toml's checks). The slim base image has no HTTP client program, hence stdlib Python.
It follows the port the running gateway actually bound, read from its lock payload
(<state>/tmp/openclaw-<uid>/gateway.state.lock), so a `--port` override needs no change here.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import urllib.request

FALLBACK_PORT = 3000


def lock_port(state: str) -> int | None:
    """The port in the first readable gateway lock payload under `state`."""
    uids = [os.environ.get("CLAWGATE_UID", "").strip(), str(os.getuid())]
    paths = [os.path.join(state, "tmp", f"openclaw-{u}", "gateway.state.lock") for u in uids if u]
    paths += sorted(glob.glob(os.path.join(state, "tmp", "openclaw-*", "gateway.state.lock")))
    for path in paths:
        try:
            with open(path, encoding="utf-8") as fh:
                payload, _ = json.JSONDecoder().raw_decode(fh.read().lstrip())
            port = int(payload["port"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if 0 < port < 65536:
            return port
    return None


def env_port() -> int | None:
    """`OPENCLAW_GATEWAY_PORT` (digits or host:port), when valid."""
    raw = os.environ.get("OPENCLAW_GATEWAY_PORT", "").strip().rsplit(":", 1)[-1]
    return int(raw) if raw.isdigit() and 0 < int(raw) < 65536 else None


def main() -> int:
    state = os.environ.get("OPENCLAW_STATE_DIR", "").strip() or "/data"
    port = lock_port(state) or env_port() or FALLBACK_PORT
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://127.0.0.1:{port}/healthz", timeout=4) as resp:
            body = json.loads(resp.read() or b"{}")
            healthy = resp.status == 200 and isinstance(body, dict) and body.get("ok") is True
    except (OSError, ValueError) as exc:
        print(f"healthcheck: port {port}: {exc}", file=sys.stderr)
        return 1
    return 0 if healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())
