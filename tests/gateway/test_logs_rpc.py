"""logs.tail over a real WebSocket: cursor, level filter, limit, shape, scrubbing."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from gateway import logs
from tests.harness import connected, live_gateway

# Copied from @openclaw/gateway-protocol@2026.9.1 protocol.schema.json (definitions).
LOGS_TAIL_RESULT = {
    "type": "object",
    "required": ["file", "cursor", "size", "lines"],
    "properties": {
        "file": {"type": "string", "minLength": 1},
        "cursor": {"type": "integer", "minimum": 0},
        "size": {"type": "integer", "minimum": 0},
        "lines": {"type": "array", "items": {"type": "string"}},
        "truncated": {"type": "boolean"},
        "reset": {"type": "boolean"},
        "skippedBytes": {"type": "integer", "minimum": 0},
    },
    "additionalProperties": False,
}
SECRET = "very-secret-log-value-123"


@pytest.fixture
def tail_attached() -> Iterator[logging.Logger]:
    """The tail buffer on a test logger (setup() attaches it to the root in a real run)."""
    logger = logging.getLogger("gateway.logtest")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    added = logs.tail not in logger.handlers
    if added:
        logger.addHandler(logs.tail)
        logs.tail.addFilter(logs.scrubber)
    logs.scrubber.add(SECRET)
    yield logger
    if added:
        logger.removeHandler(logs.tail)
        logs.tail.removeFilter(logs.scrubber)
    logger.propagate = True


async def test_tail_cursor_level_limit(tmp_path: Path, tail_attached: logging.Logger) -> None:
    async with live_gateway(tmp_path) as live, connected(live, scopes=["operator.read"]) as client:
        tail_attached.info("first line")
        tail_attached.error("broken thing with %s", SECRET)
        first = await client.call("logs.tail", {"limit": 50})
        jsonschema.validate(first, LOGS_TAIL_RESULT)
        parsed = [json.loads(line) for line in first["lines"]]
        assert [p["message"] for p in parsed][-2:] == ["first line", "broken thing with ***"]
        assert parsed[-1]["level"] == "error" and parsed[-1]["subsystem"] == "logtest"
        assert SECRET not in json.dumps(first)

        tail_attached.debug("debug detail")
        tail_attached.warning("careful now")
        tail_attached.error("second error")
        newer = await client.call("logs.tail", {"cursor": first["cursor"]})
        assert [json.loads(x)["message"] for x in newer["lines"]] == [
            "debug detail",
            "careful now",
            "second error",
        ]
        assert newer["cursor"] == first["cursor"] + 3
        warn = await client.call("logs.tail", {"cursor": first["cursor"], "level": "warn"})
        assert [json.loads(x)["level"] for x in warn["lines"]] == ["warn", "error"]
        one = await client.call("logs.tail", {"cursor": first["cursor"], "limit": 1})
        assert one["truncated"] is True and len(one["lines"]) == 1
        none = await client.call("logs.tail", {"cursor": newer["cursor"]})
        assert none["lines"] == [] and none["cursor"] == newer["cursor"]
        future = await client.call("logs.tail", {"cursor": newer["cursor"] + 1000})
        assert future["reset"] is True
        bad = await client.request("logs.tail", {"level": "loud"})
        assert bad["ok"] is False and bad["error"]["code"] == "INVALID_REQUEST"
