"""Deployment files (Dockerfile, .dockerignore, fly.toml, fly.private.toml) and the helpers that
read them the way Docker and flyctl do, for tests that cannot run a Docker engine.

The Dockerfile parser understands exactly the subset our Dockerfile uses: comments, `\\` line
continuations, ARG/FROM (with `${ARG}` expansion and `AS name`), ENV (KEY=value pairs), RUN, COPY
(flags such as --from/--chmod/--mount, and BuildKit heredocs whose bodies are kept verbatim, as
BuildKit does), WORKDIR, USER, EXPOSE, HEALTHCHECK (options + exec-form CMD), ENTRYPOINT and CMD.
Anything else is an error, so a new instruction forces a look at these tests.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
FLY_TOML = REPO / "fly.toml"
FLY_PRIVATE_TOML = REPO / "fly.private.toml"
GUIDE = REPO / "docs" / "deploy-fly.md"

# `python -m gateway` flags (config.md §6.1, core subset): name -> takes a value.
CLI_FLAGS: dict[str, bool] = {
    "--port": True,
    "--bind": True,
    "--allow-unconfigured": False,
    "--token": True,
    "--password": True,
    "--auth": True,
    "--force": False,
    "--verbose": False,
}

KNOWN_INSTRUCTIONS = {
    "ARG",
    "FROM",
    "ENV",
    "RUN",
    "COPY",
    "WORKDIR",
    "USER",
    "EXPOSE",
    "HEALTHCHECK",
    "ENTRYPOINT",
    "CMD",
}

_HEREDOC = re.compile(r"^<<(-?)(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2$")
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def expand(value: str, env: dict[str, str]) -> str:
    """Docker's `$VAR` / `${VAR}` substitution (unset -> empty)."""
    return _VAR.sub(lambda m: env.get(m.group(1) or m.group(2), ""), value)


@dataclass
class Instruction:
    cmd: str
    flags: dict[str, str]
    args: str
    line: int
    heredocs: list[tuple[str, str]] = field(default_factory=list)  # (terminator, body)

    def exec_form(self) -> list[str]:
        """The JSON array of an exec-form CMD/ENTRYPOINT (error if it is shell form)."""
        value = json.loads(self.args)
        if not (isinstance(value, list) and all(isinstance(x, str) for x in value)):
            raise ValueError(f"line {self.line}: {self.cmd} is not an exec-form JSON array")
        return value

    def words(self) -> list[str]:
        return shlex.split(self.args)


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, cmd: str) -> list[Instruction]:
        return [i for i in self.instructions if i.cmd == cmd]

    def last(self, cmd: str) -> Instruction | None:
        found = self.all(cmd)
        return found[-1] if found else None

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """ENV as the stage sees it at the end, layered over `base` (the base image's env)."""
        env = dict(base or {})
        for ins in self.all("ENV"):
            env.update(parse_env(ins.args, env))
        return env


@dataclass
class Dockerfile:
    args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        for st in self.stages:
            if st.name == name:
                return st
        raise KeyError(name)

    def image_files(self) -> dict[str, str]:
        """Files the final stage copies from the build context: destination path -> content."""
        files: dict[str, str] = {}
        for ins in self.final.all("COPY"):
            if "from" in ins.flags or ins.heredocs:
                continue
            *sources, dest = ins.words()
            if len(sources) == 1 and not dest.endswith("/"):
                files[dest] = (REPO / sources[0]).read_text(encoding="utf-8")
        return files

    def image_sources(self) -> dict[str, Path]:
        """Destination path -> the repository file the final stage copies there."""
        out: dict[str, Path] = {}
        for ins in self.final.all("COPY"):
            if "from" in ins.flags or ins.heredocs:
                continue
            *sources, dest = ins.words()
            if len(sources) == 1 and not dest.endswith("/"):
                out[dest] = REPO / sources[0]
        return out


def parse_env(args: str, env: dict[str, str]) -> dict[str, str]:
    words = shlex.split(args, posix=True)
    if words and "=" not in words[0]:  # legacy `ENV KEY value with spaces`
        key, _, rest = args.strip().partition(" ")
        return {key: expand(rest.strip(), env)}
    out: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            raise ValueError(f"ENV word without '=': {word!r}")
        out[key] = expand(value, {**env, **out})
    return out


def _split_flags(rest: str) -> tuple[dict[str, str], str]:
    flags: dict[str, str] = {}
    rest = rest.strip()
    while rest.startswith("--"):
        token, _, tail = rest.partition(" ")
        key, _, value = token[2:].partition("=")
        flags[key] = value
        rest = tail.strip()
    return flags, rest


def parse_dockerfile(text: str) -> Dockerfile:
    lines = text.splitlines()
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    i = 0
    while i < len(lines):
        start = i + 1
        raw = lines[i]
        i += 1
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        logical = raw.rstrip()
        while logical.endswith("\\"):
            logical = logical[:-1]
            while i < len(lines) and lines[i].lstrip().startswith("#"):
                i += 1  # comment lines inside a continuation are dropped, as Docker does
            if i >= len(lines):
                break
            logical += " " + lines[i].strip()
            i += 1
        cmd, _, rest = logical.strip().partition(" ")
        cmd = cmd.upper()
        if cmd not in KNOWN_INSTRUCTIONS:
            raise ValueError(f"Dockerfile line {start}: instruction {cmd} not understood by tests")
        flags: dict[str, str] = {}
        if cmd in {"FROM", "COPY", "RUN", "HEALTHCHECK"}:
            flags, rest = _split_flags(rest)
        ins = Instruction(cmd, flags, rest.strip(), start)
        if cmd in {"COPY", "RUN"}:
            for word in rest.split():
                m = _HEREDOC.match(word)
                if not m:
                    continue
                terminator, body = m.group(3), []
                while i < len(lines) and lines[i].rstrip("\r\n") != terminator:
                    body.append(lines[i] + "\n")
                    i += 1
                if i >= len(lines):
                    raise ValueError(f"Dockerfile line {start}: unterminated heredoc {terminator}")
                i += 1  # the terminator line
                ins.heredocs.append((terminator, "".join(body)))
        if cmd == "ARG" and not stages:
            name, _, default = rest.strip().partition("=")
            global_args[name] = default
            continue
        if cmd == "FROM":
            words = expand(rest, global_args).split()
            alias = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=alias))
            continue
        if not stages:
            raise ValueError(f"Dockerfile line {start}: {cmd} before the first FROM")
        stages[-1].instructions.append(ins)
    return Dockerfile(global_args, stages)


def load_dockerfile() -> Dockerfile:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def healthcheck_cmd(ins: Instruction) -> tuple[dict[str, str], list[str]]:
    """HEALTHCHECK [--opt=v ...] CMD ["exec", "form"] -> (options, argv)."""
    kind, _, rest = ins.args.partition(" ")
    if kind.upper() != "CMD":
        raise ValueError("HEALTHCHECK must use CMD (NONE would disable it)")
    argv = json.loads(rest)
    if not (isinstance(argv, list) and all(isinstance(x, str) for x in argv)):
        raise ValueError("HEALTHCHECK CMD must be exec form")
    return ins.flags, argv


def load_toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        return tomllib.load(fh)


def parse_cli(argv: list[str]) -> dict[str, str | bool]:
    """Flags of `python -m gateway ...` (argv after the module), validated against CLI_FLAGS."""
    out: dict[str, str | bool] = {}
    it = iter(argv)
    for token in it:
        name, eq, inline = token.partition("=")
        if name not in CLI_FLAGS:
            raise ValueError(f"unknown gateway flag {token!r}")
        if CLI_FLAGS[name]:
            value: str | None = inline if eq else next(it, None)
            if value is None:
                raise ValueError(f"flag {name} needs a value")
            out[name] = value
        else:
            if eq:
                raise ValueError(f"flag {name} takes no value")
            out[name] = True
    return out


def duration_seconds(text: str) -> float:
    """Fly/Go durations: '15s', '2m', '1m30s', '500ms'."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * units[u] for n, u in parts)


def memory_mb(text: str | int) -> int:
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"(\d+)\s*(mb|gb)", text.strip().lower())
    if not m:
        raise ValueError(f"not a memory size: {text!r}")
    return int(m.group(1)) * (1024 if m.group(2) == "gb" else 1)


# --- .dockerignore, with the semantics of Docker's patternmatcher -------------------------------


@dataclass
class IgnoreRule:
    pattern: str
    negate: bool
    regex: re.Pattern[str]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**", i):
            if pattern.startswith("**/", i):
                out.append("(?:.*/)?")
                i += 3
            else:
                out.append(".*")
                i += 2
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("^" + "".join(out) + "$")


def load_dockerignore(path: Path = DOCKERIGNORE) -> list[IgnoreRule]:
    rules = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:].strip() if negate else line
        pattern = re.sub(r"/+", "/", pattern).strip("/")
        if pattern.startswith("./"):
            pattern = pattern[2:]
        rules.append(IgnoreRule(pattern, negate, _pattern_regex(pattern)))
    return rules


def is_ignored(relpath: str, rules: list[IgnoreRule]) -> bool:
    """A path is ignored if the last rule matching it, or one of its parent dirs, excludes it."""
    parts = relpath.strip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for rule in rules:
        if any(rule.regex.match(c) for c in candidates):
            ignored = not rule.negate
    return ignored


def context_files(root: Path = REPO, rules: list[IgnoreRule] | None = None) -> list[str]:
    """Relative paths of the files `docker build` would send as the build context."""
    rules = load_dockerignore() if rules is None else rules
    negated = [r.pattern for r in rules if r.negate]
    out: list[str] = []

    def walk(directory: Path) -> None:
        for entry in sorted(directory.iterdir()):
            rel = entry.relative_to(root).as_posix()
            if entry.is_dir() and not entry.is_symlink():
                if is_ignored(rel, rules) and not any(p.startswith(rel + "/") for p in negated):
                    continue
                walk(entry)
            elif not is_ignored(rel, rules):
                out.append(rel)

    walk(root)
    return out
