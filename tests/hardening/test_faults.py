"""bench/faults.py, bounded: SIGKILL with a turn in flight, provider outage/hang/stall, disk full."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.harness import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import faults  # type: ignore[import-not-found]


async def test_sigkill_with_a_turn_in_flight_never_breaks_the_state(tmp_path: Path) -> None:
    figures = await faults.sigkill_cycles(5, tmp_path, seed=11)
    assert figures["lock failures"] == 0, figures["lock failure samples"]
    assert figures["unreadable transcripts"] == 0, figures["unreadable samples"]
    assert figures["unreadable index files"] == 0
    assert figures["index set aside as corrupt"] == 0
    assert figures["turn after restarts"] == "final"
    assert figures["clean exit code"] == 0


async def test_provider_outage_and_hangs_end_in_a_friendly_error(tmp_path: Path) -> None:
    figures = await faults.provider_faults(tmp_path, request_timeout_s=0.5)
    for scenario in ("outage mid-stream", "hang before answering", "stall mid-stream"):
        outcome = figures[scenario]
        assert outcome["final state"] == "error", (scenario, outcome)
        assert outcome["friendly (no raw error/key)"], (scenario, outcome)
    # Timeouts fire: bounded by the request timeout (plus a retry), not the 60 s the fake hangs.
    assert figures["hang before answering"]["seconds to answer"] < 10
    assert figures["stall mid-stream"]["seconds to answer"] < 10
    assert figures["stall mid-stream"]["deltas before"] == 1
    assert figures["exit code"] == 0 and figures["key in log"] is False


async def test_disk_full_fails_the_turn_and_leaves_no_unreadable_file(tmp_path: Path) -> None:
    # Mounts a 4 MiB tmpfs as the state volume: the suite runs as root on Linux (CI and the VM).
    figures = await faults.disk_full(tmp_path)
    # A new session needs a new transcript file: refused. The existing session's appends may
    # still fit in the slack of pages its files already hold (the session index is an
    # append-only journal now), and then the turn rightly completes.
    assert figures["turn when full (new session)"].get("state") == "error", figures
    existing = figures["turn when full (existing session)"]
    assert existing.get("state") in ("final", "error"), figures
    assert figures["health when full"] is True and figures["config.get when full"] is True
    assert figures["turn after space freed"] == "final"
    assert figures["unreadable transcripts"] == 0, figures["unreadable samples"]
    assert figures["unreadable index files"] == 0
    assert figures["exit code"] == 0
    # The user is told what is wrong; nothing half-written is left on the volume.
    assert "disk is full" in figures["turn when full (new session)"]["user sees"], figures
    if existing["state"] == "error":
        assert "disk is full" in existing["user sees"], figures
    assert figures["headerless transcripts"] == [], figures
    assert figures["temp files left"] in (0, [], None), figures
    assert figures["tracebacks in log"] == 0


async def test_discord_socket_drops_reconnect_and_answer(tmp_path: Path) -> None:
    figures = await faults.discord_drops(tmp_path, 3, fast=True)
    assert figures["failures"] == [], figures
    assert figures["DM after each drop answered"] == "3/3", figures
    assert figures["connected at the end"] is True
    # discord.py RESUMEs after a close 4000 (one IDENTIFY at login, none after).
    assert figures["RESUME / IDENTIFY"] == (3, 1), figures


async def test_telegram_poll_errors_back_off_without_a_crash_loop(tmp_path: Path) -> None:
    figures = await faults.telegram_poll_faults(tmp_path, fast=True)
    for name, _code, _desc, _params, times in faults.TELEGRAM_FAULTS:
        outcome = figures[name]
        assert outcome["connected"] is True, (name, outcome)
        # Each error costs one getUpdates call, then the next one works: no tight retry loop.
        assert outcome["getUpdates calls (errors + the one that worked)"] == times + 1, outcome
    # 429 waits retry_after (2 s) even with the test's short back-offs.
    assert figures["429 retry_after=2"]["recovery s"] >= 1.9, figures


async def test_first_chat_turn_does_not_stall_other_clients(tmp_path: Path) -> None:
    figures = await faults.first_turn_stall(tmp_path, 1)
    # The SDK import runs in a thread: a neighbour's health stays far below the old ~1 s stall.
    assert figures["health during first turn: median of per-run max ms"] < 250, figures
