"""Config files through the loader: random JSON5 text, mutated real configs and random
structures shaped like the schema. Each ends in a `ConfigError` whose issues say where (line
or key path) and what, or in a loaded config; never in any other exception."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config.errors import ConfigError
from gateway.config.loader import LoadedConfig, validate_text
from gateway.config.schema import config_json_schema
from tests.fixtures import FLY_GUIDE
from tests.hardening.fuzzcount import COUNTS

PATH = Path("/data/openclaw.json")
SAMPLE = """{
  // a hand-written config, as users keep them
  gateway: { mode: 'local', port: 3000, bind: "loopback", auth: { token: "${GW_TOKEN}" } },
  agents: {
    defaults: { model: { primary: "anthropic/claude-x", fallbacks: ["openai/gpt-y"] },
                maxConcurrent: 4, timeoutSeconds: 600 },
    list: [{ id: "main", default: true }],
  },
  models: { providers: { openai: { baseUrl: "http://127.0.0.1:9/v1", apiKey: "sk-x" } } },
  channels: { telegram: { botToken: "123:abc", dmPolicy: "pairing", allowFrom: [1, "2"] } },
  session: { dmScope: "main" },
}
"""
BASES = [SAMPLE, FLY_GUIDE.read_text(encoding="utf-8")]
FUZZ = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


def load(raw: str) -> LoadedConfig | ConfigError:
    """The loader's verdict; any exception other than ConfigError fails the test."""
    try:
        return validate_text(PATH, raw, {"GW_TOKEN": "t" * 32})
    except ConfigError as exc:
        assert exc.issues, "a ConfigError must carry at least one issue"
        for issue in exc.issues:
            assert issue.message.strip()
            located = issue.path or issue.line is not None
            root_level = issue.message.startswith(
                ("JSON5 parse failed", "config must", "cannot read config")
            )
            assert located or root_level, issue
        for line in exc.lines():
            assert line.startswith(("openclaw.json:", "<root>:")) or ": " in line
        return exc


@FUZZ
@given(raw=st.text(max_size=300))
def test_random_text(raw: str) -> None:
    COUNTS["config: random text"] += 1
    load(raw)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(BASES))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(st.sampled_from([*"{}[]:,\"'/*\n\\$", "null", "1e999", "${X}", "-"]))
        if kind == "insert":
            text = text[:at] + piece + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 8)) :]
        else:
            text = text[:at] + piece + text[at + 1 :]
    return text


@FUZZ
@given(raw=mutated())
def test_mutated_real_configs(raw: str) -> None:
    COUNTS["config: mutated real configs"] += 1
    load(raw)


_SCHEMA = config_json_schema()
_DEFS: dict[str, Any] = _SCHEMA.get("$defs", {})
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["local", "token", "pairing", "open", "${HOME}", "$${X}", "a/b", ""]),
)


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return dict(_DEFS.get(ref.split("/")[-1], {}))
    return node


@st.composite
def shaped(draw: st.DrawFn, node: dict[str, Any], depth: int = 0) -> Any:
    """A value that follows the schema's keys (and enums) most of the time, not always."""
    node = _resolve(node)
    if depth > 5 or draw(st.integers(0, 9)) == 0:
        return draw(scalars)
    for key in ("anyOf", "oneOf"):
        if key in node:
            return draw(shaped(draw(st.sampled_from(node[key])), depth + 1))
    if "enum" in node:
        return draw(st.sampled_from(node["enum"]))
    kind = node.get("type")
    if kind == "object" or "properties" in node:
        props: dict[str, Any] = node.get("properties", {})
        out: dict[str, Any] = {}
        names = sorted(props)
        if names:
            for name in draw(st.lists(st.sampled_from(names), max_size=4, unique=True)):
                out[name] = draw(shaped(props[name], depth + 1))
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) or draw(st.integers(0, 5)) == 0:
            key = draw(st.text(min_size=1, max_size=8))
            out[key] = draw(shaped(extra if isinstance(extra, dict) else {}, depth + 1))
        return out
    if kind == "array":
        items = node.get("items", {})
        return draw(
            st.lists(shaped(items if isinstance(items, dict) else {}, depth + 1), max_size=3)
        )
    if kind == "string":
        return draw(st.text(max_size=16))
    if kind == "integer":
        return draw(st.integers(-5, 10**6))
    if kind == "boolean":
        return draw(st.booleans())
    return draw(scalars)


@FUZZ
@given(config=shaped(_SCHEMA))
def test_random_structured_configs(config: Any) -> None:
    COUNTS["config: schema-shaped structures"] += 1
    outcome = load(json.dumps(config, indent=2))
    if isinstance(outcome, LoadedConfig):
        COUNTS["  schema-shaped that loaded"] += 1
