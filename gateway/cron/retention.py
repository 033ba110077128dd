"""Pruning old isolated run sessions (`cron.sessionRetention`).

Every `isolated` run gets a fresh `agent:<id>:cron:<jobId>:run:<uuid>` session, so a job that
runs every few minutes leaves hundreds of rows and transcripts a day. The scheduler sweeps
them at most every 5 minutes (of its clock): a run session whose row was last updated longer
ago than the retention (default 24 h; a bare number is hours; `false` or a zero duration
turns pruning off) is deleted through the session store's own delete path — one journaled,
fsynced step per row, so a crash mid-sweep leaves every session either whole or gone — and
the transcript the store set aside is then removed. Only run-session keys are touched: main,
chat, `session:<key>` and `current` sessions never match, and a session with a turn still
running or queued is left for a later sweep.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.config.models import CronConfig
from gateway.cron.schedule import ScheduleError, parse_duration_ms

if TYPE_CHECKING:
    from gateway.agents.service import AgentService
    from gateway.agents.store import AgentSessionStore

log = logging.getLogger("gateway.cron")

DEFAULT_RETENTION_MS = 86_400_000
SWEEP_INTERVAL_MS = 300_000
_RUN_SESSION = re.compile(r"^agent:[^:]+:cron:[^:]+:run:[^:]+$")


def retention_ms(cfg: CronConfig) -> int | None:
    """How long run sessions are kept; None = never pruned."""
    value = cfg.session_retention
    if value is False:
        return None
    if isinstance(value, str) and value.strip():
        try:
            ms = parse_duration_ms(value, bare_unit="h")
        except ScheduleError:  # refused at config load; a hand-built config falls back
            return DEFAULT_RETENTION_MS
        return ms if ms > 0 else None
    return DEFAULT_RETENTION_MS


def is_run_session(key: str) -> bool:
    return bool(_RUN_SESSION.match(key))


async def sweep(agents: AgentService, *, now_ms: int, keep_ms: int) -> int:
    """Delete run sessions older than `keep_ms` at `now_ms`; returns how many went."""
    cutoff = now_ms - keep_ms
    pruned = 0
    for agent_id in agents.store.known_agent_ids():
        store = agents.store.for_agent(agent_id)
        try:
            expired = [
                row.key
                for row in store.newest_first()
                if row.updated_at < cutoff and is_run_session(row.key)
            ]
        except OSError as exc:
            log.warning("cron: cannot read the sessions of %s to prune them: %s", agent_id, exc)
            continue
        for key in expired:
            if not agents.runner.is_busy(key) and _prune(agents, store, key):
                pruned += 1
            await asyncio.sleep(0)  # many deletions never hold the event loop in one go
    if pruned:
        log.info(
            "cron: pruned %d isolated run session(s) older than %g h", pruned, keep_ms / 3_600_000
        )
    return pruned


def _prune(agents: AgentService, store: AgentSessionStore, key: str) -> bool:
    """Delete one run session (row, then transcript); False if it was not there."""
    try:
        result = store.delete(key)
    except OSError as exc:
        log.warning("cron: could not prune run session %s: %s", key, exc)
        return False
    for archived in result.archived:
        # The store sets a deleted transcript aside; a pruned run's is not kept.
        try:
            Path(archived).unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cron: could not remove the transcript of %s: %s", key, exc)
    if result.deleted:
        agents.sessions_changed(key, "deleted")
    return result.deleted
