from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from gateway.agents.freshness import ResetPolicy
from gateway.agents.store import (
    HISTORY_TEXT_MAX_CHARS,
    AgentSessionStore,
    SessionRow,
    SessionStore,
)
from gateway.agents.transcript import Transcript

MAIN = "agent:main:main"
DM = "agent:main:telegram:direct:123"
GROUP = "agent:main:discord:channel:c1"


class Clock:
    def __init__(self, start: int = 1_800_000_000_000) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text, "timestamp": 1}


def assistant(text: str, **extra: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "text", "text": text}], **extra}


def turn(store: SessionStore, key: str, question: str, answer: str) -> None:
    agent = store.for_key(key)
    agent.append_messages(key, [user(question)])
    agent.append_messages(
        key,
        [assistant(answer, usage={"input": 10, "output": 5, "totalTokens": 15})],
        usage={"input": 10, "output": 5, "totalTokens": 15},
        model="claude-haiku-4-5",
        provider="anthropic",
        run_id="run-1",
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> SessionStore:
    return SessionStore(tmp_path, cwd_for=lambda agent: f"/ws/{agent}", clock=clock)


def test_layout_and_row_fields(tmp_path: Path, store: SessionStore, clock: Clock) -> None:
    row = store.ensure(MAIN, channel="webchat", chat_type="direct", display_name="Me")
    sessions = tmp_path / "agents" / "main" / "sessions"
    index = json.loads((sessions / "sessions.json").read_text())
    assert list(index) == [MAIN]
    entry = index[MAIN]
    assert entry["sessionId"] == row.session_id
    assert entry["sessionStartedAt"] == clock.now
    assert entry["updatedAt"] == clock.now
    assert entry["chatType"] == "direct"
    assert entry["channel"] == "webchat"
    assert entry["displayName"] == "Me"
    header = json.loads((sessions / f"{row.session_id}.jsonl").read_text().splitlines()[0])
    assert header["type"] == "session" and header["id"] == row.session_id
    assert header["cwd"] == "/ws/main"


def test_survives_restart(tmp_path: Path, store: SessionStore, clock: Clock) -> None:
    turn(store, MAIN, "hi", "hello")
    store.for_key(MAIN).record_inbound(MAIN, last_route={"channel": "telegram", "to": "123"})
    before = store.get(MAIN)
    assert before is not None

    reopened = SessionStore(tmp_path, clock=clock)
    row = reopened.get(MAIN)
    assert row is not None
    assert row.to_json() == before.to_json()
    assert row.message_count == 2
    assert row.total_tokens == 15
    assert row.model == "claude-haiku-4-5"
    assert row.last_route == {"channel": "telegram", "to": "123"}
    history = reopened.model_history(MAIN)
    assert [m["role"] for m in history] == ["user", "assistant"]
    turn(reopened, MAIN, "again", "sure")
    assert len(SessionStore(tmp_path).model_history(MAIN)) == 4


def test_two_store_instances_see_each_others_writes(tmp_path: Path) -> None:
    a = AgentSessionStore(tmp_path, "main")
    b = AgentSessionStore(tmp_path, "main")
    a.ensure(MAIN)
    b.ensure(GROUP)
    assert {r.key for r in a.rows()} == {MAIN, GROUP}
    assert {r.key for r in b.rows()} == {MAIN, GROUP}


def test_unknown_row_keys_are_preserved(tmp_path: Path) -> None:
    sessions = tmp_path / "agents" / "main" / "sessions"
    sessions.mkdir(parents=True)
    (sessions / "sessions.json").write_text(
        json.dumps({MAIN: {"sessionId": "abc", "updatedAt": 5, "futureField": {"x": 1}}})
    )
    store = AgentSessionStore(tmp_path, "main")
    store.ensure(GROUP)
    store.compact()
    saved = json.loads((sessions / "sessions.json").read_text())
    assert saved[MAIN]["futureField"] == {"x": 1}
    assert saved[MAIN]["sessionStartedAt"] == 5


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", "\xff"])
def test_corrupt_index_is_set_aside(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    sessions = tmp_path / "agents" / "main" / "sessions"
    sessions.mkdir(parents=True)
    raw = content.encode("latin-1")
    (sessions / "sessions.json").write_bytes(raw)
    store = AgentSessionStore(tmp_path, "main")
    with caplog.at_level(logging.ERROR, logger="gateway.agents.store"):
        assert store.rows() == []
    kept = list(sessions.glob("sessions.json.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == raw
    assert any("kept as" in r.getMessage() for r in caplog.records)
    store.ensure(MAIN)  # still writable
    assert AgentSessionStore(tmp_path, "main").get(MAIN) is not None


def test_malformed_rows_are_dropped_and_file_copied(tmp_path: Path) -> None:
    sessions = tmp_path / "agents" / "main" / "sessions"
    sessions.mkdir(parents=True)
    original = json.dumps({MAIN: {"sessionId": "ok"}, "bad": 5, "worse": {"sessionId": 3}})
    (sessions / "sessions.json").write_text(original)
    store = AgentSessionStore(tmp_path, "main")
    assert [r.key for r in store.rows()] == [MAIN]
    kept = list(sessions.glob("sessions.json.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_text() == original


def test_index_write_is_atomic_no_temp_left(tmp_path: Path, store: SessionStore) -> None:
    for index in range(5):
        store.ensure(f"agent:main:discord:channel:{index}")
    sessions = tmp_path / "agents" / "main" / "sessions"
    names = sorted(p.name for p in sessions.iterdir() if not p.name.endswith(".jsonl"))
    assert names == ["sessions.journal", "sessions.json", "sessions.json.lock"]
    store.for_agent("main").compact()
    names = sorted(p.name for p in sessions.iterdir() if not p.name.endswith(".jsonl"))
    assert names == ["sessions.json", "sessions.json.lock"]


def test_a_turn_appends_one_journal_line_and_leaves_the_snapshot(
    tmp_path: Path, store: SessionStore
) -> None:
    for index in range(40):
        store.ensure(f"agent:main:discord:channel:{index}")
    store.for_agent("main").compact()
    sessions = tmp_path / "agents" / "main" / "sessions"
    snapshot = (sessions / "sessions.json").stat()
    turn(store, "agent:main:discord:channel:7", "hi", "hello")
    after = (sessions / "sessions.json").stat()
    assert (after.st_ino, after.st_mtime_ns) == (snapshot.st_ino, snapshot.st_mtime_ns)
    lines = (sessions / "sessions.journal").read_text().splitlines()
    assert {json.loads(line)["k"] for line in lines} == {"agent:main:discord:channel:7"}
    row = SessionStore(tmp_path).get("agent:main:discord:channel:7")
    assert row is not None and row.message_count == 2


def test_journal_folds_into_the_snapshot_as_it_grows(tmp_path: Path, store: SessionStore) -> None:
    sessions = tmp_path / "agents" / "main" / "sessions"
    for index in range(200):
        turn(store, MAIN, f"q{index}", f"a{index}")
    journal = sessions / "sessions.journal"
    assert not journal.exists() or len(journal.read_text().splitlines()) < 64
    row = SessionStore(tmp_path).get(MAIN)
    assert row is not None and row.message_count == 400


def test_torn_journal_tail_is_skipped_and_a_deleted_row_stays_deleted(
    tmp_path: Path, store: SessionStore
) -> None:
    store.ensure(MAIN)
    store.ensure(GROUP)
    store.delete(GROUP)
    turn(store, MAIN, "hi", "hello")
    journal = tmp_path / "agents" / "main" / "sessions" / "sessions.journal"
    intact = journal.read_bytes()
    journal.write_bytes(intact + b'{"k":"agent:main:x","v":{"sessi')  # SIGKILL mid-append
    reopened = SessionStore(tmp_path)
    assert [r.key for r in reopened.for_agent("main").rows()] == [MAIN]
    row = reopened.get(MAIN)
    assert row is not None and row.message_count == 2
    # A crash between the snapshot rename and the journal unlink replays lines the snapshot
    # already holds: same rows.
    journal.write_bytes(intact)
    reopened.for_agent("main").compact()
    journal.write_bytes(intact)
    again = SessionStore(tmp_path)
    assert [r.to_json() for r in again.for_agent("main").rows()] == [row.to_json()]


def test_new_session_keeps_old_transcript(
    tmp_path: Path, store: SessionStore, clock: Clock
) -> None:
    turn(store, MAIN, "hi", "hello")
    old = store.get(MAIN)
    assert old is not None
    clock.advance(1000)
    new = store.reset(MAIN, "new")
    assert new.session_id != old.session_id
    assert new.previous_session_id == old.session_id
    assert new.session_started_at == clock.now
    assert new.message_count == 0 and new.total_tokens is None
    sessions = tmp_path / "agents" / "main" / "sessions"
    assert (sessions / f"{old.session_id}.jsonl").exists()
    assert (sessions / f"{new.session_id}.jsonl").exists()
    assert store.model_history(MAIN) == []
    assert store.chat_history(MAIN).messages == []


def test_reset_in_place_opens_new_window(store: SessionStore) -> None:
    turn(store, MAIN, "hi", "hello")
    before = store.get(MAIN)
    after = store.reset(MAIN, "reset")
    assert before is not None and after.session_id == before.session_id
    assert after.message_count == 0
    events = store.for_key(MAIN).transcript(after.session_id).events()
    assert [e["type"] for e in events] == ["message", "message", "reset"]
    assert store.model_history(MAIN) == []
    turn(store, MAIN, "new q", "new a")
    assert store.model_history(MAIN)[0]["content"] == "new q"


def test_delete_archives_transcript(tmp_path: Path, store: SessionStore) -> None:
    turn(store, GROUP, "q", "a")
    row = store.get(GROUP)
    assert row is not None
    result = store.delete(GROUP)
    assert result.deleted and len(result.archived) == 1
    assert Path(result.archived[0]).name.startswith(f"{row.session_id}.jsonl.deleted.")
    assert Path(result.archived[0]).exists()
    assert store.get(GROUP) is None
    assert SessionStore(tmp_path).get(GROUP) is None
    assert store.delete(GROUP).to_wire() == {
        "ok": True,
        "key": GROUP,
        "deleted": False,
        "archived": [],
    }


def test_list_sessions_sort_filter_paginate(store: SessionStore, clock: Clock) -> None:
    keys = [f"agent:main:discord:channel:{i}" for i in range(5)]
    for key in keys:
        clock.advance(10)
        store.ensure(key, channel="discord", chat_type="channel")
    clock.advance(10)
    store.ensure("agent:work:telegram:group:-1", channel="telegram", display_name="Family")
    page = store.list_sessions(limit=2)
    assert [r.key for r in page.rows] == ["agent:work:telegram:group:-1", keys[4]]
    assert page.total_count == 6 and page.next_offset == 2
    last = store.list_sessions(limit=4, offset=4)
    assert [r.key for r in last.rows] == [keys[1], keys[0]]
    assert last.next_offset is None
    assert [r.key for r in store.list_sessions(agent_id="work").rows] == [
        "agent:work:telegram:group:-1"
    ]
    assert store.list_sessions(search="family").total_count == 1
    assert store.list_sessions(search="channel:3").total_count == 1
    clock.advance(61_000)
    store.ensure(keys[0], display_name="renamed")
    assert [r.key for r in store.list_sessions(active_minutes=1).rows] == [keys[0]]


def test_list_wire_shape(store: SessionStore) -> None:
    turn(store, DM, "q", "a")
    store.for_key(DM).record_inbound(
        DM, last_route={"channel": "telegram", "to": "123", "accountId": "default"}
    )
    store.ensure(DM, channel="telegram", chat_type="direct")
    wire = store.list_sessions().to_wire(path="/state/agents", ts=1)
    assert set(wire) >= {"ts", "path", "count", "totalCount", "hasMore", "defaults", "sessions"}
    assert wire["count"] == 1 and wire["hasMore"] is False and wire["nextOffset"] is None
    row = wire["sessions"][0]
    assert row["key"] == DM
    assert row["kind"] == "direct"
    assert row["agentId"] == "main"
    assert row["channel"] == "telegram"
    assert row["chatType"] == "direct"
    assert row["messageCount"] == 2
    assert row["totalTokens"] == 15
    assert row["modelProvider"] == "anthropic"
    assert row["lastChannel"] == "telegram" and row["lastTo"] == "123"
    assert row["isMain"] is False
    assert isinstance(row["updatedAt"], int)


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        (MAIN, "direct"),
        (GROUP, "group"),
        ("agent:main:telegram:group:-1", "group"),
        ("agent:main:cron:x", "unknown"),
    ],
)
def test_wire_kind(key: str, kind: str) -> None:
    row = SessionRow(key=key, session_id="s", session_started_at=1, updated_at=1)
    assert row.to_wire()["kind"] == kind


def test_chat_history_paging(store: SessionStore) -> None:
    for index in range(5):
        turn(store, MAIN, f"q{index}", f"a{index}")
    first = store.chat_history(MAIN, limit=4)
    assert [m["role"] for m in first.messages] == ["user", "assistant"] * 2
    assert first.messages[0]["content"] == "q3"
    assert first.next_cursor is not None
    second = store.chat_history(MAIN, limit=4, cursor=first.next_cursor)
    assert second.messages[0]["content"] == "q1"
    third = store.chat_history(MAIN, limit=4, cursor=second.next_cursor)
    assert [m["content"] for m in third.messages] == ["q0", [{"type": "text", "text": "a0"}]]
    assert third.next_cursor is None
    wire = third.to_wire()
    assert wire["sessionKey"] == MAIN and wire["hasMore"] is False
    assert "usage" not in first.messages[1]  # display projection drops usage/cost
    assert len(store.chat_history(MAIN, cursor="garbage").messages) == 10  # bad cursor = newest
    assert store.chat_history("agent:main:nope").messages == []


def test_chat_history_hides_silent_and_caps_text(store: SessionStore) -> None:
    agent = store.for_key(MAIN)
    agent.append_messages(MAIN, [user("x" * (HISTORY_TEXT_MAX_CHARS + 50))])
    agent.append_messages(MAIN, [assistant("NO_REPLY")])
    agent.append_messages(MAIN, [assistant("shown")])
    messages = store.chat_history(MAIN).messages
    assert len(messages) == 2
    assert messages[0]["content"].endswith("...(truncated)...")
    assert messages[1]["content"][0]["text"] == "shown"


def test_model_history_skips_errors_and_applies_dm_window(store: SessionStore) -> None:
    for key in (DM, MAIN):
        for index in range(4):
            turn(store, key, f"q{index}", f"a{index}")
        agent = store.for_key(key)
        agent.append_messages(key, [user("broken")])
        agent.append_messages(
            key, [{"role": "assistant", "content": [], "stopReason": "error", "errorMessage": "x"}]
        )
    dm = store.model_history(DM, dm_history_limit=2)
    assert [m["content"] for m in dm if m["role"] == "user"] == ["q3", "broken"]
    # The shared main session is never windowed by dmHistoryLimit…
    main = store.model_history(MAIN, dm_history_limit=2)
    assert len([m for m in main if m["role"] == "user"]) == 5
    assert all(m.get("stopReason") != "error" for m in main)
    # …but the global cap applies everywhere.
    capped = store.model_history(MAIN, max_user_turns=1)
    assert capped == [user("broken")]
    assert store.model_history(DM, dm_history_limit=0) == []


def test_record_inbound_idle_expiry(store: SessionStore, clock: Clock) -> None:
    policy = ResetPolicy(mode="idle", idle_minutes=30)
    agent = store.for_key(DM)
    row, rotated = agent.record_inbound(DM, reset_policy=policy)
    assert not rotated
    first_id = row.session_id
    clock.advance(29 * 60_000)
    row, rotated = agent.record_inbound(DM, reset_policy=policy)
    assert not rotated and row.session_id == first_id
    clock.advance(31 * 60_000)
    row, rotated = agent.record_inbound(DM, reset_policy=policy)
    assert rotated and row.session_id != first_id
    assert row.previous_session_id == first_id
    assert row.last_interaction_at == clock.now


def test_append_to_pinned_old_session_leaves_row_alone(store: SessionStore) -> None:
    row = store.ensure(MAIN)
    store.reset(MAIN, "new")
    store.for_key(MAIN).append_messages(MAIN, [assistant("late")], session_id=row.session_id)
    current = store.get(MAIN)
    assert current is not None and current.message_count == 0
    old = store.for_key(MAIN).transcript(row.session_id).events()
    assert old[-1]["message"]["content"][0]["text"] == "late"


def test_transcript_path_cannot_escape(tmp_path: Path) -> None:
    store = AgentSessionStore(tmp_path, "main")
    path = store.transcript_path("../../etc/passwd")
    assert path.parent == store.dir
    assert Transcript(path).read().events == []


def test_agent_ids_are_separate(tmp_path: Path, store: SessionStore) -> None:
    store.ensure("agent:work:main")
    store.ensure(MAIN)
    assert (tmp_path / "agents" / "work" / "sessions" / "sessions.json").exists()
    assert store.known_agent_ids() == ["main", "work"]
    assert [r.key for r in store.for_agent("work").rows()] == ["agent:work:main"]


def test_facade_record_inbound_sets_route_and_metadata(store: SessionStore) -> None:
    row, rotated = store.record_inbound(
        GROUP,
        last_route={"channel": "discord", "to": "channel:c1"},
        channel="discord",
        chat_type="channel",
        display_name="#general",
    )
    assert not rotated
    assert row.channel == "discord" and row.chat_type == "channel"
    assert row.display_name == "#general" and row.last_route == {
        "channel": "discord",
        "to": "channel:c1",
    }


def test_wrongly_typed_fields_are_dropped(tmp_path: Path) -> None:
    sessions = tmp_path / "agents" / "main" / "sessions"
    sessions.mkdir(parents=True)
    (sessions / "sessions.json").write_text(
        json.dumps(
            {
                MAIN: {
                    "sessionId": "s",
                    "updatedAt": 7,
                    "channel": 5,
                    "totalTokens": "many",
                    "messageCount": True,
                    "lastRoute": "nope",
                    "displayName": "ok",
                }
            }
        )
    )
    row = AgentSessionStore(tmp_path, "main").get(MAIN)
    assert row is not None
    assert (row.channel, row.total_tokens, row.message_count, row.last_route) == (
        None,
        None,
        0,
        None,
    )
    assert (row.display_name, row.updated_at, row.session_started_at) == ("ok", 7, 7)
    assert row.to_wire()["displayName"] == "ok"


def test_missing_transcript_is_restarted_with_header(tmp_path: Path, store: SessionStore) -> None:
    row = store.ensure(MAIN)
    path = store.for_key(MAIN).transcript_path(row.session_id)
    path.unlink()
    store.for_key(MAIN).append_messages(MAIN, [user("again")])
    result = Transcript(path).read()
    assert result.header is not None and result.header["id"] == row.session_id
    assert [e["message"]["content"] for e in result.events] == ["again"]


def test_new_session_on_unknown_key_creates_one_transcript(
    tmp_path: Path, store: SessionStore
) -> None:
    row = store.reset("agent:main:fresh", "new")
    assert row.previous_session_id is None
    assert len(list((tmp_path / "agents" / "main" / "sessions").glob("*.jsonl"))) == 1


def test_compact_folds_every_agent_journal(tmp_path: Path, store: SessionStore) -> None:
    store.ensure(MAIN)
    turn(store, MAIN, "hi", "hello")
    store.ensure("agent:work:main")
    store.ensure("agent:work:other")
    store.compact()
    for agent in ("main", "work"):
        sessions = tmp_path / "agents" / agent / "sessions"
        assert not (sessions / "sessions.journal").exists()
    index = json.loads((tmp_path / "agents" / "main" / "sessions" / "sessions.json").read_text())
    assert index[MAIN]["messageCount"] == 2
    assert SessionStore(tmp_path).get(MAIN) is not None


def _by_recency(rows: list[SessionRow]) -> list[str]:
    return [r.key for r in sorted(rows, key=lambda r: (r.updated_at, r.key), reverse=True)]


def test_listing_order_follows_every_change(
    tmp_path: Path, store: SessionStore, clock: Clock
) -> None:
    """Listings page through an order kept up to date per change (not a sort of every row):
    it must match a full sort after turns, a clock going back, /new, deletes, other agents and
    another process's writes."""
    rng = __import__("random").Random(7)
    keys = [f"agent:{a}:discord:channel:{i}" for a in ("main", "work") for i in range(12)]
    other = SessionStore(tmp_path, clock=clock)  # a second writer (the CLI)
    for step in range(300):
        key = rng.choice(keys)
        clock.advance(rng.choice((-5_000, 0, 1, 7, 1_000)))  # NTP may step the clock back
        action = rng.random()
        if action < 0.5:
            turn(store, key, "q", "a")
        elif action < 0.6:
            store.reset(key)
        elif action < 0.7:
            store.delete(key)
        elif action < 0.8:
            other.ensure(key, display_name=f"renamed {step}")
        else:
            store.for_key(key).update_row(key, lambda row: setattr(row, "context_tokens", 9))
        if step % 10 == 0:
            expected = _by_recency(store.for_agent("main").rows() + store.for_agent("work").rows())
            page = store.list_sessions(limit=5, offset=3)
            assert [r.key for r in page.rows] == expected[3:8]
            assert page.total_count == len(expected)
            assert [r.key for r in store.list_sessions().rows] == expected
            main_only = store.list_sessions(agent_id="main", limit=4)
            assert [r.key for r in main_only.rows] == [k for k in expected if ":main:" in k][:4]
    # Rows handed out are copies: changing one leaves the store's order and rows alone.
    first = store.list_sessions(limit=1).rows[0]
    first.updated_at = 0
    assert store.list_sessions(limit=1).rows[0].updated_at != 0


def test_a_fold_writes_rows_changed_since_the_last_one(tmp_path: Path, store: SessionStore) -> None:
    """Folds reuse each row's serialized line until the row changes: the snapshot must still
    hold every row's current fields."""
    keys = [f"agent:main:discord:channel:{i}" for i in range(80)]
    for key in keys:
        store.ensure(key)
    agent = store.for_agent("main")
    agent.compact()
    for round_ in range(3):
        for key in keys[round_ * 10 : round_ * 10 + 5]:
            turn(store, key, "q", "a")
        agent.compact()
        on_disk = json.loads(agent.index_path.read_text())
        assert on_disk == {row.key: row.to_json() for row in agent.rows()}
    assert on_disk[keys[20]]["messageCount"] == 2 and on_disk[keys[5]]["messageCount"] == 0
    reopened = SessionStore(tmp_path).for_agent("main")
    assert [r.to_json() for r in reopened.rows()] == [r.to_json() for r in agent.rows()]


def test_a_temp_file_left_by_a_killed_fold_is_removed_by_the_next(
    tmp_path: Path, store: SessionStore
) -> None:
    store.ensure(MAIN)
    sessions = tmp_path / "agents" / "main" / "sessions"
    stale = sessions / ".sessions.json.999999.deadbeef.tmp"
    stale.write_text('{"half')
    turn(store, MAIN, "q", "a")  # a journal line: no fold, the temp file stays
    assert stale.exists()
    store.compact()
    assert not stale.exists()
    assert list(sessions.glob("*.tmp")) == []
