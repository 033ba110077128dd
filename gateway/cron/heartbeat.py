"""Heartbeat rules (§C.19): which agents beat, how often, when, and what reply is silence.

The heartbeat itself is a system-owned cron row per agent (`declarationKey:
"heartbeat:<agent>"`, payload `{kind:"heartbeat"}`) built from config by the cron service, so
it is armed, caught up and logged by the same timer as every other job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.config.models import ActiveHours, HeartbeatConfig, OpenClawConfig
from gateway.cron.schedule import ScheduleError, parse_duration_ms

DEFAULT_EVERY = "30m"
ACK_TOKEN = "HEARTBEAT_OK"
SILENT_TOKEN = "NO_REPLY"
ACK_MAX_CHARS = 300
HEARTBEAT_FILE = "HEARTBEAT.md"
POLL_MARKER = "[OpenClaw heartbeat poll]"
DEFAULT_PROMPT = (
    "This is a scheduled heartbeat check, not a message from the user. Follow the monitor"
    " instructions below, if any. Recurring work belongs in cron jobs; do not revive old tasks"
    " from earlier conversations. If nothing needs the user's attention, reply exactly"
    f" {SILENT_TOKEN}."
)


@dataclass(frozen=True)
class HeartbeatSettings:
    agent_id: str
    every_ms: int  # 0 = no cadence
    target: str  # owner | last | none | telegram | discord
    to: str | None
    account_id: str | None
    active_hours: ActiveHours | None
    session: str | None
    model: str | None
    prompt: str | None
    timeout_seconds: int | None
    ack_max_chars: int
    direct_policy: str


def _merge(base: HeartbeatConfig | None, over: HeartbeatConfig | None) -> HeartbeatConfig:
    data = base.model_dump(exclude_unset=True) if base is not None else {}
    if over is not None:
        data.update(over.model_dump(exclude_unset=True))
    return HeartbeatConfig.model_validate(data)


def settings(config: OpenClawConfig, agent_ids: list[str]) -> list[HeartbeatSettings]:
    """Heartbeat settings per beating agent. If any agent entry has its own block, only those
    agents beat; otherwise `agents.defaults.heartbeat` applies to the default (first) agent."""
    defaults = config.agents.defaults.heartbeat
    entries = config.agents.entries
    explicit = [a for a in agent_ids if entries.get(a) is not None and entries[a].heartbeat]
    chosen = explicit or (agent_ids[:1] if defaults is not None else [])
    out = []
    for agent_id in chosen:
        entry = entries.get(agent_id)
        merged = _merge(defaults, entry.heartbeat if entry is not None else None)
        every = merged.every if merged.every is not None else DEFAULT_EVERY
        every_ms = parse_duration_ms(str(every), bare_unit="m")
        out.append(
            HeartbeatSettings(
                agent_id=agent_id,
                every_ms=every_ms,
                target=(merged.target or "owner").strip().lower(),
                to=merged.to,
                account_id=merged.account_id,
                active_hours=merged.active_hours,
                session=merged.session,
                model=merged.model,
                prompt=merged.prompt,
                timeout_seconds=merged.timeout_seconds,
                ack_max_chars=(
                    merged.ack_max_chars if merged.ack_max_chars is not None else ACK_MAX_CHARS
                ),
                direct_policy=merged.direct_policy or "allow",
            )
        )
    return out


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def active_zone(hours: ActiveHours, user_timezone: str | None) -> ZoneInfo | None:
    name = hours.timezone
    if name is None or name == "user":
        name = user_timezone
    if name is None or name == "local":
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"heartbeat activeHours: unknown time zone {name!r}") from exc


def in_active_hours(hours: ActiveHours | None, now_ms: int, user_timezone: str | None) -> bool:
    """start inclusive, end exclusive (24:00 allowed); equal start and end = never; a window
    that crosses midnight (22:00–06:00) wraps."""
    if hours is None:
        return True
    tz = active_zone(hours, user_timezone)
    local = (
        datetime.fromtimestamp(now_ms / 1000, tz=tz)
        if tz
        else datetime.fromtimestamp(now_ms / 1000).astimezone()
    )
    minute = local.hour * 60 + local.minute
    start, end = _minutes(hours.start), _minutes(hours.end)
    if start == end:
        return False
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end


_COMMENT = re.compile(r"<!--.*?-->", re.S)


def effectively_empty(text: str) -> bool:
    """Blank lines, headings, comments and empty checklist items only."""
    for line in _COMMENT.sub("", text).splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if re.fullmatch(r"[-*+]\s*(\[[ xX]?\])?\s*", s):
            continue
        return False
    return True


def strip_ack(text: str, max_chars: int = ACK_MAX_CHARS) -> tuple[str | None, str | None]:
    """(text to deliver, or None; suppression reason). `NO_REPLY` alone is silence; a
    `HEARTBEAT_OK` at the start or end is stripped and the rest dropped if it is short."""
    body = text.strip()
    if not body:
        return None, "empty"
    if body.upper() == SILENT_TOKEN:
        return None, "silent"
    stripped = body
    found = False
    upper = stripped.upper()
    if upper.startswith(ACK_TOKEN):
        stripped, found = stripped[len(ACK_TOKEN) :], True
    upper = stripped.upper().rstrip(" .!")
    if upper.endswith(ACK_TOKEN):
        stripped, found = stripped.rstrip(" .!")[: -len(ACK_TOKEN)], True
    if not found:
        return body, None
    rest = stripped.strip(" \n\t-:.,!")
    if len(rest) <= max_chars:
        return None, "heartbeat"
    return rest, None


def prompt_text(custom: str | None, instructions: str | None, events: list[str]) -> str:
    parts = [POLL_MARKER, custom.strip() if custom and custom.strip() else DEFAULT_PROMPT]
    if instructions and not effectively_empty(instructions):
        parts.append("Monitor instructions (HEARTBEAT.md):\n" + instructions.strip())
    if events:
        parts.append("\n".join(events))
    return "\n\n".join(parts)
