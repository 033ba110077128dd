"""Schedules: when a job runs next (context-and-cron.md §C.3).

Next-run times come from the schedule and the job's own history, never from "now + interval"
at load, so a restart does not move a slot. Cron expressions (5 fields, or 6 with seconds
first) and their time zones are handled by croniter; DST gaps and repeats are its business.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

DEFAULT_STAGGER_MS = 300_000
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$", re.I)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.I)
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


class ScheduleError(ValueError):
    """A schedule that cannot be used; the message names what is wrong."""


@dataclass(frozen=True)
class At:
    at: str  # ISO-8601 as stored


@dataclass(frozen=True)
class Every:
    every_ms: int
    anchor_ms: int | None = None


@dataclass(frozen=True)
class Cron:
    expr: str
    tz: str | None = None
    stagger_ms: int | None = None


Schedule = At | Every | Cron


def parse_duration_ms(text: str, *, bare_unit: str = "m") -> int:
    """`20m`, `1h30m`, `45s`, `2d`, `500ms`; a bare number is in `bare_unit`."""
    raw = text.strip().lower()
    match = _DURATION.match(raw)
    if match:
        value, unit = float(match.group(1)), (match.group(2) or bare_unit).lower()
        return int(value * _UNIT_MS[unit])
    parts = _DURATION_PART.findall(raw)
    if parts and _DURATION_PART.sub("", raw).strip() == "":
        return int(sum(float(v) * _UNIT_MS[u.lower()] for v, u in parts))
    raise ScheduleError(f"invalid duration {text!r} (use e.g. 20m, 1h30m, 45s, 2d)")


def parse_at_ms(text: str) -> int:
    """An `at` value: ISO-8601 (offset-less = UTC) or a string of digits (epoch ms)."""
    raw = text.strip()
    if raw.isdigit():
        return int(raw)
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise ScheduleError(
            f"invalid at time {text!r}: expected ISO-8601 like 2026-11-27T09:00:00Z"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def zone(name: str | None) -> ZoneInfo | None:
    """The named IANA zone (None → the host's local zone)."""
    if name is None or not name.strip():
        return None
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(
            f"unknown time zone {name!r} (use an IANA name like Europe/Berlin)"
        ) from exc


def _fields(expr: str) -> list[str]:
    return expr.split()


def validate_expr(expr: str) -> None:
    fields = _fields(expr)
    if len(fields) not in (5, 6):
        raise ScheduleError(
            f"invalid cron expression {expr!r}: expected 5 fields (min hour day month weekday)"
            " or 6 with seconds first"
        )
    try:
        croniter(expr, datetime.now(UTC), second_at_beginning=len(fields) == 6)
    except (CroniterBadCronError, CroniterError, ValueError, KeyError) as exc:
        raise ScheduleError(f"invalid cron expression {expr!r}: {exc}") from exc


def is_top_of_hour(expr: str) -> bool:
    """Recurring top-of-hour expressions get a default stagger window (§C.3)."""
    fields = _fields(expr)
    if len(fields) == 5:
        return fields[0] == "0" and "*" in fields[1]
    if len(fields) == 6:
        return fields[0] == "0" and fields[1] == "0" and "*" in fields[2]
    return False


def stagger_offset_ms(job_id: str, window_ms: int) -> int:
    """A stable per-job offset inside the stagger window: the job keeps its minute."""
    if window_ms <= 0:
        return 0
    digest = hashlib.sha256(job_id.encode()).digest()
    return int.from_bytes(digest[:4], "big") % window_ms


def cron_next_ms(expr: str, tz: str | None, after_ms: int) -> int | None:
    """The first slot of `expr` strictly after `after_ms` (wall time in `tz`)."""
    tzinfo = zone(tz)
    base = datetime.fromtimestamp(after_ms / 1000, tz=tzinfo or UTC)
    if tzinfo is None:
        base = base.astimezone()  # host local zone
    fields = _fields(expr)
    try:
        it = croniter(expr, base, second_at_beginning=len(fields) == 6)
        nxt = it.get_next(datetime)
    except CroniterBadDateError:
        return None
    except (CroniterBadCronError, CroniterError, ValueError, KeyError) as exc:
        raise ScheduleError(f"invalid cron expression {expr!r}: {exc}") from exc
    assert isinstance(nxt, datetime)
    return int(nxt.timestamp() * 1000)


def next_run_ms(
    schedule: Schedule,
    *,
    job_id: str,
    after_ms: int,
    created_ms: int,
    last_run_ms: int | None,
) -> int | None:
    """The job's next slot strictly after `after_ms`; None when it will never run again.

    `at`: its instant until it has run once, then never. `every`: the next `anchor + k·every`.
    `cron`: the next slot of the expression (plus the job's stagger offset).
    """
    if isinstance(schedule, At):
        at_ms = parse_at_ms(schedule.at)
        if last_run_ms is not None and last_run_ms >= at_ms:
            return None
        return at_ms
    if isinstance(schedule, Every):
        anchor = schedule.anchor_ms if schedule.anchor_ms is not None else created_ms
        step = max(1, schedule.every_ms)
        if after_ms < anchor:
            return anchor
        k = (after_ms - anchor) // step + 1
        return anchor + k * step
    offset = stagger_offset_ms(job_id, schedule.stagger_ms or 0)
    # Search from `after - offset` so the staggered slot stays strictly after `after_ms`.
    base = cron_next_ms(schedule.expr, schedule.tz, after_ms - offset)
    return None if base is None else base + offset


def validate(schedule: Schedule, now_ms: int) -> None:
    """Reject schedules that cannot fire (bad expression, unknown zone, no future slot)."""
    if isinstance(schedule, At):
        parse_at_ms(schedule.at)
        return  # a past time is due immediately (§C.3)
    if isinstance(schedule, Every):
        if schedule.every_ms < 1:
            raise ScheduleError("everyMs must be at least 1")
        return
    zone(schedule.tz)
    validate_expr(schedule.expr)
    if cron_next_ms(schedule.expr, schedule.tz, now_ms) is None:
        raise ScheduleError(
            f"cron expression {schedule.expr!r} has no upcoming run time and would never fire"
        )
