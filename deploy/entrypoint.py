#!/usr/bin/env python3
"""Make the state dir writable for the gateway user, drop root, exec the command as given.

The image's ENTRYPOINT (`/usr/local/bin/clawgate-entrypoint`). A Fly volume is mounted over
/data at run time with a root-owned 0755 top directory, which hides the image's chown, and
fly.toml cannot change the owner; so this runs first, as root, gives the state dir to the
gateway's uid (only entries that are not already; never following symlinks or crossing into
another filesystem), drops to that uid/gid with no supplementary groups, and exec()s the
command unchanged: same PID, same argv, so SIGTERM reaches the gateway directly. Started as
non-root (`docker run --user`, Kubernetes runAsNonRoot) it changes nothing and just execs.
"""

from __future__ import annotations

import os
import pwd
import sys

DEFAULT_ID = 10001


def env_id(name: str, default: int = DEFAULT_ID) -> int:
    """A numeric uid/gid from the environment, else `default`."""
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw.isdigit() else default


def claim(state: str, uid: int, gid: int) -> int:
    """lchown everything under `state` (same filesystem, no symlink following) to uid:gid.

    Returns how many paths changed owner.
    """
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


def drop_root(uid: int, gid: int) -> None:
    """Become uid:gid with no supplementary groups; HOME/USER follow the account if it exists."""
    try:
        account: pwd.struct_passwd | None = pwd.getpwuid(uid)
    except KeyError:
        account = None
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if account is not None:
        os.environ["HOME"] = account.pw_dir
        os.environ["USER"] = os.environ["LOGNAME"] = account.pw_name


def main(argv: list[str]) -> int:
    if not argv:
        print("clawgate-entrypoint: no command to run", file=sys.stderr)
        return 64
    uid, gid = env_id("CLAWGATE_UID"), env_id("CLAWGATE_GID")
    if os.geteuid() == 0 and uid != 0:
        state = os.environ.get("OPENCLAW_STATE_DIR", "").strip() or "/data"
        try:
            changed = claim(state, uid, gid)
            if changed:
                print(f"[entrypoint] gave {changed} path(s) under {state} to uid {uid}", flush=True)
        except OSError as exc:
            print(
                f"[entrypoint] warning: could not take ownership of {state}: {exc}",
                file=sys.stderr,
                flush=True,
            )
        drop_root(uid, gid)
    os.execvp(argv[0], argv)
    return 127  # not reached


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
