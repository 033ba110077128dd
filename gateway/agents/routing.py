"""Bindings → agent id (agents.md §2, config.md §3.6).

A pure function over frozen dataclasses: the gateway converts its config models into
`Binding`/`Roster` once and calls `resolve_route` per inbound message.

Tier order (first tier with any match wins; inside a tier the first binding in config
order wins; every field present in a binding must match):

1. exact peer  2. parent peer (thread → parent)  3. peer id `*` for the peer kind
4. guild + roles  5. guild  6. team  7. account (omitted = default account)
8. account `*` (channel-wide)  9. fallback owner
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.agents.ids import DEFAULT_AGENT_ID, MAIN_KEY, normalize_account_id, normalize_agent_id

DmScope = Literal["main", "per-peer", "per-channel-peer", "per-account-channel-peer"]
GroupScope = Literal["per-group", "main"]
MatchedBy = Literal[
    "binding.peer",
    "binding.peer.parent",
    "binding.peer.wildcard",
    "binding.guild+roles",
    "binding.guild",
    "binding.team",
    "binding.account",
    "binding.channel",
    "requested",
    "sole",
    "default",
    "implicit",
]

WILDCARD = "*"


def normalize_peer_kind(kind: str | None) -> str | None:
    """`dm` is the legacy alias of `direct`; unknown kinds pass through lowercased."""
    if kind is None:
        return None
    text = kind.strip().lower()
    if not text:
        return None
    return "direct" if text == "dm" else text


def _peer_kinds_match(binding_kind: str, peer_kind: str) -> bool:
    # The reference treats `group` and `channel` as the same room-ish kind when matching.
    if binding_kind == peer_kind:
        return True
    return {binding_kind, peer_kind} == {"group", "channel"}


def _clean(value: str | None) -> str:
    return (value or "").strip()


@dataclass(frozen=True)
class Binding:
    """One `bindings[]` entry of type `route` (fields mirror `match.*` and `session.*`)."""

    agent_id: str
    channel: str
    account_id: str | None = None  # None = the channel's default account only; "*" = any
    peer_kind: str | None = None  # direct | group | channel (dm accepted)
    peer_id: str | None = None  # "*" = any peer of that kind
    guild_id: str | None = None
    team_id: str | None = None
    roles: tuple[str, ...] = ()
    session_dm_scope: DmScope | None = None
    session_group_scope: GroupScope | None = None

    @property
    def has_peer(self) -> bool:
        return bool(normalize_peer_kind(self.peer_kind)) and bool(_clean(self.peer_id))

    @property
    def has_invalid_peer(self) -> bool:
        """Half a peer constraint (kind without id or the reverse) never matches."""
        return bool(normalize_peer_kind(self.peer_kind)) != bool(_clean(self.peer_id))

    @property
    def has_wildcard_peer(self) -> bool:
        return self.has_peer and _clean(self.peer_id) == WILDCARD


@dataclass(frozen=True)
class RouteInput:
    """What an inbound message looks like to routing."""

    channel: str
    account_id: str | None = None
    is_default_account: bool = True
    peer_kind: str | None = None
    peer_id: str | None = None
    parent_peer_kind: str | None = None  # thread → parent channel/group
    parent_peer_id: str | None = None
    guild_id: str | None = None
    team_id: str | None = None
    member_role_ids: tuple[str, ...] = ()
    requested_agent_id: str | None = None  # caller-supplied owner (e.g. Control UI pick)


@dataclass(frozen=True)
class Roster:
    """The configured agents, already normalised and validated (config.md §3.3)."""

    agent_ids: tuple[str, ...] = ()
    legacy_default_id: str | None = None  # the agent with `default: true`, if any
    explicit_ownership: bool = False  # `agents.ownership: "explicit"`

    def knows(self, agent_id: str) -> bool:
        return agent_id in self.agent_ids


@dataclass(frozen=True)
class Route:
    """A resolved owner; `binding` is the matched binding (None for fallbacks)."""

    agent_id: str
    matched_by: MatchedBy
    binding: Binding | None = None

    def dm_scope(self, default: DmScope) -> DmScope:
        """Binding `session.dmScope` overrides `session.dmScope` for matched peers."""
        if self.binding and self.binding.session_dm_scope:
            return self.binding.session_dm_scope
        return default

    def group_scope(self, default: GroupScope) -> GroupScope:
        if self.binding and self.binding.session_group_scope:
            return self.binding.session_group_scope
        return default


@dataclass(frozen=True)
class NoOwner:
    """`ownership: explicit` and nothing matched: fail closed (message not answered)."""

    channel: str
    peer: str
    code: str = "AGENT_SELECTION_REQUIRED"

    @property
    def log_line(self) -> str:
        return (
            f"[routing] {self.code}: no binding owns channel={self.channel} peer={self.peer}; "
            "message dropped (agents.ownership=explicit)"
        )


def _account_matches(binding: Binding, inp: RouteInput) -> bool:
    pattern = _clean(binding.account_id)
    if not pattern:
        return inp.is_default_account
    if pattern == WILDCARD:
        return True
    return normalize_account_id(pattern) == normalize_account_id(inp.account_id)


def _peer_matches(binding: Binding, kind: str | None, peer_id: str | None) -> bool:
    b_kind = normalize_peer_kind(binding.peer_kind)
    p_kind = normalize_peer_kind(kind)
    if not b_kind or not p_kind or not _clean(peer_id):
        return False
    if not _peer_kinds_match(b_kind, p_kind):
        return False
    b_id = _clean(binding.peer_id)
    return b_id == WILDCARD or b_id == _clean(peer_id)


def _scope_matches(binding: Binding, inp: RouteInput) -> bool:
    """Guild/team/roles constraints (peer is checked per tier)."""
    if _clean(binding.guild_id) and _clean(binding.guild_id) != _clean(inp.guild_id):
        return False
    if _clean(binding.team_id) and _clean(binding.team_id) != _clean(inp.team_id):
        return False
    if binding.roles and not set(binding.roles) & set(inp.member_role_ids):
        return False
    return True


def _no_peer_guild_team(b: Binding) -> bool:
    return not b.has_peer and not _clean(b.guild_id) and not _clean(b.team_id) and not b.roles


_Tier = tuple[MatchedBy, Callable[[Binding, RouteInput], bool]]

_TIERS: tuple[_Tier, ...] = (
    (
        "binding.peer",
        lambda b, i: (
            b.has_peer and not b.has_wildcard_peer and _peer_matches(b, i.peer_kind, i.peer_id)
        ),
    ),
    (
        "binding.peer.parent",
        lambda b, i: (
            b.has_peer
            and not b.has_wildcard_peer
            and _peer_matches(b, i.parent_peer_kind, i.parent_peer_id)
        ),
    ),
    (
        "binding.peer.wildcard",
        lambda b, i: b.has_wildcard_peer and _peer_matches(b, i.peer_kind, i.peer_id),
    ),
    (
        "binding.guild+roles",
        lambda b, i: not b.has_peer and bool(_clean(b.guild_id)) and bool(b.roles),
    ),
    (
        "binding.guild",
        lambda b, i: not b.has_peer and bool(_clean(b.guild_id)) and not b.roles,
    ),
    (
        "binding.team",
        lambda b, i: not b.has_peer and not _clean(b.guild_id) and bool(_clean(b.team_id)),
    ),
    (
        "binding.account",
        lambda b, i: _no_peer_guild_team(b) and _clean(b.account_id) != WILDCARD,
    ),
    (
        "binding.channel",
        lambda b, i: _no_peer_guild_team(b) and _clean(b.account_id) == WILDCARD,
    ),
)


def fallback_owner(roster: Roster, requested_agent_id: str | None = None) -> Route | None:
    """Tier 9: requested → sole agent → (explicit: none) → legacy default → `main`."""
    if requested_agent_id and requested_agent_id.strip():
        requested = normalize_agent_id(requested_agent_id)
        if not roster.agent_ids or roster.knows(requested):
            return Route(requested, "requested")
    if len(roster.agent_ids) == 1:
        return Route(roster.agent_ids[0], "sole")
    if roster.explicit_ownership:
        return None
    if roster.legacy_default_id:
        return Route(normalize_agent_id(roster.legacy_default_id), "default")
    if roster.agent_ids:
        # Validation rejects this roster shape; stay deterministic anyway (reference: first).
        return Route(roster.agent_ids[0], "default")
    return Route(DEFAULT_AGENT_ID, "implicit")


def resolve_route(bindings: Sequence[Binding], roster: Roster, inp: RouteInput) -> Route | NoOwner:
    """Pick the owning agent for one inbound message."""
    channel = _clean(inp.channel).lower()
    candidates = [
        b
        for b in bindings
        if _clean(b.channel).lower() == channel
        and not b.has_invalid_peer
        and _account_matches(b, inp)
    ]
    for matched_by, selects in _TIERS:
        for binding in candidates:
            if not selects(binding, inp) or not _scope_matches(binding, inp):
                continue
            return Route(normalize_agent_id(binding.agent_id), matched_by, binding)
    owner = fallback_owner(roster, inp.requested_agent_id)
    if owner is not None:
        return owner
    peer = f"{normalize_peer_kind(inp.peer_kind) or '-'}:{_clean(inp.peer_id) or '-'}"
    return NoOwner(channel=channel or "-", peer=peer)


# --- agents.list -------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentProfile:
    """Display facts for one configured agent (protocol `agents.list`)."""

    agent_id: str
    workspace: str
    name: str | None = None
    model_primary: str | None = None
    model_fallbacks: tuple[str, ...] | None = None
    identity: dict[str, str] = field(default_factory=dict)


def agents_list_result(
    roster: Roster, profiles: Sequence[AgentProfile], scope: str = "per-sender"
) -> dict[str, Any]:
    """`agents.list` result: `{defaultId, mainKey, scope, ownership, agents:[...]}`."""
    owner = fallback_owner(roster)
    if roster.explicit_ownership and len(roster.agent_ids) > 1:
        ownership = "explicit"
    elif len(roster.agent_ids) <= 1:
        ownership = "sole"
    else:
        ownership = "legacy"
    default_id = owner.agent_id if owner else (roster.agent_ids or (DEFAULT_AGENT_ID,))[0]
    agents: list[dict[str, Any]] = []
    for profile in profiles:
        entry: dict[str, Any] = {"id": profile.agent_id, "workspace": profile.workspace}
        if profile.name:
            entry["name"] = profile.name
        if profile.identity:
            entry["identity"] = {k: v for k, v in profile.identity.items() if v}
        if profile.model_primary:
            model: dict[str, Any] = {"primary": profile.model_primary}
            if profile.model_fallbacks is not None:
                model["fallbacks"] = list(profile.model_fallbacks)
            entry["model"] = model
        agents.append(entry)
    result: dict[str, Any] = {
        "defaultId": default_id,
        "mainKey": MAIN_KEY,
        "scope": scope,
        "ownership": ownership,
        "agents": agents,
    }
    if owner is None:
        result["selectionRequired"] = True
    return result
