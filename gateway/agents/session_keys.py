"""Session keys (agents.md §3 as corrected by channels.md §3.2).

Keys are lowercase, colon-separated and always start with `agent:<agentId>:`.

| Conversation                          | Key                                                        |
|---------------------------------------|------------------------------------------------------------|
| DM, dmScope main / Control UI / CLI   | `agent:<id>:main`                                          |
| DM, per-peer                          | `agent:<id>:direct:<peer>`                                 |
| DM, per-channel-peer                  | `agent:<id>:<channel>:direct:<peer>`                       |
| DM, per-account-channel-peer          | `agent:<id>:<channel>:<account>:direct:<peer>`             |
| group (groupScope per-group)          | `agent:<id>:<channel>:group:<groupId>`                     |
| channel / room                        | `agent:<id>:<channel>:channel:<channelId>`                 |
| Telegram forum topic                  | `agent:<id>:telegram:group:<chatId>:topic:<topicId>`       |
| thread (Slack-style)                  | base key + `:thread:<threadId>`                            |
| any group/channel with groupScope main| `agent:<id>:main`                                          |

Discord threads do **not** use the `:thread:` suffix: the adapter passes the thread's own
channel id as `peer_id` with kind `channel` (channels.md §3.2).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from gateway.agents.ids import MAIN_KEY, normalize_account_id, normalize_agent_id
from gateway.agents.routing import DmScope, GroupScope, normalize_peer_kind

_PEER_KINDS = ("direct", "group", "channel")


def _token(value: str | None) -> str:
    return (value or "").strip().lower()


def main_session_key(agent_id: str) -> str:
    """`agent:<id>:main` — shared DM / Control UI conversation of an agent."""
    return f"agent:{normalize_agent_id(agent_id)}:{MAIN_KEY}"


def resolve_linked_peer(
    identity_links: Mapping[str, Sequence[str]], channel: str, peer_id: str
) -> str | None:
    """Canonical name whose `identityLinks` entry lists `<channel>:<peerId>` (or bare id)."""
    raw = _token(peer_id)
    if not raw:
        return None
    candidates = {raw}
    if _token(channel):
        candidates.add(f"{_token(channel)}:{raw}")
    for canonical, ids in identity_links.items():
        name = canonical.strip()
        if not name or isinstance(ids, str):
            continue
        if any(_token(entry) in candidates for entry in ids):
            return name
    return None


def build_session_key(
    *,
    agent_id: str,
    channel: str,
    peer_kind: str | None = "direct",
    peer_id: str | None = None,
    account_id: str | None = None,
    dm_scope: DmScope = "main",
    group_scope: GroupScope = "per-group",
    identity_links: Mapping[str, Sequence[str]] | None = None,
    topic_id: str | None = None,
    thread_id: str | None = None,
) -> str:
    """The one place session keys are built (see the module table)."""
    agent = normalize_agent_id(agent_id)
    kind = normalize_peer_kind(peer_kind) or "direct"
    chan = _token(channel) or "unknown"
    if kind == "direct":
        peer = (peer_id or "").strip()
        if dm_scope != "main" and identity_links:
            peer = resolve_linked_peer(identity_links, chan, peer) or peer
        peer = peer.lower()
        if not peer or dm_scope == "main":
            return main_session_key(agent)
        if dm_scope == "per-peer":
            return f"agent:{agent}:direct:{peer}"
        if dm_scope == "per-channel-peer":
            return f"agent:{agent}:{chan}:direct:{peer}"
        return f"agent:{agent}:{chan}:{normalize_account_id(account_id)}:direct:{peer}"
    if group_scope == "main":
        return main_session_key(agent)
    key = f"agent:{agent}:{chan}:{kind}:{_token(peer_id) or 'unknown'}"
    if _token(topic_id):
        key += f":topic:{_token(topic_id)}"
    if _token(thread_id):
        key += f":thread:{_token(thread_id)}"
    return key


@dataclass(frozen=True)
class ParsedSessionKey:
    """Structure of an `agent:` key; `kind` is main | direct | group | channel | other."""

    key: str
    agent_id: str
    rest: str
    kind: str
    channel: str | None = None
    account_id: str | None = None
    peer_id: str | None = None
    topic_id: str | None = None
    thread_id: str | None = None

    @property
    def is_main(self) -> bool:
        return self.kind == "main"

    @property
    def is_direct(self) -> bool:
        return self.kind == "direct"

    @property
    def is_channel_scoped_dm(self) -> bool:
        """DM windows (`dmHistoryLimit`) apply to these, never to the shared main session."""
        return self.kind == "direct" and self.channel is not None

    @property
    def chat_type(self) -> str | None:
        return self.kind if self.kind in _PEER_KINDS else None


def _split_suffixes(parts: list[str]) -> tuple[list[str], str | None, str | None]:
    topic = thread = None
    if len(parts) >= 3 and parts[-2] == "thread":
        thread = parts[-1]
        parts = parts[:-2]
    if len(parts) >= 3 and parts[-2] == "topic":
        topic = parts[-1]
        parts = parts[:-2]
    return parts, topic, thread


def parse_session_key(key: str | None) -> ParsedSessionKey | None:
    """Inverse of `build_session_key`; None for keys not shaped `agent:<id>:<rest>`."""
    raw = _token(key)
    parts = raw.split(":")
    if len(parts) < 3 or parts[0] != "agent" or not parts[1] or not all(parts[2:]):
        return None
    agent, rest = parts[1], ":".join(parts[2:])
    body = parts[2:]
    base = {"key": raw, "agent_id": agent, "rest": rest}
    if body == [MAIN_KEY]:
        return ParsedSessionKey(**base, kind="main")
    if len(body) == 2 and body[0] == "direct":
        return ParsedSessionKey(**base, kind="direct", peer_id=body[1])
    if len(body) >= 3 and body[1] == "direct":
        return ParsedSessionKey(**base, kind="direct", channel=body[0], peer_id=":".join(body[2:]))
    if len(body) >= 4 and body[2] == "direct":
        return ParsedSessionKey(
            **base,
            kind="direct",
            channel=body[0],
            account_id=body[1],
            peer_id=":".join(body[3:]),
        )
    if len(body) >= 3 and body[1] in ("group", "channel"):
        rest_parts, topic, thread = _split_suffixes(body)
        if len(rest_parts) >= 3:
            return ParsedSessionKey(
                **base,
                kind=body[1],
                channel=body[0],
                peer_id=":".join(rest_parts[2:]),
                topic_id=topic,
                thread_id=thread,
            )
    return ParsedSessionKey(**base, kind="other")


def agent_id_from_session_key(key: str, default: str = "main") -> str:
    """Owning agent of a key; non-agent keys (`global`, `cron:…`) fall back to `default`."""
    parsed = parse_session_key(key)
    return parsed.agent_id if parsed else normalize_agent_id(default)


def may_update_last_route(*, session_key: str, allow_from: Iterable[str], sender_id: str) -> bool:
    """Shared main DM session guard (agents.md §3).

    With `dmScope: main` and exactly one concrete `allowFrom` entry, DMs from anyone else
    still run but must not move the main session's reply target.
    """
    parsed = parse_session_key(session_key)
    if parsed is None or not parsed.is_main:
        return True
    concrete = [entry.strip() for entry in allow_from if entry.strip() and entry.strip() != "*"]
    if len(concrete) != 1:
        return True
    owner = concrete[0].lower()
    sender = sender_id.strip().lower()
    # allowFrom entries may carry a channel prefix (`telegram:123`, `discord:456`).
    return sender == owner or owner.endswith(f":{sender}")


def canonical_session_key(key: str | None, default_agent_id: str) -> str:
    """Store key for a client-supplied key: `main`/empty → the default agent's main key,
    `agent:…` keys are lowercased, anything else is scoped under the default agent."""
    raw = (key or "").strip().lower()
    if not raw or raw == MAIN_KEY:
        return main_session_key(default_agent_id)
    if parse_session_key(raw) is not None or raw.startswith("agent:"):
        return raw
    return f"agent:{normalize_agent_id(default_agent_id)}:{raw}"
