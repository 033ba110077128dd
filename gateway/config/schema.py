"""JSON Schema of the config we accept, generated from the pydantic models (`config.schema`)."""

from __future__ import annotations

import functools
from typing import Any

from gateway.config.models import UNMODELLED_SECTIONS, OpenClawConfig
from gateway.config.secrets import SECRET_KEYS

# Top-level sections and whether a change applies live ("hot") or needs a restart.
HOT_SECTIONS = frozenset(
    {"agents", "models", "bindings", "session", "messages", "auth", "meta", "commands", "$schema"}
)
RESTART_SECTIONS = frozenset({"gateway", "channels", "env"})

_LABELS = {
    "gateway": "Gateway",
    "commands": "Commands",
    "agents": "Agents",
    "auth": "Provider credentials",
    "models": "Model providers",
    "bindings": "Routing bindings",
    "channels": "Channels",
    "session": "Sessions",
    "messages": "Messages",
    "env": "Environment",
    "meta": "Metadata",
}


def reload_kind(path: str) -> str:
    """'hot', 'restart' or 'none' (an accepted-but-ignored section) for a dotted path."""
    head = path.split(".", 1)[0].split("[", 1)[0]
    if head in HOT_SECTIONS:
        return "hot"
    if head in RESTART_SECTIONS:
        return "restart"
    return "none"


@functools.cache
def config_json_schema() -> dict[str, Any]:
    """Draft 2020-12 schema (pydantic's output) with camelCase keys, as the file is written."""
    schema = OpenClawConfig.model_json_schema(by_alias=True, mode="validation")
    schema["title"] = "OpenClaw config (clawgate subset)"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    props = schema.setdefault("properties", {})
    for section in sorted(UNMODELLED_SECTIONS):
        props.setdefault(
            section,
            {"description": "Accepted for compatibility with OpenClaw; not acted on (yet)."},
        )
    schema["additionalProperties"] = False
    for name, prop in props.items():
        kind = reload_kind(name)
        if kind != "none":
            prop.setdefault("x-reload", kind)
    return schema


@functools.cache
def ui_hints() -> dict[str, dict[str, Any]]:
    """Labels for the sections and `sensitive` marks for every secret-bearing key."""
    hints: dict[str, dict[str, Any]] = {}
    for order, (key, label) in enumerate(_LABELS.items()):
        hints[key] = {"label": label, "order": order}
    schema = config_json_schema()
    defs = schema.get("$defs", {})

    def walk(node: dict[str, Any], path: str, depth: int) -> None:
        if depth > 8:
            return
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            node = defs.get(ref.removeprefix("#/$defs/"), {})
        for option in node.get("anyOf", []):
            if isinstance(option, dict):
                walk(option, path, depth + 1)
        for key, child in node.get("properties", {}).items():
            child_path = f"{path}.{key}" if path else key
            if key in SECRET_KEYS:
                hints.setdefault(child_path, {})["sensitive"] = True
            if isinstance(child, dict):
                walk(child, child_path, depth + 1)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            walk(extra, f"{path}.*", depth + 1)

    walk(schema, "", 0)
    return hints
