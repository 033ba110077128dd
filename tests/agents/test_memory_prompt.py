"""MEMORY.md and daily notes in the system prompt only for the owner's private sessions,
and the memory-flush prompt."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from gateway.agents.memory.flush import (
    MEMORY_FLUSH_SYSTEM,
    memory_flush_enabled,
    memory_flush_prompt,
)
from gateway.agents.store import SILENT_REPLY_TOKEN
from gateway.agents.tools.registry import Requester
from gateway.agents.workspace import (
    PromptContext,
    build_system_prompt,
    load_bootstrap_files,
    load_daily_notes,
    memory_allowed,
    today_in,
)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "AGENTS.md").write_text("agents rules")
    (tmp_path / "MEMORY.md").write_text("sister birthday: 3 May")
    notes = tmp_path / "memory"
    notes.mkdir()
    (notes / "2026-05-01.md").write_text("older note, not loaded")
    (notes / "2026-05-02.md").write_text("yesterday: booked Porto trains")
    (notes / "2026-05-03.md").write_text("today: plumber at 10")
    (notes / "2026-05-03-standup.md").write_text("today slug: standup notes")
    (notes / "2026-05-03.txt").write_text("not markdown")
    return tmp_path


OWNER_DM = Requester(owner=True, channel="telegram", chat_type="direct", sender_id="1")
OPERATOR = Requester.operator()
STRANGER_DM = Requester(owner=False, channel="telegram", chat_type="direct", sender_id="2")
OWNER_IN_GROUP = Requester(owner=True, channel="telegram", chat_type="group", chat_id="-5")


def prompt(ws: Path, requester: Requester | None, *, is_group: bool = False) -> str:
    return build_system_prompt(
        PromptContext(
            workspace=ws,
            files=load_bootstrap_files(ws),
            daily_notes=load_daily_notes(ws, date(2026, 5, 3)),
            requester=requester,
            is_group=is_group,
            host="h",
            os_name="o",
        )
    )


def test_notes_loaded_in_order(ws: Path) -> None:
    notes = load_daily_notes(ws, date(2026, 5, 3))
    assert [n.name for n in notes] == [
        "memory/2026-05-02.md",
        "memory/2026-05-03-standup.md",
        "memory/2026-05-03.md",
    ]
    assert load_daily_notes(ws / "nowhere", date(2026, 5, 3)) == []
    capped = load_daily_notes(ws, date(2026, 5, 3), max_chars=5)
    assert capped[0].content == "yeste" and capped[0].truncated


@pytest.mark.parametrize("who", [OWNER_DM, OPERATOR])
def test_owner_private_sessions_get_memory(ws: Path, who: Requester) -> None:
    text = prompt(ws, who)
    assert "sister birthday: 3 May" in text
    assert "yesterday: booked Porto trains" in text and "today: plumber at 10" in text
    assert "older note" not in text and "not markdown" not in text
    assert "agents rules" in text


@pytest.mark.parametrize(
    ("who", "is_group"),
    [(STRANGER_DM, False), (OWNER_IN_GROUP, False), (OPERATOR, True), (None, False)],
)
def test_no_memory_for_groups_strangers_or_unknown(
    ws: Path, who: Requester | None, is_group: bool
) -> None:
    text = prompt(ws, who, is_group=is_group)
    assert "3 May" not in text and "plumber" not in text and "Porto" not in text
    assert "agents rules" in text, "the rest of the workspace still loads"
    assert memory_allowed(who, is_group=is_group) is False


def test_today_in_a_timezone() -> None:
    assert isinstance(today_in("Pacific/Kiritimati"), date)
    assert today_in("Not/AZone") == date.today()


def test_flush_prompt_names_todays_note_and_silent_reply() -> None:
    text = memory_flush_prompt(now=datetime(2026, 5, 3, 22, 15))
    assert "memory/2026-05-03.md" in text and "memory/2026-05-02.md" in text
    assert "MEMORY.md" in text and text.rstrip().endswith(f"{SILENT_REPLY_TOKEN}.")
    assert "Pre-compaction memory flush" in text
    assert "compacted" in MEMORY_FLUSH_SYSTEM
    assert memory_flush_enabled(None) is True
    assert memory_flush_enabled({"memoryFlush": {"enabled": False}}) is False
    assert memory_flush_enabled({"memoryFlush": {"enabled": True}}) is True
