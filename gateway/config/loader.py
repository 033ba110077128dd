"""Read, substitute, validate and normalise the config file into an `OpenClawConfig`."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import json5
from pydantic import ValidationError

from gateway.agents.ids import normalize_agent_id
from gateway.config.envsubst import KeyPath, substitute
from gateway.config.errors import ConfigError, ConfigIssue
from gateway.config.gateway_section import UNMODELLED_SECTIONS, GatewayConfig, GatewaySection
from gateway.config.locate import format_path, key_lines
from gateway.config.secrets import is_secret_key

if TYPE_CHECKING:
    from gateway.config.models import OpenClawConfig

MAX_CONFIG_BYTES = 2 * 1024 * 1024


@dataclass
class LoadedConfig:
    path: Path
    exists: bool
    config: OpenClawConfig
    raw: str = ""
    hash: str = ""
    warnings: list[str] = field(default_factory=list)
    # env.vars entries the process env lacked; the caller applies them (never overriding).
    env_vars: dict[str, str] = field(default_factory=dict)


def content_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def read_config_text(path: Path) -> str | None:
    """The file's text, or None when absent. Anything but a regular file is an error."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(path, [ConfigIssue("", f"cannot read config: {exc.strerror}")]) from exc
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(path, [ConfigIssue("", "config must be a regular file")])
    if st.st_size > MAX_CONFIG_BYTES:
        raise ConfigError(
            path, [ConfigIssue("", f"config is larger than {MAX_CONFIG_BYTES} bytes")]
        )
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [ConfigIssue("", f"cannot read config: {exc}")]) from exc


def parse_json5(path: Path, raw: str) -> dict[str, Any]:
    """Parse the text; a syntax error names its line and column (`openclaw.json:3:5 — ...`)."""
    if not raw.strip():
        raise ConfigError(path, [syntax_issue(raw, "")])
    try:
        data = json5.loads(raw)
    except ValueError as exc:
        raise ConfigError(path, [syntax_issue(raw, str(exc))]) from exc
    except RecursionError as exc:
        raise ConfigError(path, [ConfigIssue("", "JSON5 parse failed: nesting too deep")]) from exc
    if not isinstance(data, dict):
        raise ConfigError(
            path, [ConfigIssue("", "config must be a JSON5 object at the top level", 1, 1)]
        )
    joined: dict[str, Any] = _join_surrogates(data)
    return joined


def _join_surrogates(value: Any) -> Any:
    """json5 leaves an escaped astral character (`"\\ud83d\\udc40"`, how JSON writers
    escape emoji) as two lone surrogates; join them (👀 must reach Discord as 👀)."""
    if isinstance(value, str):
        if any("\ud800" <= ch <= "\udfff" for ch in value):
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return value
    if isinstance(value, dict):
        # Values only: keys stay as parsed, so errors about them can still be located.
        return {k: _join_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_join_surrogates(v) for v in value]
    return value


# json5 reports `<string>:LINE Unexpected "X" at column C` (or `... end of input at column C`).
_JSON5_ERROR = re.compile(r"^<string>:(\d+) Unexpected (.+?) at column (\d+)$")
_CURLY_QUOTES = "\u201c\u201d\u2018\u2019\u00ab\u00bb"


def syntax_issue(raw: str, detail: str) -> ConfigIssue:
    """A JSON5 syntax error as an issue with a line, a column and a reason a person can act on."""
    if not raw.strip():
        return ConfigIssue(
            "",
            'JSON5 parse failed: the file is empty; it needs at least { gateway: { mode: "local" } }',
            1,
            1,
        )
    match = _JSON5_ERROR.match(detail)
    if not match:
        return ConfigIssue("", f"JSON5 parse failed: {detail}", 1, 1)
    line, what, column = int(match.group(1)), match.group(2), int(match.group(3))
    if what == "end of input":
        opened = _unclosed(raw)
        reason = (
            f"the file ends early: the {opened[0]} opened at line {opened[1]} is not closed"
            if opened
            else "the file ends early: a value is missing"
        )
    elif len(what) == 3 and what[1] in _CURLY_QUOTES:
        reason = f"curly quote {what[1]} — use straight quotes (\" or ')"
    else:
        reason = f"unexpected {what}"
        before = _before(raw, line, column)
        if before and (before in "}]\"'" or before.isalnum()):
            reason += " — is a comma missing before it?"
    return ConfigIssue("", f"JSON5 parse failed: {reason}", line, column)


def _unclosed(raw: str) -> tuple[str, int] | None:
    """The innermost `{`/`[` left open at the end of the text, and its line (strings skipped)."""
    stack: list[tuple[str, int]] = []
    i, n, line = 0, len(raw), 1
    while i < n:
        c = raw[i]
        if c == "\n":
            line += 1
        elif c in "\"'":
            j = i + 1
            while j < n and raw[j] != c and raw[j] != "\n":
                j += 2 if raw[j] == "\\" else 1
            i = j
        elif raw.startswith("//", i):
            end = raw.find("\n", i)
            i = n if end < 0 else end - 1
        elif raw.startswith("/*", i):
            end = raw.find("*/", i + 2)
            end = n if end < 0 else end + 1
            line += raw.count("\n", i, end)
            i = end
        elif c in "{[":
            stack.append((c, line))
        elif c in "}]" and stack:
            stack.pop()
        i += 1
    return stack[-1] if stack else None


def _before(raw: str, line: int, column: int) -> str:
    """The last non-blank character before (line, column), 1-based; "" at the start."""
    lines = raw.split("\n")
    head = "\n".join(
        [*lines[: line - 1], lines[line - 1][: column - 1]] if line <= len(lines) else lines
    )
    stripped = head.rstrip()
    return stripped[-1] if stripped else ""


@dataclass
class PreparedConfig:
    """The file read, parsed and `${VAR}`-substituted, not yet validated.

    A start validates it in two steps: the `gateway` section before the socket listens
    (`validate_gateway_section`), everything (`finish_config`) in the start-up thread.
    """

    path: Path
    exists: bool
    raw: str = ""
    # The modelled sections after substitution (unmodelled ones are dropped with a warning).
    modelled: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # the file as parsed
    lines: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    env_vars: dict[str, str] = field(default_factory=dict)


def prepare_config(path: Path, env: Mapping[str, str] | None = None) -> PreparedConfig:
    raw = read_config_text(path)
    if raw is None:
        return PreparedConfig(path=path, exists=False)
    return prepare_text(path, raw, env)


def prepare_text(path: Path, raw: str, env: Mapping[str, str] | None = None) -> PreparedConfig:
    """Parse and substitute; a syntax error or a secret key left as `${VAR}` is raised here."""
    env = os.environ if env is None else env
    data = parse_json5(path, raw)
    lines = key_lines(raw)
    warnings = [
        f"config section {key!r} is not supported yet and is ignored"
        for key in data
        if key in UNMODELLED_SECTIONS
    ]
    modelled = {k: v for k, v in data.items() if k not in UNMODELLED_SECTIONS}

    env_vars = _env_vars(modelled.get("env"), env)
    missing: list[tuple[KeyPath, str]] = []
    merged_env = {**env_vars, **env}
    modelled = substitute(modelled, merged_env, missing)
    # A secret left as the literal "${VAR}" would be sent as the credential (a Telegram poll
    # with the text as its token): an error. Anything else keeps the text, with a warning.
    secret_issues = [
        ConfigIssue(
            format_path(where),
            f"${{{name}}} is not set: set the environment variable {name}"
            " (a secret key cannot keep the placeholder text)",
            _line_for(format_path(where), lines),
        )
        for where, name in missing
        if _holds_secret(where)
    ]
    if secret_issues:
        raise ConfigError(path, secret_issues)
    for name in sorted({name for _, name in missing}):
        warnings.append(f"config references ${{{name}}} but it is not set; the text is kept as is")
    return PreparedConfig(
        path=path,
        exists=True,
        raw=raw,
        modelled=modelled,
        data=data,
        lines=lines,
        warnings=warnings,
        env_vars={k: v for k, v in env_vars.items() if k not in env},
    )


def validate_gateway_section(prepared: PreparedConfig) -> GatewayConfig:
    """The `gateway` section alone: enough to bind, listen and check credentials."""
    try:
        return GatewaySection.model_validate(prepared.modelled).gateway
    except ValidationError as exc:
        raise ConfigError(
            prepared.path, _issues_from(exc, prepared.modelled, prepared.lines)
        ) from exc


def finish_config(prepared: PreparedConfig) -> LoadedConfig:
    """Validate every section and check what spans sections."""
    # Imported here: building every section's model is the slow part of validation, and a
    # start only needs it after the socket listens (see validate_gateway_section).
    from gateway.config.models import OpenClawConfig

    if not prepared.exists:
        return LoadedConfig(
            path=prepared.path, exists=False, config=OpenClawConfig.model_validate({})
        )
    issues = [
        ConfigIssue("", f'Unrecognized key: "{key}"', prepared.lines.get(key))
        for key in prepared.data
        if key not in UNMODELLED_SECTIONS
        and key not in OpenClawConfig.model_fields
        and key not in _ROOT_ALIASES
    ]
    if issues:
        raise ConfigError(prepared.path, issues)
    try:
        config = OpenClawConfig.model_validate(prepared.modelled)
    except ValidationError as exc:
        raise ConfigError(
            prepared.path, _issues_from(exc, prepared.modelled, prepared.lines)
        ) from exc

    warnings = list(prepared.warnings)
    semantic = _normalise_and_check(config, prepared.lines, warnings)
    if semantic:
        raise ConfigError(prepared.path, semantic)
    return LoadedConfig(
        path=prepared.path,
        exists=True,
        config=config,
        raw=prepared.raw,
        hash=content_hash(prepared.raw),
        warnings=warnings,
        env_vars=prepared.env_vars,
    )


def load_config(path: Path, env: Mapping[str, str] | None = None) -> LoadedConfig:
    return finish_config(prepare_config(path, env))


def validate_text(path: Path, raw: str, env: Mapping[str, str] | None = None) -> LoadedConfig:
    """Validate config text as if it were the file at `path` (also used before writes)."""
    return finish_config(prepare_text(path, raw, env))


_ROOT_ALIASES = {"$schema"}


def _holds_secret(where: KeyPath) -> bool:
    # The value's own key, or the key of the list holding it (`tokens: ["${A}"]`).
    keys = [part for part in where if isinstance(part, str)]
    return bool(keys) and is_secret_key(keys[-1]) and keys[0] != "env"


def _env_vars(section: Any, env: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(section, dict):
        return {}
    out: dict[str, str] = {}
    inline = {k: v for k, v in section.items() if k not in ("vars", "shellEnv")}
    for source in (section.get("vars"), inline):
        if isinstance(source, dict):
            for key, value in source.items():
                if isinstance(value, str) and key not in env:
                    out.setdefault(key, value)
    return out


def _issues_from(
    exc: ValidationError, data: dict[str, Any], lines: dict[str, int]
) -> list[ConfigIssue]:
    merged: dict[tuple[str, str], list[str]] = {}
    order: list[tuple[str, str]] = []
    for err in exc.errors(include_url=False):
        parts = _data_path(err["loc"], data)
        kind = err["type"]
        if kind == "extra_forbidden" and parts:
            key = str(parts[-1])
            where, msg = format_path(tuple(parts[:-1])), f'Unrecognized key: "{key}"'
            line_key = format_path(tuple(parts))
        else:
            where = format_path(tuple(parts))
            msg = str(err["msg"])
            if (
                kind not in ("missing",)
                and "input" in err
                and not isinstance(err["input"], dict | list)
            ):
                msg += f", got: {_short(err['input'])}"
            line_key = where
        slot = (where, line_key)
        if slot not in merged:
            merged[slot] = []
            order.append(slot)
        if msg not in merged[slot]:
            merged[slot].append(msg)
    return [
        ConfigIssue(where, " or ".join(merged[(where, lk)]), _line_for(lk, lines))
        for where, lk in order
    ]


def _short(value: Any) -> str:
    from gateway.logs import scrubber

    # A secret typed into the wrong key must not come back in the error (or its log line).
    text = scrubber.scrub(repr(value) if not isinstance(value, str) else f'"{value}"')
    return text if len(text) <= 60 else text[:57] + "..."


def _data_path(loc: tuple[int | str, ...], data: Any) -> list[str | int]:
    """Drop pydantic's union/type tags from a location, keeping only real data keys."""
    parts: list[str | int] = []
    node = data
    for index, item in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(node, dict) and isinstance(item, str) and item in node:
            parts.append(item)
            node = node[item]
        elif isinstance(node, list) and isinstance(item, int) and 0 <= item < len(node):
            parts.append(item)
            node = node[item]
        elif last and isinstance(node, dict) and isinstance(item, str) and not _is_tag(item):
            parts.append(item)  # a missing or unknown key
            node = None
    return parts


def _is_tag(item: str) -> bool:
    return item[:1].isupper() or "[" in item or item in {"str", "int", "bool", "float", "list"}


def _line_for(path: str, lines: dict[str, int]) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return None


def _normalise_and_check(
    config: OpenClawConfig, lines: dict[str, int], warnings: list[str]
) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    agents = config.agents

    # Legacy roster: `agents.list` becomes keyed `agents.entries`.
    if agents.list_ is not None:
        for index, entry in enumerate(agents.list_):
            if not entry.id:
                where = f"agents.list[{index}].id"
                issues.append(ConfigIssue(where, "Required", _line_for(where, lines)))
                continue
            agent_id = normalize_agent_id(entry.id)
            if agent_id in agents.entries:
                where = f"agents.list[{index}].id"
                issues.append(
                    ConfigIssue(where, f'duplicate agent id "{agent_id}"', _line_for(where, lines))
                )
                continue
            agents.entries[agent_id] = entry.model_copy(update={"id": None})
        warnings.append("Moved agents.list to keyed agents.entries (in memory; file unchanged).")
        agents.list_ = None
    else:
        renamed = {normalize_agent_id(k): v for k, v in agents.entries.items()}
        agents.entries = renamed

    defaults = [aid for aid, e in agents.entries.items() if e.default]
    if defaults:
        warnings.append(
            "agents.entries.*.default is a retired marker; it still selects the default agent."
        )
    if len(defaults) > 1:
        issues.append(
            ConfigIssue(
                "agents.entries",
                f"agents.entries must contain at most one default=true entry (found {len(defaults)})",
                _line_for("agents", lines),
            )
        )
    if agents.ownership == "explicit" and defaults:
        issues.append(
            ConfigIssue(
                "agents.ownership",
                'agents.ownership="explicit" cannot be combined with a legacy default=true marker',
                _line_for("agents.ownership", lines),
            )
        )
    if len(agents.entries) > 1 and not defaults and agents.ownership is None:
        issues.append(
            ConfigIssue(
                "agents.ownership",
                'a roster of several agents needs agents.ownership="explicit" or one agent with default=true',
                _line_for("agents", lines),
            )
        )
    known = set(agents.entries) or {"main"}
    for index, binding in enumerate(config.bindings):
        agent_id = normalize_agent_id(binding.agent_id)
        if agent_id not in known:
            where = f"bindings[{index}].agentId"
            issues.append(
                ConfigIssue(
                    where,
                    f'Unknown agent id "{binding.agent_id}" (not in agents.entries)',
                    _line_for(where, lines),
                )
            )

    discord = config.channels.discord
    if discord is not None:
        for gid, guild in discord.guilds.items():
            for cid, channel in guild.channels.items():
                if channel.allow is not None:
                    warnings.append(
                        f"channels.discord.guilds.{gid}.channels.{cid}.allow is a legacy key;"
                        " treated as `enabled` (rename it to silence this warning)"
                    )
                    if channel.enabled is None:
                        channel.enabled = channel.allow
    for name in ("discord", "telegram"):
        channel_cfg = getattr(config.channels, name)
        if channel_cfg is None:
            continue
        allow = [str(v) for v in channel_cfg.allow_from]
        if channel_cfg.dm_policy == "open" and "*" not in allow:
            warnings.append(
                f'channels.{name}.dmPolicy="open" but channels.{name}.allowFrom does not include "*";'
                " all DMs will be dropped."
            )
        if channel_cfg.dm_policy == "allowlist" and not allow:
            warnings.append(
                f'channels.{name}.dmPolicy="allowlist" but channels.{name}.allowFrom is empty;'
                " all DMs will be dropped."
            )
    for key, value in config.channels.model_extra.items() if config.channels.model_extra else []:
        del value
        warnings.append(f"channel {key!r} is not built into this gateway and is ignored")
    return issues
