"""Agent facts derived from the validated config, in one place (config → agent domain)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.agents.ids import DEFAULT_AGENT_ID
from gateway.agents.routing import AgentProfile, Binding, Roster, fallback_owner
from gateway.agents.runner import QueueSettings
from gateway.agents.workspace import resolve_workspace_dir
from gateway.config.models import ModelInput, OpenClawConfig

DEFAULT_MODEL = "openai/gpt-6-astra"


@dataclass(frozen=True)
class ModelChain:
    primary: str
    fallbacks: tuple[str, ...]

    @property
    def candidates(self) -> tuple[str, ...]:
        return (self.primary, *[m for m in self.fallbacks if m != self.primary])


def _chain(value: ModelInput | None, inherited: ModelChain | None) -> ModelChain | None:
    if value is None:
        return inherited
    if isinstance(value, str):
        # A plain string on an agent is a strict primary: no fallbacks (config.md §3.3).
        return ModelChain(value, ())
    primary = value.primary or (inherited.primary if inherited else DEFAULT_MODEL)
    return ModelChain(primary, tuple(value.fallbacks or ()))


def defaults_chain(config: OpenClawConfig) -> ModelChain:
    model = config.agents.defaults.model
    if isinstance(model, str):
        # On defaults a string is just the primary; there is nothing to inherit.
        return ModelChain(model, ())
    chain = _chain(model, None)
    return chain or ModelChain(DEFAULT_MODEL, ())


def model_chain(config: OpenClawConfig, agent_id: str) -> ModelChain:
    """The agent's candidates, `provider/model` refs with aliases resolved."""
    base = defaults_chain(config)
    entry = config.agents.entries.get(agent_id)
    chain = base if entry is None or entry.model is None else (_chain(entry.model, base) or base)
    aliases = model_aliases(config)
    if not aliases:
        return chain
    return ModelChain(
        resolve_model_ref(chain.primary, aliases),
        tuple(resolve_model_ref(ref, aliases) for ref in chain.fallbacks),
    )


def model_aliases(config: OpenClawConfig) -> dict[str, str]:
    """Lower-cased alias → `provider/model`, from `agents.defaults.models[ref].alias`."""
    return {
        entry.alias.strip().lower(): ref
        for ref, entry in config.agents.defaults.models.items()
        if entry.alias and entry.alias.strip()
    }


def resolve_model_ref(ref: str, aliases: dict[str, str]) -> str:
    """A bare name that is an alias (case-insensitive) becomes its `provider/model`."""
    if "/" in ref:
        return ref
    return aliases.get(ref.strip().lower(), ref)


def roster(config: OpenClawConfig) -> Roster:
    entries = config.agents.entries
    ids = tuple(entries) or (DEFAULT_AGENT_ID,)
    default = next((aid for aid, e in entries.items() if e.default), None)
    return Roster(
        agent_ids=ids,
        legacy_default_id=default,
        explicit_ownership=config.agents.ownership == "explicit",
    )


def default_agent_id(config: OpenClawConfig) -> str:
    r = roster(config)
    owner = fallback_owner(r)
    return owner.agent_id if owner else r.agent_ids[0]


def workspace_dir(config: OpenClawConfig, agent_id: str, state_dir: Path) -> Path:
    entry = config.agents.entries.get(agent_id)
    return resolve_workspace_dir(
        agent_id,
        state_dir=state_dir,
        agent_workspace=entry.workspace if entry else None,
        defaults_workspace=config.agents.defaults.workspace,
        is_default_agent=agent_id == default_agent_id(config),
    )


def profiles(config: OpenClawConfig, state_dir: Path) -> list[AgentProfile]:
    out = []
    for agent_id in roster(config).agent_ids:
        entry = config.agents.entries.get(agent_id)
        chain = model_chain(config, agent_id)
        identity = {}
        if entry and entry.identity:
            identity = {
                k: v
                for k, v in entry.identity.model_dump(exclude_none=True).items()
                if isinstance(v, str)
            }
        out.append(
            AgentProfile(
                agent_id=agent_id,
                workspace=str(workspace_dir(config, agent_id, state_dir)),
                name=entry.name if entry else None,
                model_primary=chain.primary,
                model_fallbacks=chain.fallbacks,
                identity=identity,
            )
        )
    return out


def bindings(config: OpenClawConfig) -> list[Binding]:
    out = []
    for b in config.bindings:
        if b.type != "route":
            continue
        match = b.match
        out.append(
            Binding(
                agent_id=b.agent_id,
                channel=match.channel,
                account_id=match.account_id,
                peer_kind=match.peer.kind if match.peer else None,
                peer_id=match.peer.id if match.peer else None,
                guild_id=match.guild_id,
                team_id=match.team_id,
                roles=tuple(match.roles or ()),
                session_dm_scope=b.session.dm_scope if b.session else None,
                session_group_scope=b.session.group_scope if b.session else None,
            )
        )
    return out


def queue_settings(config: OpenClawConfig) -> QueueSettings:
    q = config.messages.queue
    return QueueSettings(
        mode=q.mode,
        by_channel=dict(q.by_channel),
        cap=q.cap,
        drop=q.drop,
        **({"debounce_ms": q.debounce_ms} if q.debounce_ms is not None else {}),
    )
