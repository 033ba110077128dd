"""`config.schema` in the shape a schema-driven form editor renders (official-clients §5.2).

pydantic's JSON Schema uses `$ref`/`$defs` and we tag sections with `x-reload`; the official
Control UI's form renderer knows neither and falls back to its raw editor for any node with a
key outside plain draft-07, or with no resolvable type. So: references are inlined, non-standard
keys dropped (the reload kind moves to `uiHints`), and sections we accept without modelling them
become open objects.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from gateway.config.schema import config_json_schema, reload_kind, ui_hints

FORM_KEYS = frozenset(
    "$id $schema title description default deprecated nullable examples readOnly writeOnly tags "
    "x-tags const required additionalProperties minimum maximum exclusiveMinimum "
    "exclusiveMaximum multipleOf minLength maxLength pattern format minItems maxItems "
    "uniqueItems type properties items additionalItems enum anyOf oneOf allOf not "
    "propertyNames".split()
)
_TYPED = ("type", "properties", "additionalProperties", "enum", "const", "anyOf", "oneOf", "allOf")
_MAX_DEPTH = 40
_RELOAD_HELP = {
    "hot": "Changes apply to the next message.",
    "restart": "Changes restart the gateway.",
}


def _inline(node: Any, defs: dict[str, Any], seen: tuple[str, ...], depth: int) -> Any:
    if isinstance(node, list):
        return [_inline(item, defs, seen, depth + 1) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = ref.removeprefix("#/$defs/")
        if name in seen or depth > _MAX_DEPTH:
            # A recursive shape: the form shows it as an open object.
            return {"type": "object", "additionalProperties": True}
        target = dict(defs.get(name, {}))
        target.update({k: v for k, v in node.items() if k != "$ref"})
        return _inline(target, defs, (*seen, name), depth + 1)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key not in FORM_KEYS:
            continue
        if key in ("properties",) and isinstance(value, dict):
            out[key] = {k: _inline(v, defs, seen, depth + 1) for k, v in value.items()}
        elif key in ("default", "examples", "const", "enum", "required"):
            out[key] = copy.deepcopy(value)
        else:
            out[key] = _inline(value, defs, seen, depth + 1)
    if not any(k in out for k in _TYPED):
        out["type"] = "object"
        out["additionalProperties"] = True
    return out


@functools.cache
def form_schema() -> dict[str, Any]:
    source = config_json_schema()
    schema = _inline(source, source.get("$defs", {}), (), 0)
    assert isinstance(schema, dict)
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    return schema


@functools.cache
def form_hints() -> dict[str, dict[str, Any]]:
    hints = {path: dict(hint) for path, hint in ui_hints().items()}
    for section in config_json_schema().get("properties", {}):
        kind = reload_kind(section)
        if kind in _RELOAD_HELP:
            hints.setdefault(section, {}).setdefault("help", _RELOAD_HELP[kind])
    return hints
