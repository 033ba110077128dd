"""Usage queries over the index: date ranges, time zones, the RPC results and `/usage`.

Shapes follow context-and-cron.md B.4 (`usage.cost`, `sessions.usage`,
`sessions.usage.timeseries`, `sessions.usage.logs`); `/usage` follows B.5.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.agents.context import compact_count
from gateway.agents.store import message_text
from gateway.agents.usage import (
    Record,
    Totals,
    UsageIndex,
    by_model,
    daily_totals,
    date_range,
    day_of,
    message_counts,
    totals_of,
)
from gateway.config.models import OpenClawConfig

if TYPE_CHECKING:
    from gateway.agents.service import AgentService
    from gateway.runtime import Gateway

RANGE_DAYS = {"7d": 7, "30d": 30, "90d": 90, "1y": 365}
_OFFSET = re.compile(r"^UTC([+-])(\d{1,2})(?::(\d{2}))?$")
TIMESERIES_MAX_POINTS = 200
LOG_TEXT_MAX = 2_000


class UsageQueryError(ValueError):
    """Bad range/time-zone parameters (the RPC layer answers INVALID_REQUEST)."""


def index_for(gateway: Gateway) -> UsageIndex:
    """The process-wide usage index (created on first use)."""
    existing = gateway.extensions.get("agents.usage")
    if isinstance(existing, UsageIndex):
        return existing
    index = UsageIndex(gateway.settings.state_dir, lambda: gateway.loaded.config)
    gateway.extensions["agents.usage"] = index
    return index


@dataclass(frozen=True)
class Period:
    start: date
    end: date
    tz: tzinfo

    @property
    def days(self) -> list[str]:
        return date_range(self.start, self.end)


def resolve_tz(mode: str | None, time_zone: str | None, utc_offset: str | None) -> tzinfo:
    if mode in (None, "utc"):
        return UTC
    if mode == "gateway":
        local = datetime.now().astimezone().tzinfo
        return local or UTC
    if mode != "specific":
        raise UsageQueryError(f"mode must be utc, gateway or specific (got {mode!r})")
    if time_zone:
        try:
            return ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise UsageQueryError(f"unknown timeZone {time_zone!r}") from exc
    if utc_offset:
        match = _OFFSET.match(utc_offset.strip())
        if not match:
            raise UsageQueryError(
                f"utcOffset must look like UTC+2 or UTC-5:30 (got {utc_offset!r})"
            )
        sign = 1 if match.group(1) == "+" else -1
        minutes = int(match.group(2)) * 60 + int(match.group(3) or 0)
        if not -12 * 60 <= sign * minutes <= 14 * 60:
            raise UsageQueryError("utcOffset must be between UTC-12 and UTC+14")
        return timezone(timedelta(minutes=sign * minutes))
    raise UsageQueryError("mode specific needs timeZone or utcOffset")


def resolve_period(
    *,
    start_date: str | None = None,
    end_date: str | None = None,
    range_: str | None = None,
    days: int | None = None,
    tz: tzinfo = UTC,
    earliest: int | None = None,
) -> Period:
    """startDate+endDate, else range, else days (default 30, today inclusive)."""
    today = datetime.now(tz).date()
    if (start_date is None) != (end_date is None):
        raise UsageQueryError("startDate and endDate must be provided together")
    if start_date is not None and end_date is not None:
        try:
            start, end = date.fromisoformat(start_date), date.fromisoformat(end_date)
        except ValueError as exc:
            raise UsageQueryError("startDate and endDate must be YYYY-MM-DD") from exc
        if start > end:
            raise UsageQueryError("startDate must not be after endDate")
        return Period(start, end, tz)
    if range_ is not None:
        if range_ == "all":
            first = day_of(earliest, tz) if earliest else today.isoformat()
            return Period(min(date.fromisoformat(first), today), today, tz)
        if range_ not in RANGE_DAYS:
            raise UsageQueryError("range must be one of 7d, 30d, 90d, 1y, all")
        days = RANGE_DAYS[range_]
    count = days if days is not None else 30
    if count < 1:
        raise UsageQueryError("days must be at least 1")
    return Period(today - timedelta(days=count - 1), today, tz)


def _in_period(record: Record, period: Period) -> bool:
    day = day_of(record[0], period.tz)
    return period.start.isoformat() <= day <= period.end.isoformat()


def cost_report(index: UsageIndex, period: Period, agent_id: str | None) -> dict[str, Any]:
    """`usage.cost` result."""
    status = index.refresh()
    records = [r for _, r in index.records(agent_id=agent_id) if _in_period(r, period)]
    days = period.days
    return {
        "updatedAt": status.refreshed_at,
        "days": len(days),
        "daily": daily_totals(records, days, period.tz),
        "totals": totals_of(records).to_wire(),
        "byModel": by_model(records),
        "cacheStatus": status.to_wire(),
    }


def sessions_report(
    index: UsageIndex,
    svc: AgentService,
    period: Period,
    *,
    agent_id: str | None,
    key: str | None,
    limit: int,
) -> dict[str, Any]:
    """`sessions.usage` result (the fields official clients read, B.4)."""
    status = index.refresh()
    rows = {row.key: row for row in svc.store.list_sessions(agent_id=agent_id).rows}
    per_session: dict[str, list[tuple[Any, Record]]] = {}
    for entry, record in index.records(agent_id=agent_id):
        if not _in_period(record, period):
            continue
        session_key = index.keys.get(entry.session_id) or f"agent:{entry.agent_id}:unknown"
        if key is not None and session_key != key:
            continue
        per_session.setdefault(session_key, []).append((entry, record))
    days = period.days
    sessions: list[dict[str, Any]] = []
    all_records: list[Record] = []
    by_agent: dict[str, list[Record]] = {}
    by_channel: dict[str, list[Record]] = {}
    for session_key, pairs in per_session.items():
        records = [r for _, r in pairs]
        all_records += records
        row = rows.get(session_key)
        entry = pairs[-1][0]
        by_agent.setdefault(entry.agent_id, []).extend(records)
        if row is not None and row.channel:
            by_channel.setdefault(row.channel, []).extend(records)
        sessions.append(_session_row(session_key, entry, row, records, days, period.tz))
    sessions.sort(key=lambda s: -s["updatedAt"])
    sessions = sessions[:limit]
    totals = totals_of(all_records)
    counts = message_counts(all_records)
    return {
        "updatedAt": status.refreshed_at,
        "startDate": period.start.isoformat(),
        "endDate": period.end.isoformat(),
        "sessions": sessions,
        "totals": totals.to_wire(),
        "aggregates": {
            "sessionCount": len(per_session),
            "messages": counts,
            "tools": {"totalCalls": counts["toolCalls"], "uniqueTools": 0, "tools": []},
            "byModel": by_model(all_records),
            "byProvider": _by_provider(all_records),
            "byAgent": [
                {"agentId": a, "totals": totals_of(r).to_wire()} for a, r in by_agent.items()
            ],
            "byChannel": [
                {"channel": c, "totals": totals_of(r).to_wire()} for c, r in by_channel.items()
            ],
            "byCreator": [],
            "costDaily": daily_totals(all_records, days, period.tz),
            "daily": _daily_activity(all_records, days, period.tz),
            "modelDaily": _model_daily(all_records, period.tz),
            "dailyLatency": [],
        },
        "creatorOptions": [],
        "cacheStatus": status.to_wire(),
    }


def _session_row(
    key: str, entry: Any, row: Any, records: list[Record], days: Sequence[str], tz: tzinfo
) -> dict[str, Any]:
    totals = totals_of(records)
    stamps = [r[0] for r in records if r[0]]
    first, last = (min(stamps), max(stamps)) if stamps else (0, 0)
    usage = {
        **totals.to_wire(),
        "sessionId": entry.session_id,
        "sessionFile": entry.session_id + ".jsonl",
        "firstActivity": first,
        "lastActivity": last,
        "durationMs": max(0, last - first),
        "activityDates": sorted({day_of(s, tz) for s in stamps}),
        "messageCounts": message_counts(records),
        "modelUsage": by_model(records),
        "dailyBreakdown": [
            {**d, "tokens": d["totalTokens"], "cost": d["totalCost"]}
            for d in daily_totals(records, days, tz)
            if d["totalTokens"]
        ],
        "dailyModelUsage": _model_daily(records, tz),
    }
    out: dict[str, Any] = {
        "key": key,
        "sessionId": entry.session_id,
        "scope": "instance",
        "updatedAt": row.updated_at if row is not None else last,
        "agentId": entry.agent_id,
        "creatorKey": key,
        "usage": usage,
        "hasContextWeight": False,
    }
    if row is not None:
        for name, value in (
            ("label", row.display_name),
            ("chatType", row.chat_type),
            ("channel", row.channel),
            ("modelProvider", row.model_provider),
            ("model", row.model),
        ):
            if value:
                out[name] = value
    return out


def _by_provider(records: list[Record]) -> list[dict[str, Any]]:
    groups: dict[str, list[Record]] = {}
    for record in records:
        if record[1] in ("assistant", "compaction") and record[2]:
            groups.setdefault(record[2], []).append(record)
    return [
        {"provider": p, "count": len(r), "totals": totals_of(r).to_wire()}
        for p, r in groups.items()
    ]


def _daily_activity(records: list[Record], days: Sequence[str], tz: tzinfo) -> list[dict[str, Any]]:
    buckets: dict[str, list[Record]] = {d: [] for d in days}
    for record in records:
        bucket = buckets.get(day_of(record[0], tz))
        if bucket is not None:
            bucket.append(record)
    out = []
    for day, items in buckets.items():
        totals = totals_of(items)
        counts = message_counts(items)
        out.append(
            {
                "date": day,
                "tokens": totals.total_tokens,
                "cost": round(totals.total_cost, 6),
                "messages": counts["total"],
                "toolCalls": counts["toolCalls"],
                "errors": counts["errors"],
            }
        )
    return out


def _model_daily(records: list[Record], tz: tzinfo) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, str], Totals] = {}
    counts: dict[tuple[str, str, str], int] = {}
    for record in records:
        if record[1] not in ("assistant", "compaction") or not record[3]:
            continue
        group = (day_of(record[0], tz), record[2], record[3])
        groups.setdefault(group, Totals()).add(record)
        counts[group] = counts.get(group, 0) + 1
    return [
        {
            "date": d,
            "provider": p,
            "model": m,
            "tokens": t.total_tokens,
            "cost": round(t.total_cost, 6),
            "count": counts[(d, p, m)],
        }
        for (d, p, m), t in sorted(groups.items())
    ]


def timeseries(svc: AgentService, key: str, config: OpenClawConfig) -> dict[str, Any]:
    """`sessions.usage.timeseries`: per-call points of the session's current transcript."""
    from gateway.agents.usage import record_of

    row = svc.store.get(key)
    if row is None:
        return {"sessionId": None, "points": []}
    events = svc.store.for_key(key).transcript(row.session_id).events()
    points: list[dict[str, Any]] = []
    tokens = 0
    cost = 0.0
    for event in events:
        record = record_of(event, config)
        if record is None or record[1] not in ("assistant", "compaction"):
            continue
        total = record[4] + record[5] + record[6] + record[7]
        call_cost = record[8][4] if record[8] else 0.0
        tokens += total
        cost += call_cost
        points.append(
            {
                "timestamp": record[0],
                "input": record[4],
                "output": record[5],
                "cacheRead": record[6],
                "cacheWrite": record[7],
                "totalTokens": total,
                "cost": round(call_cost, 6),
                "cumulativeTokens": tokens,
                "cumulativeCost": round(cost, 6),
            }
        )
    return {"sessionId": row.session_id, "points": points[-TIMESERIES_MAX_POINTS:]}


def logs(svc: AgentService, key: str, limit: int, config: OpenClawConfig) -> dict[str, Any]:
    """`sessions.usage.logs`: the session's messages with their tokens and cost."""
    from gateway.agents.usage import record_of

    row = svc.store.get(key)
    if row is None:
        return {"logs": []}
    out: list[dict[str, Any]] = []
    for event in svc.store.for_key(key).transcript(row.session_id).events():
        message = event.get("message") if event.get("type") == "message" else None
        if not isinstance(message, dict):
            continue
        record = record_of(event, config)
        item: dict[str, Any] = {
            "timestamp": record[0] if record else 0,
            "role": message.get("role"),
            "content": message_text(message)[:LOG_TEXT_MAX],
        }
        if record is not None and record[1] == "assistant":
            item["tokens"] = record[4] + record[5] + record[6] + record[7]
            if record[8] is not None:
                item["cost"] = round(record[8][4], 6)
        out.append(item)
    return {"logs": out[-limit:]}


# --- /usage ---------------------------------------------------------------------------------------


def _money(value: float) -> str:
    return f"${value:.4f}" if value < 1 else f"${value:.2f}"


def usage_command(
    svc: AgentService,
    config: OpenClawConfig,
    session_key: str,
    args: str,
    channel: str | None = None,
) -> str:
    """`/usage cost`: the cost summary; any other form sets the footer (usage_footer.py)."""
    if args.strip().lower().startswith("cost"):
        return cost_summary(svc, session_key)
    from gateway.agents.usage_footer import mode_command

    return mode_command(svc.store, config, session_key, args, channel)


def cost_summary(svc: AgentService, session_key: str) -> str:
    """Session, today and last-30-days totals with cost."""
    index = index_for(svc.gateway)
    index.refresh()
    ids = set(index.session_ids_for_key(session_key))
    row = svc.store.get(session_key)
    if row is not None:
        ids.add(row.session_id)
    session = totals_of(r for e, r in index.records() if e.session_id in ids)
    today = resolve_period(days=1)
    month = resolve_period(days=30)
    everything = [r for _, r in index.records()]
    day = totals_of(r for r in everything if _in_period(r, today))
    last30 = totals_of(r for r in everything if _in_period(r, month))

    def line(label: str, totals: Totals) -> str:
        cost = _money(totals.total_cost)
        if totals.missing_cost_entries:
            cost += f" (+{totals.missing_cost_entries} unpriced)"
        return (
            f"{label} {cost} · {compact_count(totals.total_tokens)} tokens "
            f"({compact_count(totals.input)} in, {compact_count(totals.output)} out, "
            f"{compact_count(totals.cache_read)} cached)"
        )

    return "\n".join(
        [
            "💸 Usage cost",
            line("Session", session),
            line("Today", day),
            line("Last 30d", last30),
        ]
    )


def now_ms() -> int:
    return int(time.time() * 1000)
