from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from gateway.agents.routing import (
    AgentProfile,
    Binding,
    NoOwner,
    Roster,
    Route,
    RouteInput,
    agents_list_result,
    fallback_owner,
    resolve_route,
)

LEGACY = Roster(agent_ids=("main", "work", "home", "ops"), legacy_default_id="main")
EXPLICIT = Roster(agent_ids=("main", "work", "home", "ops"), explicit_ownership=True)
SOLE = Roster(agent_ids=("solo",))
NONE = Roster()


def B(agent: str, channel: str = "discord", **kw: object) -> Binding:
    return Binding(agent_id=agent, channel=channel, **kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Row:
    name: str
    bindings: list[Binding]
    inp: RouteInput
    agent: str | None  # None = NoOwner
    matched_by: str = ""
    roster: Roster = field(default=LEGACY)


DM = RouteInput(channel="discord", peer_kind="direct", peer_id="111")
GUILD_MSG = RouteInput(channel="discord", peer_kind="channel", peer_id="c1", guild_id="g1")
THREAD_MSG = RouteInput(
    channel="discord",
    peer_kind="channel",
    peer_id="t9",
    parent_peer_kind="channel",
    parent_peer_id="c1",
    guild_id="g1",
)
TG_GROUP = RouteInput(channel="telegram", peer_kind="group", peer_id="-100")

ROWS = [
    Row("no bindings → legacy default", [], DM, "main", "default"),
    Row("no bindings, sole agent", [], DM, "solo", "sole", SOLE),
    Row("no bindings, no roster → main", [], DM, "main", "implicit", NONE),
    Row("no bindings, explicit → no owner", [], DM, None, roster=EXPLICIT),
    Row(
        "exact peer",
        [B("work", peer_kind="direct", peer_id="111")],
        DM,
        "work",
        "binding.peer",
    ),
    Row(
        "legacy dm alias matches direct",
        [B("work", peer_kind="dm", peer_id="111")],
        DM,
        "work",
        "binding.peer",
    ),
    Row(
        "peer id mismatch falls through",
        [B("work", peer_kind="direct", peer_id="222")],
        DM,
        "main",
        "default",
    ),
    Row(
        "peer kind mismatch falls through",
        [B("work", peer_kind="group", peer_id="111")],
        DM,
        "main",
        "default",
    ),
    Row(
        "group binding matches channel peer (same room kind)",
        [B("work", peer_kind="group", peer_id="c1")],
        GUILD_MSG,
        "work",
        "binding.peer",
    ),
    Row(
        "other channel ignored",
        [B("work", channel="telegram", peer_kind="direct", peer_id="111")],
        DM,
        "main",
        "default",
    ),
    Row(
        "channel name case-insensitive",
        [B("work", channel="Discord", peer_kind="direct", peer_id="111")],
        DM,
        "work",
        "binding.peer",
    ),
    Row(
        "first binding in config order wins inside a tier",
        [
            B("work", peer_kind="direct", peer_id="111"),
            B("home", peer_kind="direct", peer_id="111"),
        ],
        DM,
        "work",
        "binding.peer",
    ),
    Row(
        "exact peer beats earlier account binding",
        [B("ops"), B("work", peer_kind="direct", peer_id="111")],
        DM,
        "work",
        "binding.peer",
    ),
    Row(
        "exact peer beats earlier wildcard peer",
        [
            B("ops", peer_kind="direct", peer_id="*"),
            B("work", peer_kind="direct", peer_id="111"),
        ],
        DM,
        "work",
        "binding.peer",
    ),
    Row(
        "wildcard peer of the kind",
        [B("ops", peer_kind="direct", peer_id="*")],
        DM,
        "ops",
        "binding.peer.wildcard",
    ),
    Row(
        "wildcard peer of another kind does not match",
        [B("ops", peer_kind="group", peer_id="*")],
        DM,
        "main",
        "default",
    ),
    Row(
        "parent peer for a thread",
        [B("work", peer_kind="channel", peer_id="c1")],
        THREAD_MSG,
        "work",
        "binding.peer.parent",
    ),
    Row(
        "thread's own binding beats parent",
        [
            B("work", peer_kind="channel", peer_id="c1"),
            B("home", peer_kind="channel", peer_id="t9"),
        ],
        THREAD_MSG,
        "home",
        "binding.peer",
    ),
    Row(
        "parent peer beats wildcard",
        [
            B("ops", peer_kind="channel", peer_id="*"),
            B("work", peer_kind="channel", peer_id="c1"),
        ],
        THREAD_MSG,
        "work",
        "binding.peer.parent",
    ),
    Row(
        "wildcard beats guild",
        [B("home", guild_id="g1"), B("ops", peer_kind="channel", peer_id="*")],
        GUILD_MSG,
        "ops",
        "binding.peer.wildcard",
    ),
    Row("guild", [B("home", guild_id="g1")], GUILD_MSG, "home", "binding.guild"),
    Row("guild mismatch", [B("home", guild_id="g2")], GUILD_MSG, "main", "default"),
    Row(
        "guild beats account",
        [B("ops"), B("home", guild_id="g1")],
        GUILD_MSG,
        "home",
        "binding.guild",
    ),
    Row(
        "peer binding with guild constraint must match guild too",
        [B("work", peer_kind="channel", peer_id="c1", guild_id="g2")],
        GUILD_MSG,
        "main",
        "default",
    ),
    Row(
        "guild + roles needs a member role",
        [B("ops", guild_id="g1", roles=("r1",))],
        GUILD_MSG,
        "main",
        "default",
    ),
    Row(
        "guild + roles beats plain guild",
        [B("home", guild_id="g1"), B("ops", guild_id="g1", roles=("r1",))],
        RouteInput(
            channel="discord",
            peer_kind="channel",
            peer_id="c1",
            guild_id="g1",
            member_role_ids=("r0", "r1"),
        ),
        "ops",
        "binding.guild+roles",
    ),
    Row(
        "team",
        [B("ops", channel="slack", team_id="T1")],
        RouteInput(channel="slack", peer_kind="channel", peer_id="C1", team_id="T1"),
        "ops",
        "binding.team",
    ),
    Row("account binding (omitted = default account)", [B("ops")], DM, "ops", "binding.account"),
    Row(
        "omitted accountId does not match a non-default account",
        [B("ops")],
        RouteInput(channel="discord", account_id="second", is_default_account=False, peer_id="111"),
        "main",
        "default",
    ),
    Row(
        "explicit accountId matches that account",
        [B("ops", account_id="Second")],
        RouteInput(channel="discord", account_id="second", is_default_account=False, peer_id="111"),
        "ops",
        "binding.account",
    ),
    Row(
        "explicit accountId does not match another",
        [B("ops", account_id="second")],
        DM,
        "main",
        "default",
    ),
    Row(
        "account * is channel-wide",
        [B("ops", account_id="*")],
        RouteInput(channel="discord", account_id="third", is_default_account=False, peer_id="111"),
        "ops",
        "binding.channel",
    ),
    Row(
        "account binding beats earlier channel-wide binding",
        [B("home", account_id="*"), B("ops")],
        DM,
        "ops",
        "binding.account",
    ),
    Row(
        "peer binding restricted to default account ignores other accounts",
        [B("work", peer_kind="direct", peer_id="111")],
        RouteInput(
            channel="discord",
            account_id="second",
            is_default_account=False,
            peer_kind="direct",
            peer_id="111",
        ),
        "main",
        "default",
    ),
    Row(
        "peer binding with account * matches any account",
        [B("work", account_id="*", peer_kind="direct", peer_id="111")],
        RouteInput(
            channel="discord",
            account_id="second",
            is_default_account=False,
            peer_kind="direct",
            peer_id="111",
        ),
        "work",
        "binding.peer",
    ),
    Row(
        "telegram group peer",
        [B("home", channel="telegram", peer_kind="group", peer_id="-100")],
        TG_GROUP,
        "home",
        "binding.peer",
    ),
    Row(
        "telegram topic id is its own peer",
        [B("home", channel="telegram", peer_kind="group", peer_id="-100:topic:7")],
        RouteInput(channel="telegram", peer_kind="group", peer_id="-100:topic:7"),
        "home",
        "binding.peer",
    ),
    Row(
        "binding agent id is normalised",
        [B("  WORK ", peer_kind="direct", peer_id="111")],
        DM,
        "work",
        "binding.peer",
    ),
    Row(
        "explicit ownership: a binding still owns",
        [B("work", peer_kind="direct", peer_id="111")],
        DM,
        "work",
        "binding.peer",
        EXPLICIT,
    ),
    Row(
        "explicit ownership: unmatched fails closed",
        [B("work", peer_kind="direct", peer_id="222")],
        DM,
        None,
        roster=EXPLICIT,
    ),
    Row(
        "explicit ownership: caller-supplied agent owns",
        [],
        RouteInput(channel="webchat", requested_agent_id="Work"),
        "work",
        "requested",
        EXPLICIT,
    ),
    Row(
        "caller-supplied unknown agent is ignored",
        [],
        RouteInput(channel="webchat", requested_agent_id="ghost"),
        "main",
        "default",
    ),
    Row(
        "binding beats caller-supplied agent",
        [B("ops", channel="webchat")],
        RouteInput(channel="webchat", requested_agent_id="work"),
        "ops",
        "binding.account",
    ),
    Row(
        "incomplete peer constraint never matches",
        [B("work", peer_kind="direct"), B("home", peer_id="111")],
        DM,
        "main",
        "default",
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_resolve_route_table(row: Row) -> None:
    result = resolve_route(row.bindings, row.roster, row.inp)
    if row.agent is None:
        assert isinstance(result, NoOwner)
        assert result.code == "AGENT_SELECTION_REQUIRED"
        return
    assert isinstance(result, Route), result
    assert result.agent_id == row.agent
    assert result.matched_by == row.matched_by


def test_no_owner_log_line_names_channel_and_peer() -> None:
    result = resolve_route([], EXPLICIT, DM)
    assert isinstance(result, NoOwner)
    assert "channel=discord" in result.log_line
    assert "peer=direct:111" in result.log_line


def test_binding_session_scope_overrides() -> None:
    binding = B(
        "work",
        peer_kind="direct",
        peer_id="111",
        session_dm_scope="per-channel-peer",
        session_group_scope="main",
    )
    route = resolve_route([binding], LEGACY, DM)
    assert isinstance(route, Route)
    assert route.dm_scope("main") == "per-channel-peer"
    assert route.group_scope("per-group") == "main"
    fallback = resolve_route([], LEGACY, DM)
    assert isinstance(fallback, Route)
    assert fallback.dm_scope("per-peer") == "per-peer"


def test_resolve_is_pure() -> None:
    bindings = [B("work", peer_kind="direct", peer_id="111")]
    first = resolve_route(bindings, LEGACY, DM)
    second = resolve_route(bindings, LEGACY, DM)
    assert first == second


def test_fallback_owner_order() -> None:
    assert fallback_owner(NONE) == Route("main", "implicit")
    assert fallback_owner(SOLE, "other") == Route("solo", "sole")
    assert fallback_owner(LEGACY) == Route("main", "default")
    assert fallback_owner(EXPLICIT) is None


def test_agents_list_result_shapes() -> None:
    profiles = [
        AgentProfile("main", "/data/workspace", name="Main", model_primary="anthropic/x"),
        AgentProfile("work", "/data/workspace-work", model_fallbacks=("a/b",)),
    ]
    legacy = agents_list_result(LEGACY, profiles)
    assert legacy["defaultId"] == "main"
    assert legacy["mainKey"] == "main"
    assert legacy["scope"] == "per-sender"
    assert legacy["ownership"] == "legacy"
    assert legacy["agents"][0] == {
        "id": "main",
        "workspace": "/data/workspace",
        "name": "Main",
        "model": {"primary": "anthropic/x"},
    }
    assert "model" not in legacy["agents"][1]
    explicit = agents_list_result(EXPLICIT, profiles)
    assert explicit["ownership"] == "explicit"
    assert explicit["selectionRequired"] is True
    assert agents_list_result(SOLE, [])["ownership"] == "sole"
