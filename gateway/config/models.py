"""Pydantic models of the configuration subset we implement (OpenClaw's keys).

Modelled sections are strict (unknown keys are errors, as in the reference); keys the reference
accepts but we do not act on yet are declared as `Later` so a reference config still loads.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator
from pydantic.alias_generators import to_camel

# Accepted for compatibility with reference configs, not acted on (yet).
Later = Any


class Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=False
    )


class SecretRef(Strict):
    """Where a secret lives instead of inline text; only `source: "env"` is resolved for now."""

    source: Literal["env", "file", "exec", "store"]
    provider: str = "default"
    id: str

    @field_validator("id")
    @classmethod
    def _env_id(cls, value: str) -> str:
        if not value:
            raise ValueError("id must not be empty")
        return value


SecretInput = str | SecretRef
DmPolicy = Literal["pairing", "allowlist", "open", "disabled"]
GroupPolicy = Literal["open", "allowlist", "disabled"]
ReplyToMode = Literal["off", "first", "all", "batched"]
IdList = list[str | int]


# --- gateway -------------------------------------------------------------------------------


class RateLimit(Strict):
    max_attempts: int = Field(10, ge=1)
    window_ms: int = Field(60_000, ge=1)
    lockout_ms: int = Field(300_000, ge=0)
    exempt_loopback: bool = True


class GatewayAuth(Strict):
    mode: Literal["none", "token", "password", "trusted-proxy"] | None = None
    token: SecretInput | None = None
    password: SecretInput | None = None
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    allow_tailscale: Later = None
    trusted_proxy: Later = None
    identity_scopes: Later = None


class ControlUi(Strict):
    enabled: bool = True
    base_path: str = ""
    allowed_origins: list[str] = Field(default_factory=list)
    dangerously_allow_host_header_origin_fallback: Later = None
    dangerously_disable_device_auth: Later = None
    allow_insecure_auth: Later = None
    root: Later = None
    environment: Later = None

    @field_validator("base_path")
    @classmethod
    def _base_path(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith("/"):
            raise ValueError("must start with '/' (for example \"/openclaw\")")
        if ".." in value.split("/"):
            raise ValueError("must not contain '..'")
        return value


class Reload(Strict):
    mode: Literal["off", "hybrid", "hot", "restart"] = "hybrid"
    debounce_ms: Later = None


class GatewayConfig(Strict):
    mode: Literal["local", "remote"] | None = None
    port: int | None = Field(None, ge=1, le=65535)
    bind: Literal["loopback", "lan", "tailnet", "auto", "custom"] | None = None
    custom_bind_host: str | None = None
    auth: GatewayAuth = Field(default_factory=GatewayAuth)
    control_ui: ControlUi = Field(default_factory=ControlUi)
    trusted_proxies: list[str] = Field(default_factory=list)
    allow_real_ip_fallback: bool = False
    reload: Reload = Field(default_factory=Reload)
    public_origin: Later = None
    tls: Later = None
    tailscale: Later = None
    remote: Later = None
    nodes: Later = None
    http: Later = None
    roles: Later = None
    terminal: Later = None
    push: Later = None
    tools: Later = None
    cli_agents: Later = None
    portals: Later = None
    channel_health_check_minutes: Later = None


# --- agents --------------------------------------------------------------------------------


class ModelChoice(Strict):
    primary: str | None = None
    fallbacks: list[str] | None = None


ModelInput = str | ModelChoice


class ModelAlias(Strict):
    alias: str | None = None
    params: Later = None


class Identity(Strict):
    name: str | None = None
    theme: str | None = None
    emoji: str | None = None
    avatar: str | None = None


class GroupChat(Strict):
    mention_patterns: list[str] = Field(default_factory=list)
    history_limit: int | None = Field(None, ge=0)


# --- cron / heartbeat (issue 16; context-and-cron.md §C.1, §C.19) ---------------------------


class ActiveHours(Strict):
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$")
    timezone: str | None = None  # "user" (default) | "local" | IANA name


class HeartbeatConfig(Strict):
    every: str | int | None = None  # duration; bare number = minutes; "0m" disables
    target: str | None = None  # owner | last | none | telegram | discord
    to: str | None = None
    account_id: str | None = None
    direct_policy: Literal["allow", "block"] | None = None
    active_hours: ActiveHours | None = None
    session: str | None = None
    model: str | None = None
    prompt: str | None = None
    timeout_seconds: int | None = Field(None, ge=0)
    light_context: bool | None = None
    isolated_session: bool | None = None
    include_reasoning: Later = None
    ack_max_chars: int | None = Field(None, ge=0)
    agent_id: Later = None


class CronFailureAlert(Strict):
    enabled: bool | None = None
    after: int | None = Field(None, ge=1)
    cooldown_ms: int | None = Field(None, ge=0)
    include_skipped: bool | None = None
    mode: Literal["announce", "webhook"] | None = None
    account_id: str | None = None
    channel: str | None = None
    to: str | None = None


class CronConfig(Strict):
    enabled: bool = True
    skip_missed_jobs: bool = False
    session_retention: str | Literal[False] | None = None
    failure_alert: CronFailureAlert | None = None
    webhook_token: Later = None
    webhook_ssrf_policy: Later = None
    triggers: Later = None
    # Retired keys the reference's doctor strips: accepted and ignored.
    store: Later = None
    max_concurrent_runs: Later = None
    retry: Later = None
    failure_destination: Later = None


class AgentDefaults(Strict):
    model: ModelInput | None = None
    models: dict[str, ModelAlias] = Field(default_factory=dict)
    workspace: str | None = None
    max_concurrent: int | None = Field(None, ge=1)
    timeout_seconds: int = Field(172_800, ge=0)
    bootstrap_max_chars: int = Field(20_000, ge=0)
    bootstrap_total_max_chars: int = Field(60_000, ge=0)
    skip_bootstrap: bool = False
    user_timezone: str | None = None
    typing_mode: Literal["never", "instant", "thinking", "message"] | None = None
    typing_interval_seconds: int = Field(6, ge=1)
    block_streaming_default: Later = None
    block_streaming_break: Later = None
    block_streaming_chunk: Later = None
    block_streaming_coalesce: Later = None
    human_delay: Later = None
    thinking_default: Later = None
    heartbeat: HeartbeatConfig | None = None
    compaction: Later = None
    context_pruning: Later = None
    context_tokens: Later = None
    sandbox: Later = None
    subagents: Later = None
    skills: Later = None
    image_model: Later = None
    utility_model: Later = None
    model_policy: Later = None
    verbose_default: Later = None
    elevated_default: Later = None
    memory_search: Later = None
    envelope_timezone: Later = None
    time_format: Later = None
    media_max_mb: Later = None


class AgentEntry(Strict):
    id: str | None = None  # only in the legacy list form; the entries map key is the id
    default: bool = False
    name: str | None = None
    workspace: str | None = None
    agent_dir: str | None = None
    model: ModelInput | None = None
    identity: Identity | None = None
    group_chat: GroupChat | None = None
    typing_mode: Later = None
    thinking_default: Later = None
    params: Later = None
    models: Later = None
    tools: Later = None
    sandbox: Later = None
    skills: Later = None
    subagents: Later = None
    runtime: Later = None
    tts: Later = None
    heartbeat: HeartbeatConfig | None = None
    human_delay: Later = None
    memory_search: Later = None


class AgentsConfig(Strict):
    defaults: AgentDefaults = Field(default_factory=AgentDefaults)
    entries: dict[str, AgentEntry] = Field(default_factory=dict)
    list_: list[AgentEntry] | None = Field(None, alias="list")
    ownership: Literal["explicit"] | None = None


# --- auth (provider credential metadata, never the secret) ---------------------------------


class AuthProfile(Strict):
    provider: str
    mode: Literal["api_key", "token", "oauth", "aws-sdk"]
    email: str | None = None
    display_name: str | None = None


class AuthConfig(Strict):
    profiles: dict[str, AuthProfile] = Field(default_factory=dict)
    order: dict[str, list[str]] = Field(default_factory=dict)
    cooldowns: Later = None


# --- models --------------------------------------------------------------------------------


class ProviderConfig(Strict):
    base_url: str | None = None
    api_key: SecretInput | None = None
    api: (
        Literal[
            "anthropic-messages",
            "openai-completions",
            "openai-responses",
            "google-generative-ai",
            "openai-codex-responses",
            "ollama",
            "bedrock-converse-stream",
        ]
        | None
    ) = None
    timeout_seconds: float | None = Field(None, gt=0)
    models: Later = None
    headers: Later = None
    auth: Later = None
    params: Later = None
    request: Later = None
    local_service: Later = None


class ModelsConfig(Strict):
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    mode: Later = None
    bedrock_discovery: Later = None


# --- bindings ------------------------------------------------------------------------------


class PeerMatch(Strict):
    kind: Literal["direct", "dm", "group", "channel"]
    id: str


class BindingMatch(Strict):
    channel: str
    account_id: str | None = None
    peer: PeerMatch | None = None
    guild_id: str | None = None
    team_id: str | None = None
    roles: list[str] | None = None


class BindingSession(Strict):
    dm_scope: Literal["main", "per-peer", "per-channel-peer", "per-account-channel-peer"] | None = (
        None
    )
    group_scope: Literal["per-group", "main"] | None = None


class Binding(Strict):
    type: Literal["route", "acp"] = "route"
    agent_id: str
    comment: str | None = None
    match: BindingMatch
    session: BindingSession | None = None
    acp: Later = None


# --- channels ------------------------------------------------------------------------------


class DiscordGuildChannel(Strict):
    enabled: bool | None = None
    allow: bool | None = None  # legacy alias of `enabled` from the Fly guide; warned about
    require_mention: bool | None = None
    users: IdList | None = None
    roles: IdList | None = None
    system_prompt: str | None = None
    skills: Later = None
    include_thread_starter: Later = None
    auto_thread: Later = None
    tools: Later = None
    tools_by_sender: Later = None


class DiscordGuild(Strict):
    require_mention: bool = True
    users: IdList | None = None
    roles: IdList | None = None
    channels: dict[str, DiscordGuildChannel] = Field(default_factory=dict)
    ignore_other_mentions: bool = False
    slug: str | None = None
    reaction_notifications: Later = None
    tools: Later = None
    tools_by_sender: Later = None


class DiscordDm(Strict):
    enabled: bool = True
    group_enabled: bool = False
    group_channels: IdList = Field(default_factory=list)
    policy: Later = None
    allow_from: Later = None


class PerDm(Strict):
    history_limit: int | None = Field(None, ge=0)


# --- commands (channels.md §5, config.md commands.*) ---------------------------------------

NativeSwitch = StrictBool | Literal["auto"]  # strict: "yes"/"on" are typos, not true


class ChannelCommands(Strict):
    """`channels.<ch>.commands`: per-channel override of the root switches."""

    native: NativeSwitch | None = None  # None: inherit `commands.native`
    native_skills: Later = None
    enforce_owner_for_commands: Later = None


class DiscordSlashCommand(Strict):
    ephemeral: bool = True  # slash-command replies only the invoking user sees


class CommandsConfig(Strict):
    """Root `commands`: text/native switches and who may run commands."""

    native: NativeSwitch = "auto"
    text: StrictBool = True
    # Per channel id lists with "*" as the default for channels not named; a plain list
    # is the same as {"*": list}. When set it is the only command-authorization source.
    allow_from: dict[str, IdList] | None = None
    use_access_groups: StrictBool = True
    native_skills: Later = None
    bash: Later = None
    bash_foreground_ms: Later = None
    config: Later = None
    mcp: Later = None
    plugins: Later = None
    debug: Later = None
    restart: Later = None
    owner_allow_from: Later = None
    owner_display: Later = None
    owner_display_secret: Later = None

    @field_validator("allow_from", mode="before")
    @classmethod
    def _list_means_every_channel(cls, value: Any) -> Any:
        return {"*": value} if isinstance(value, list) else value


class DiscordConfig(Strict):
    enabled: bool = True
    name: str | None = None
    token: SecretInput | None = None
    dm_policy: DmPolicy = "pairing"
    allow_from: IdList = Field(default_factory=list)
    group_policy: GroupPolicy | None = None
    guilds: dict[str, DiscordGuild] = Field(default_factory=dict)
    dm: DiscordDm = Field(default_factory=DiscordDm)
    dms: dict[str, PerDm] = Field(default_factory=dict)
    history_limit: int = Field(20, ge=0)
    dm_history_limit: int | None = Field(None, ge=0)
    text_chunk_limit: int = Field(2000, ge=1, le=2000)
    max_lines_per_message: int = Field(17, ge=1)
    streaming: Later = None
    reply_to_mode: ReplyToMode = "off"
    allow_bots: bool | Literal["mentions"] = False
    ack_reaction: Later = None
    ack_reaction_scope: Later = None
    response_prefix: Later = None
    media_max_mb: Later = None
    suppress_embeds: Later = None
    join_intro: Later = None
    accounts: Later = None
    default_account: Later = None
    actions: Later = None
    thread_bindings: Later = None
    voice: Later = None
    exec_approvals: Later = None
    intents: Later = None
    proxy: Later = None
    dangerously_allow_name_matching: Later = None
    config_writes: Later = None
    markdown: Later = None
    commands: ChannelCommands = Field(default_factory=ChannelCommands)
    slash_command: DiscordSlashCommand = Field(default_factory=DiscordSlashCommand)


class TelegramGroup(Strict):
    require_mention: bool = True
    enabled: bool = True
    allow_from: IdList | None = None
    group_policy: GroupPolicy | None = None
    system_prompt: str | None = None
    topics: Later = None
    skills: Later = None
    tools: Later = None
    tools_by_sender: Later = None


class TelegramConfig(Strict):
    enabled: bool = True
    name: str | None = None
    bot_token: SecretInput | None = None
    token_file: Later = None
    dm_policy: DmPolicy = "pairing"
    allow_from: IdList = Field(default_factory=list)
    group_policy: GroupPolicy | None = None
    group_allow_from: IdList | None = None
    groups: dict[str, TelegramGroup] = Field(default_factory=dict)
    direct: Later = None
    history_limit: int = Field(50, ge=0, le=200)
    dm_history_limit: int | None = Field(None, ge=0)
    dms: dict[str, PerDm] = Field(default_factory=dict)
    text_chunk_limit: int = Field(4000, ge=1, le=4096)
    streaming: Later = None
    reply_to_mode: ReplyToMode = "off"
    api_root: str | None = None
    link_preview: Later = None
    webhook_url: Later = None
    webhook_secret: Later = None
    webhook_path: Later = None
    webhook_host: Later = None
    webhook_port: Later = None
    proxy: Later = None
    network: Later = None
    custom_commands: Later = None
    reaction_notifications: Later = None
    reaction_level: Later = None
    ack_reaction: Later = None
    accounts: Later = None
    default_account: Later = None
    media_max_mb: Later = None
    actions: Later = None
    capabilities: Later = None
    config_writes: Later = None
    markdown: Later = None
    commands: ChannelCommands = Field(default_factory=ChannelCommands)
    retry: Later = None
    timeout_seconds: Later = None


class ChannelDefaults(Strict):
    group_policy: GroupPolicy | None = None
    context_visibility: Later = None
    implicit_mentions: Later = None
    heartbeat_visibility: Later = None
    heartbeat: Later = None


class ChannelsConfig(BaseModel):
    """An open map (plugin channel ids are allowed); the channels we run are strict."""

    model_config = ConfigDict(extra="allow", alias_generator=to_camel, populate_by_name=True)

    defaults: ChannelDefaults = Field(default_factory=ChannelDefaults)
    discord: DiscordConfig | None = None
    telegram: TelegramConfig | None = None


# --- session / messages --------------------------------------------------------------------

DmScope = Literal["main", "per-peer", "per-channel-peer", "per-account-channel-peer"]


class ResetPolicy(Strict):
    mode: Literal["none", "daily", "idle"] = "none"
    at_hour: int = Field(4, ge=0, le=23)
    idle_minutes: int | None = Field(None, ge=1)


class ResetByType(Strict):
    direct: ResetPolicy | None = None
    group: ResetPolicy | None = None
    thread: ResetPolicy | None = None


class SessionConfig(Strict):
    scope: Literal["per-sender", "global"] = "per-sender"
    dm_scope: DmScope = "main"
    group_scope: Literal["per-group", "main"] = "per-group"
    identity_links: dict[str, list[str]] = Field(default_factory=dict)
    reset: ResetPolicy = Field(default_factory=ResetPolicy)
    reset_by_type: ResetByType = Field(default_factory=ResetByType)
    reset_by_channel: dict[str, ResetPolicy] = Field(default_factory=dict)
    reset_triggers: list[str] = Field(default_factory=lambda: ["/new", "/reset"])
    main_key: str | None = None
    store: Later = None
    send_policy: Later = None
    maintenance: Later = None
    thread_bindings: Later = None
    sharing: Later = None
    notify_on_create: Later = None
    agent_to_agent: Later = None
    typing_mode: Later = None


QueueMode = Literal["steer", "followup", "collect", "interrupt", "queue", "steer-backlog"]


class QueueConfig(Strict):
    mode: QueueMode = "steer"
    by_channel: dict[str, QueueMode] = Field(default_factory=dict)
    cap: int = Field(20, ge=1)
    drop: Literal["summarize", "old", "new"] = "summarize"
    debounce_ms: int | None = Field(None, ge=0)
    debounce_ms_by_channel: dict[str, int] = Field(default_factory=dict)


class MessagesGroupChat(Strict):
    history_limit: int = Field(50, ge=0)
    mention_patterns: list[str] = Field(default_factory=list)


class MessagesConfig(Strict):
    queue: QueueConfig = Field(default_factory=QueueConfig)
    inbound: Later = None
    group_chat: MessagesGroupChat = Field(default_factory=MessagesGroupChat)
    ack_reaction: Later = None
    ack_reaction_scope: Later = None
    remove_ack_after_reply: Later = None
    response_prefix: Later = None
    visible_replies: Later = None
    status_reactions: Later = None
    tts: Later = None
    suppress_tool_errors: Later = None


class EnvConfig(BaseModel):
    # The reference also takes NAME: value pairs inline beside `vars`.
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    vars: dict[str, str] = Field(default_factory=dict)
    shell_env: Later = Field(None, alias="shellEnv")


# --- root ----------------------------------------------------------------------------------

# Top-level sections the reference accepts that we do not model: accepted, warned once.
UNMODELLED_SECTIONS = frozenset(
    {
        "accessGroups",
        "acp",
        "approvals",
        "attachments",
        "broadcast",
        "browser",
        "cloudWorkers",
        "desktop",
        "diagnostics",
        "discovery",
        "hooks",
        "logging",
        "mcp",
        "memory",
        "nodeHost",
        "plugins",
        "proxy",
        "secrets",
        "security",
        "skills",
        "surfaces",
        "talk",
        "telemetry",
        "tools",
        "transcripts",
        "tts",
        "ui",
        "update",
        "wizard",
        "worktreeAcceleration",
        "worktreeRoot",
    }
)


class OpenClawConfig(Strict):
    schema_: str | None = Field(None, alias="$schema")
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)
    agents: AgentsConfig = Field(default_factory=AgentsConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    bindings: list[Binding] = Field(default_factory=list)
    channels: ChannelsConfig = Field(default_factory=ChannelsConfig)
    session: SessionConfig = Field(default_factory=SessionConfig)
    messages: MessagesConfig = Field(default_factory=MessagesConfig)
    env: EnvConfig = Field(default_factory=EnvConfig)
    commands: CommandsConfig = Field(default_factory=CommandsConfig)
    cron: CronConfig = Field(default_factory=CronConfig)
    meta: dict[str, Any] = Field(default_factory=dict)
