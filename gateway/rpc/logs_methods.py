"""logs.tail: cursor-based reads of the in-memory tail of the gateway's (scrubbed) log.

Lines are JSON objects encoded as strings (`LogsTailResult.lines` is a list of strings):
`{"time", "level", "subsystem", "message"}`. `cursor` is the number of the last line returned;
pass it back to get only newer lines. `reset` is true when lines between the given cursor and the
oldest line still held were dropped (or the cursor is from another run). `level` (our extension)
is a minimum level: error, warn, info or debug.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway import logs
from gateway.protocol.scopes import READ
from gateway.rpc.registry import CallContext, method

DEFAULT_LIMIT = 200
LEVELS: dict[str, int] = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
}
FILE_LABEL = "memory:gateway-log"


class LogsTailParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cursor: int | None = Field(None, ge=0)
    limit: int | None = Field(None, ge=1, le=5000)
    max_bytes: int | None = Field(None, alias="maxBytes", ge=1, le=1_000_000)
    level: Literal["trace", "debug", "info", "warn", "warning", "error", "fatal"] | None = None


def _line(entry: logs.LogLine) -> str:
    level = "warn" if entry.level == "warning" else entry.level
    return json.dumps(
        {
            "time": datetime.fromtimestamp(entry.ts)
            .astimezone()
            .isoformat(timespec="milliseconds"),
            "level": level,
            "subsystem": entry.subsystem,
            "message": entry.message,
        },
        ensure_ascii=False,
    )


def tail_result(buffer: logs.TailBuffer, params: LogsTailParams) -> dict[str, Any]:
    held = list(buffer.lines)
    latest = held[-1].cursor if held else 0
    oldest = held[0].cursor if held else latest + 1
    start = params.cursor or 0
    # A cursor from another run, or older than what we still hold: some lines are gone.
    reset = params.cursor is not None and (start > latest or start < oldest - 1)
    if start > latest:
        start = 0
    limit = params.limit or DEFAULT_LIMIT
    min_level = LEVELS[params.level] if params.level else logging.NOTSET
    matching = [
        e for e in held if e.cursor > start and LEVELS.get(e.level, logging.INFO) >= min_level
    ]
    truncated = len(matching) > limit
    chosen = matching[-limit:]
    lines = [_line(e) for e in chosen]
    if params.max_bytes is not None:
        kept: list[str] = []
        size = 0
        for text in reversed(lines):
            size += len(text.encode()) + 1
            if size > params.max_bytes and kept:
                truncated = True
                break
            kept.append(text)
        lines = list(reversed(kept))
    result: dict[str, Any] = {
        "file": FILE_LABEL,
        "cursor": latest,
        "size": latest,
        "lines": lines,
    }
    if truncated:
        result["truncated"] = True
    if reset:
        result["reset"] = True
    return result


@method("logs.tail", scope=READ, params=LogsTailParams)
async def logs_tail(ctx: CallContext, params: LogsTailParams) -> dict[str, Any]:
    return tail_result(logs.tail, params)
