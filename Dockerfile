# syntax=docker/dockerfile:1
#
# clawgate container image. Used by fly.toml / fly.private.toml (see docs/deploy-fly.md);
# works the same with plain `docker build` + `docker run` (BuildKit is required for the
# heredoc files and the pip cache mount below; it is the default builder everywhere today).
#
# Nothing here is architecture-specific: the base image is multi-arch and every dependency is
# resolved by pip for the build platform, so the image builds on x86_64 and arm64 alike.
#
# tests/deploy/ parses this file: keep each instruction on its own line, ENV as KEY=value,
# CMD/ENTRYPOINT/HEALTHCHECK in exec (JSON) form.

# Same minor version as the dev venv and CI, so the test suite covers the interpreter we ship.
ARG PYTHON_VERSION=3.11

# ---------------------------------------------------------------------------------------------
# builder: a virtualenv holding clawgate and its dependencies (ranges pinned in pyproject.toml).
# Only /opt/venv leaves this stage.
# ---------------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS builder

ENV VIRTUAL_ENV=/opt/venv
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
ENV PIP_NO_INPUT=1

RUN python -m venv "$VIRTUAL_ENV"

# The build context is whitelisted by .dockerignore: pyproject.toml, README/LICENSE if present,
# and the gateway/, channels/, providers/ packages. Nothing else is sent to the builder.
WORKDIR /src
COPY . .

# A regular (non-editable) install: the package is copied into site-packages, .pyc files are
# precompiled, so the source tree is not needed at run time.
RUN --mount=type=cache,target=/root/.cache/pip "$VIRTUAL_ENV/bin/pip" install .

# ---------------------------------------------------------------------------------------------
# runtime: the same base image (the venv's interpreter symlink points at /usr/local/bin/python),
# the venv, two small stdlib-only scripts. No compilers, no pip cache, no source tree.
# ---------------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime

ENV VIRTUAL_ENV=/opt/venv
ENV PATH=/opt/venv/bin:$PATH
ENV PYTHONUNBUFFERED=1
ENV PYTHONDONTWRITEBYTECODE=1
# State (config, sessions, workspace, lock tree) lives on the Fly volume mounted at /data.
ENV OPENCLAW_STATE_DIR=/data
# The unprivileged account the gateway runs as (created below; read by clawgate-entrypoint).
ENV CLAWGATE_UID=10001
ENV CLAWGATE_GID=10001

RUN groupadd --gid 10001 clawgate && useradd --uid 10001 --gid 10001 --home-dir /home/clawgate --create-home --shell /usr/sbin/nologin clawgate && mkdir -p /data && chown 10001:10001 /data

COPY --from=builder /opt/venv /opt/venv

# Why an entrypoint, and why it starts as root (the gateway itself never runs as root):
# a Fly volume is mounted over /data at run time with a root-owned, 0755 root directory, which
# hides the chown done above, and fly.toml has no option to change the owner. Running the image
# as `USER clawgate` would therefore leave the gateway unable to create /data/tmp, /data/workspace
# and so on. This script runs first (as root), makes the state dir belong to clawgate (only the
# entries that do not already; it never follows symlinks or crosses into another filesystem),
# drops to uid/gid 10001 with no supplementary groups, and then exec()s the command unchanged.
# exec keeps the PID and the argv exactly as given, so the CMD stays exec-form and SIGTERM from
# Fly (or `docker stop`) reaches the gateway directly. Fly's [processes] replaces only CMD, never
# ENTRYPOINT, so the same privilege drop happens there. Started as non-root (`docker run --user`,
# Kubernetes runAsNonRoot), it changes nothing and just execs.
COPY --chmod=0755 <<'EOF' /usr/local/bin/clawgate-entrypoint
#!/usr/bin/env python3
"""Make the state dir writable for the gateway user, drop root, exec the command as given."""

import os
import pwd
import sys


def _id(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw.isdigit() else default


def _claim(state: str, uid: int, gid: int) -> int:
    """lchown everything under `state` (same filesystem, no symlink following) to uid:gid."""
    os.makedirs(state, exist_ok=True)
    top = os.lstat(state)
    changed = 0
    for parent, dirs, files in os.walk(state):
        keep = []
        for name in dirs + files:
            path = os.path.join(parent, name)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            if st.st_dev != top.st_dev:
                continue  # another mount below the state dir: not ours to touch
            if (st.st_uid, st.st_gid) != (uid, gid):
                os.lchown(path, uid, gid)
                changed += 1
            if name in dirs and not os.path.islink(path):
                keep.append(name)
        dirs[:] = keep
    if (top.st_uid, top.st_gid) != (uid, gid):
        os.chown(state, uid, gid)
        changed += 1
    return changed


def main(argv: list[str]) -> int:
    if not argv:
        print("clawgate-entrypoint: no command to run", file=sys.stderr)
        return 64
    uid, gid = _id("CLAWGATE_UID", 10001), _id("CLAWGATE_GID", 10001)
    if os.geteuid() == 0 and uid != 0:
        state = os.environ.get("OPENCLAW_STATE_DIR", "").strip() or "/data"
        try:
            changed = _claim(state, uid, gid)
            if changed:
                print(f"[entrypoint] gave {changed} path(s) under {state} to uid {uid}", flush=True)
        except OSError as exc:
            print(f"[entrypoint] warning: could not take ownership of {state}: {exc}",
                  file=sys.stderr, flush=True)
        try:
            account = pwd.getpwuid(uid)
        except KeyError:
            account = None
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        if account is not None:
            os.environ["HOME"] = account.pw_dir
            os.environ["USER"] = os.environ["LOGNAME"] = account.pw_name
    os.execvp(argv[0], argv)
    return 127  # not reached


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
EOF

# Docker HEALTHCHECK (Fly ignores it and uses [[http_service.checks]] instead). Slim images have
# no curl, so this is stdlib Python. It follows the port the running gateway actually bound:
# the gateway writes it into its lock payload (<state>/tmp/openclaw-<uid>/gateway.state.lock),
# so a `--port` override in fly.toml or `docker run ... --port N` needs no change here.
COPY --chmod=0755 <<'EOF' /usr/local/bin/clawgate-healthcheck
#!/usr/bin/env python3
"""Exit 0 when GET /healthz on the running gateway answers 200 {"ok": true}."""

import glob
import json
import os
import sys
import urllib.request


def _lock_port(state: str) -> int | None:
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


def _env_port() -> int | None:
    raw = os.environ.get("OPENCLAW_GATEWAY_PORT", "").strip().rsplit(":", 1)[-1]
    return int(raw) if raw.isdigit() and 0 < int(raw) < 65536 else None


def main() -> int:
    state = os.environ.get("OPENCLAW_STATE_DIR", "").strip() or "/data"
    port = _lock_port(state) or _env_port() or 3000
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://127.0.0.1:{port}/healthz", timeout=4) as resp:
            body = json.loads(resp.read() or b"{}")
            healthy = resp.status == 200 and body.get("ok") is True
    except (OSError, ValueError) as exc:
        print(f"healthcheck: port {port}: {exc}", file=sys.stderr)
        return 1
    return 0 if healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())
EOF

# Starts as root only for clawgate-entrypoint (see above), which drops to uid 10001 before exec.
USER root
WORKDIR /home/clawgate
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["clawgate-healthcheck"]
ENTRYPOINT ["clawgate-entrypoint"]
CMD ["python", "-m", "gateway", "--allow-unconfigured", "--port", "3000", "--bind", "lan"]
