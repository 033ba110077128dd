"""Which tools a turn may use (tools.md §2).

The layers of §2.4 are filters applied in order; a later layer can only remove tools:
profile → global allow/deny → agent allow/deny → room policy → sender policy → owner-only.
Then clawgate's default of §2.8: strangers lose `group:fs`, `group:runtime` (and
`group:memory`) unless the room or sender policy selected for this turn grants them by name,
group or glob. Global/agent lists and the profile never count as such a grant.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway.agents.tools.registry import Requester, Tool
from gateway.config.models import (
    AgentToolsConfig,
    OpenClawConfig,
    ToolPolicy,
    ToolsBySender,
)

# --- the reference's catalogue (names only; clawgate implements a subset) -------------------

GROUPS: dict[str, frozenset[str]] = {
    "group:fs": frozenset({"ls", "read", "write", "edit", "apply_patch"}),
    "group:runtime": frozenset({"exec", "process", "code_execution", "secrets"}),
    "group:web": frozenset({"web_search", "web_fetch", "x_search"}),
    "group:memory": frozenset({"memory_search", "memory_get"}),
    "group:messaging": frozenset({"message"}),
    "group:automation": frozenset(
        {"heartbeat_respond", "automations", "gateway", "plugins", "openclaw"}
    ),
    "group:sessions": frozenset(
        {
            "sessions",
            "sessions_list",
            "sessions_history",
            "sessions_search",
            "conversations_list",
            "conversations_send",
            "conversations_turn",
            "sessions_send",
            "sessions_spawn",
            "github_identity_status",
            "github_publish",
            "agents_wait",
            "sessions_yield",
            "subagents",
            "session_status",
            "suggest_task",
            "dismiss_task",
        }
    ),
    "group:ui": frozenset(
        {"browser", "screen", "theme", "dashboard", "terminal", "portal", "canvas", "show_widget"}
    ),
    "group:nodes": frozenset({"nodes", "computer", "mobile_ui"}),
    "group:agents": frozenset(
        {
            "agents_list",
            "get_goal",
            "create_goal",
            "update_goal",
            "progress_card",
            "ask_user",
            "skill_workshop",
        }
    ),
    "group:media": frozenset(
        {"view_image", "image_generate", "music_generate", "video_generate", "tts", "pdf"}
    ),
    "group:plugins": frozenset(),
}
_CORE_CODING = frozenset(
    {"read", "write", "edit", "apply_patch", "ls", "exec", "process", "canvas"}
)
GROUPS["group:openclaw"] = frozenset().union(*GROUPS.values()) - _CORE_CODING

PROFILES: dict[str, frozenset[str] | None] = {
    "minimal": frozenset({"session_status", "gateway"}),
    "coding": frozenset(
        {
            "ls",
            "read",
            "write",
            "edit",
            "apply_patch",
            "exec",
            "process",
            "code_execution",
            "secrets",
            "web_search",
            "web_fetch",
            "x_search",
            "memory_search",
            "memory_get",
            "sessions",
            "sessions_list",
            "sessions_history",
            "sessions_search",
            "conversations_list",
            "conversations_send",
            "conversations_turn",
            "sessions_send",
            "sessions_spawn",
            "github_identity_status",
            "github_publish",
            "agents_wait",
            "sessions_yield",
            "subagents",
            "session_status",
            "suggest_task",
            "dismiss_task",
            "screen",
            "theme",
            "dashboard",
            "terminal",
            "portal",
            "automations",
            "gateway",
            "plugins",
            "get_goal",
            "create_goal",
            "update_goal",
            "progress_card",
            "ask_user",
            "skill_workshop",
            "view_image",
            "image_generate",
            "music_generate",
            "video_generate",
            "bundle-mcp",
        }
    ),
    "messaging": frozenset(
        {
            "secrets",
            "sessions",
            "sessions_list",
            "sessions_history",
            "sessions_search",
            "conversations_list",
            "conversations_send",
            "conversations_turn",
            "sessions_send",
            "sessions_spawn",
            "sessions_yield",
            "subagents",
            "session_status",
            "theme",
            "message",
            "gateway",
            "ask_user",
            "bundle-mcp",
        }
    ),
    "full": None,  # everything
}

ALIASES = {"bash": "exec", "apply-patch": "apply_patch", "cron": "automations"}

OWNER_ONLY = frozenset(
    {
        "automations",
        "gateway",
        "plugins",
        "sessions",
        "screen",
        "terminal",
        "portal",
        "conversations_list",
        "conversations_send",
        "conversations_turn",
        "nodes",
        "computer",
        "mobile_ui",
        "openclaw",
    }
)

# Removed for strangers unless a room/sender policy grants them (§2.8; memory per its advice).
STRANGER_GROUPS = frozenset({"group:fs", "group:runtime", "group:memory"})

REFERENCE_TOOLS = frozenset().union(
    *GROUPS.values(), *(p for p in PROFILES.values() if p is not None)
)


# --- matching ------------------------------------------------------------------------------


def normalize(entry: str) -> str:
    name = entry.strip().lower()
    return ALIASES.get(name, name)


def expand(entries: Iterable[str] | None) -> frozenset[str]:
    """Names and globs of a list, with groups replaced by their members."""
    out: set[str] = set()
    for raw in entries or ():
        name = normalize(raw)
        if not name:
            continue
        out |= GROUPS.get(name, frozenset({name}))
    return frozenset(out)


def matches(name: str, patterns: frozenset[str]) -> bool:
    if name in patterns:
        return True
    return any(fnmatch.fnmatchcase(name, p) for p in patterns if any(c in p for c in "*?["))


@dataclass(frozen=True)
class Filter:
    """One layer: `allow` None means "everything not denied"."""

    allow: frozenset[str] | None
    deny: frozenset[str]
    layer: str

    def permits(self, name: str) -> bool:
        if matches(name, self.deny):
            return False
        if self.allow is None:
            return True
        # Reference quirk (§1.5): allowing `write` also allows `apply_patch`.
        return matches(name, self.allow) or (name == "apply_patch" and matches("write", self.allow))


def _policy_filter(policy: ToolPolicy | AgentToolsConfig | None, layer: str) -> Filter | None:
    """A layer's allow/deny; `alsoAllow` alone restricts nothing (§2.3)."""
    if policy is None:
        return None
    allow = expand(policy.allow) if policy.allow else None
    deny = expand(policy.deny)
    if allow is None and not deny:
        return None
    return Filter(allow, deny, layer)


# --- room and sender policies (§2.5) --------------------------------------------------------


def sender_keys(requester: Requester) -> list[str]:
    """Candidate `toolsBySender` keys in matching order (lower-case)."""
    keys: list[str] = []
    sid = requester.sender_id
    if sid:
        if requester.channel:
            keys.append(f"channel:{requester.channel}:{sid}".lower())
        keys.append(f"id:{sid}".lower())
    if requester.sender_e164:
        keys.append(f"e164:{requester.sender_e164}".lower())
    if requester.sender_username:
        keys.append(f"username:{requester.sender_username.lstrip('@')}".lower())
    if requester.sender_name:
        keys.append(f"name:{requester.sender_name}".lower())
    keys.append("*")
    return keys


def match_sender(by_sender: ToolsBySender | None, requester: Requester) -> ToolPolicy | None:
    """The first `toolsBySender` entry matching this sender, or None."""
    if not by_sender:
        return None
    table: dict[str, ToolPolicy] = {}
    for key, policy in by_sender.items():
        k = key.strip().lower()
        if k.startswith("@"):
            k = "username:" + k[1:]
        elif k != "*" and not k.startswith(("channel:", "id:", "e164:", "username:", "name:")):
            k = "id:" + k  # legacy unprefixed key
        if k.startswith("username:@"):
            k = "username:" + k[len("username:@") :]
        table.setdefault(k, policy)
    for key in sender_keys(requester):
        if key in table:
            return table[key]
    return None


_Scope = tuple[ToolPolicy | None, ToolsBySender | None]


def _room_scopes(config: OpenClawConfig, requester: Requester) -> list[_Scope]:
    """Policy scopes of the requester's room, most specific first."""
    channels = config.channels
    scopes: list[_Scope] = []
    chat = requester.chat_id
    if requester.channel == "telegram" and channels.telegram is not None:
        tg = channels.telegram
        if requester.chat_type == "direct":
            # An exact DM entry replaces the "*" entry as a whole.
            direct = tg.direct.get(chat or "") if chat else None
            direct = direct or tg.direct.get("*")
            if direct is not None:
                scopes.append((direct.tools, direct.tools_by_sender))
        elif requester.chat_type in ("group", "channel"):
            for key in (chat, "*"):
                group = tg.groups.get(key) if key else None
                if group is not None:
                    scopes.append((group.tools, group.tools_by_sender))
    elif requester.channel == "discord" and channels.discord is not None:
        dc = channels.discord
        if requester.guild_id:
            for gkey in (requester.guild_id, "*"):
                guild = dc.guilds.get(gkey)
                if guild is None:
                    continue
                for ckey in (chat, "*"):
                    entry = guild.channels.get(ckey) if ckey else None
                    if entry is not None:
                        scopes.append((entry.tools, entry.tools_by_sender))
                scopes.append((guild.tools, guild.tools_by_sender))
    return scopes


def room_policy(config: OpenClawConfig, requester: Requester) -> ToolPolicy | None:
    """The room policy for this turn: per scope a sender match, else its `tools` (§2.5)."""
    for tools, by_sender in _room_scopes(config, requester):
        picked = match_sender(by_sender, requester)
        if picked is None:
            picked = tools
        if picked is not None:
            return picked
    return None


def sender_policy(
    config: OpenClawConfig, agent_tools: AgentToolsConfig | None, requester: Requester
) -> ToolPolicy | None:
    if agent_tools is not None and agent_tools.tools_by_sender:
        found = match_sender(agent_tools.tools_by_sender, requester)
        if found is not None:
            return found  # an agent match wins, even when it is {}
    return match_sender(config.tools.tools_by_sender, requester)


# --- the pipeline ----------------------------------------------------------------------------


def agent_tools_config(config: OpenClawConfig, agent_id: str) -> AgentToolsConfig | None:
    entry = config.agents.entries.get(agent_id)
    return entry.tools if entry is not None else None


def layers(config: OpenClawConfig, agent_id: str, requester: Requester) -> list[Filter]:
    """The §2.4 filters for this turn, in order."""
    agent_tools = agent_tools_config(config, agent_id)
    global_tools = config.tools
    out: list[Filter] = []

    profile = (agent_tools.profile if agent_tools else None) or global_tools.profile
    base = PROFILES.get(profile) if profile else None
    if base is not None:
        extra = (agent_tools.also_allow if agent_tools else None) or global_tools.also_allow
        out.append(Filter(base | expand(extra), frozenset(), f"profile {profile}"))

    for layer, policy in (
        ("tools", global_tools),
        (f"agents.entries.{agent_id}.tools", agent_tools),
        ("room", room_policy(config, requester)),
        ("toolsBySender", sender_policy(config, agent_tools, requester)),
    ):
        found = _policy_filter(policy, layer)
        if found is not None:
            out.append(found)
    return out


def stranger_grants(config: OpenClawConfig, agent_id: str, requester: Requester) -> frozenset[str]:
    """Names/globs a room or sender policy grants explicitly (allow or alsoAllow, §2.8)."""
    grants: set[str] = set()
    for policy in (
        room_policy(config, requester),
        sender_policy(config, agent_tools_config(config, agent_id), requester),
    ):
        if policy is not None:
            grants |= expand(policy.allow) | expand(policy.also_allow)
    return frozenset(grants)


def _enabled_by_config(config: OpenClawConfig, agent_id: str, name: str) -> bool:
    """Tool-specific switches (`tools.exec.applyPatch.enabled`)."""
    if name == "apply_patch":
        agent_tools = agent_tools_config(config, agent_id)
        for exec_cfg in (agent_tools.exec if agent_tools else None, config.tools.exec):
            if exec_cfg is not None and exec_cfg.apply_patch is not None:
                return exec_cfg.apply_patch.enabled
    return True


def allowed_tools(
    config: OpenClawConfig,
    agent_id: str,
    requester: Requester,
    registry: Mapping[str, Tool],
) -> dict[str, Tool]:
    """The tools this requester may use in this agent's turn, by name."""
    filters = layers(config, agent_id, requester)
    grants = frozenset() if requester.owner else stranger_grants(config, agent_id, requester)
    out: dict[str, Tool] = {}
    for name, t in registry.items():
        if not _enabled_by_config(config, agent_id, name):
            continue
        if not all(f.permits(name) for f in filters):
            continue
        if not requester.owner:
            if t.owner_only or name in OWNER_ONLY:
                continue
            if t.group in STRANGER_GROUPS and not matches(name, grants):
                continue

        if t.unavailable_reason(config) is not None:  # e.g. web_search without a key
            continue
        out[name] = t
    return out


def unknown_allow_entries(config: OpenClawConfig, agent_id: str) -> list[str]:
    """Explicit allow entries naming nothing in the reference catalogue (typos, plugins)."""
    agent_tools = agent_tools_config(config, agent_id)
    bad: list[str] = []
    for policy in (config.tools, agent_tools):
        if policy is None or not policy.allow:
            continue
        for entry in policy.allow:
            names = expand([entry])
            if not any(
                n in REFERENCE_TOOLS or any(fnmatch.fnmatchcase(t, n) for t in REFERENCE_TOOLS)
                for n in names
            ):
                bad.append(entry)
    return bad
