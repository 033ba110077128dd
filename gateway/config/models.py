"""Pydantic models of the configuration subset we implement (OpenClaw's keys).

Modelled sections are strict (unknown keys are errors, as in the reference); keys the reference
accepts but we do not act on yet are declared as `Later` so a reference config still loads.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from gateway.config.gateway_section import (
    UNMODELLED_SECTIONS as UNMODELLED_SECTIONS,
)
from gateway.config.gateway_section import (
    ControlUi as ControlUi,
)
from gateway.config.gateway_section import (
    GatewayAuth as GatewayAuth,
)
from gateway.config.gateway_section import (
    GatewayConfig as GatewayConfig,
)
from gateway.config.gateway_section import (
    GatewayHttp as GatewayHttp,
)
from gateway.config.gateway_section import (
    HttpEndpoint as HttpEndpoint,
)
from gateway.config.gateway_section import (
    HttpEndpoints as HttpEndpoints,
)
from gateway.config.gateway_section import (
    Later as Later,
)
from gateway.config.gateway_section import (
    RateLimit as RateLimit,
)
from gateway.config.gateway_section import (
    Reload as Reload,
)
from gateway.config.gateway_section import (
    SecretInput as SecretInput,
)
from gateway.config.gateway_section import (
    SecretRef as SecretRef,
)
from gateway.config.gateway_section import (
    Strict as Strict,
)
from gateway.config.gateway_section import (
    section_default as section_default,
)

DmPolicy = Literal["pairing", "allowlist", "open", "disabled"]
GroupPolicy = Literal["open", "allowlist", "disabled"]
ReplyToMode = Literal["off", "first", "all", "batched"]
IdList = list[str | int]


# --- HTTP APIs (gateway.http.endpoints.*, hooks.*) ----------------------------------------


class HookMatch(Strict):
    path: str | None = None
    source: str | None = None


class HookMapping(Strict):
    id: str | None = None
    match: HookMatch = section_default()
    action: Literal["agent", "wake"] = "agent"
    wake_mode: Literal["now", "next-heartbeat"] = "now"
    name: str | None = None
    agent_id: str | None = None
    session_key: str | None = None
    session_mode: Literal["isolated", "persistent"] = "isolated"
    message_template: str | None = None
    text_template: str | None = None
    deliver: bool = True
    channel: str | None = None
    to: str | None = None
    model: str | None = None
    thinking: Later = None
    timeout_seconds: int | None = Field(None, ge=1)
    allow_unsafe_external_content: bool = False
    for_each: Later = None
    transform: Later = None  # JS transforms are not run by clawgate (reported at load)


class HooksConfig(Strict):
    enabled: bool = False
    token: str | None = None
    path: str = "/hooks"
    allowed_agent_ids: list[str] | None = None
    default_session_key: str | None = None
    allow_request_session_key: bool = False
    allowed_session_key_prefixes: list[str] = Field(default_factory=list)
    presets: list[str] = Field(default_factory=list)
    mappings: list[HookMapping] = Field(default_factory=list)
    max_body_bytes: int = Field(256 * 1024, ge=1024)
    transforms_dir: Later = None
    gmail: Later = None
    internal: Later = None

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        path = "/" + value.strip().strip("/")
        if path == "/":
            raise ValueError("hooks.path must not be / (use a dedicated subpath such as /hooks)")
        return path


# --- tools (tools.md §1-§3; the "tools" helper's region) ------------------------------------

ToolProfile = Literal["minimal", "coding", "messaging", "full"]
_ALLOW_CONFLICT = (
    "allow and alsoAllow cannot both be set in the same scope (merge alsoAllow into allow,"
    " or remove allow and use profile + alsoAllow)"
)


class ToolPolicy(Strict):
    """One policy object: `allow` / `alsoAllow` / `deny` lists of names, groups or globs."""

    allow: list[str] | None = None
    also_allow: list[str] | None = None
    deny: list[str] | None = None

    @model_validator(mode="after")
    def _one_allow_kind(self) -> ToolPolicy:
        if self.allow and self.also_allow:
            raise ValueError(_ALLOW_CONFLICT)
        return self


ToolsBySender = dict[str, ToolPolicy]


class FsToolsConfig(Strict):
    # clawgate default: true (the reference defaults to false; tools.md §6.1).
    workspace_only: bool | None = None


class ApplyPatchConfig(Strict):
    enabled: bool = True
    workspace_only: bool = True
    allow_models: list[str] | None = None


ExecSecurity = Literal["deny", "allowlist", "full"]
ExecAsk = Literal["off", "on-miss", "always"]


class ExecConfig(Strict):
    """`tools.exec` (and `agents.entries.<id>.tools.exec`, which overrides it key by key)."""

    mode: Literal["deny", "allowlist", "ask", "auto", "full"] | None = None
    security: ExecSecurity | None = None
    ask: ExecAsk | None = None
    host: Literal["auto", "sandbox", "gateway", "node"] | None = None
    timeout_seconds: int | None = Field(None, gt=0)
    background_ms: int | None = Field(None, gt=0)
    cleanup_ms: int | None = Field(None, gt=0)
    path_prepend: list[str] | None = None
    apply_patch: ApplyPatchConfig | None = None
    node: Later = None
    safe_bins: Later = None
    safe_bin_trusted_dirs: Later = None
    safe_bin_profiles: Later = None
    strict_inline_eval: Later = None
    command_highlighting: Later = None
    grant_expiry_days: Later = None
    reviewer: Later = None
    approval_running_notice_ms: Later = None
    notify_on_exit: Later = None
    notify_on_exit_empty_success: Later = None

    @model_validator(mode="after")
    def _mode_or_legacy(self) -> ExecConfig:
        if self.mode is not None and (self.security is not None or self.ask is not None):
            raise ValueError(
                "mode cannot be combined with security or ask in the same exec object;"
                " keep either mode or the legacy security/ask pair"
            )
        return self


class SandboxTools(Strict):
    tools: ToolPolicy | None = None


class AgentToolsConfig(Strict):
    """`agents.entries.<id>.tools`: the agent's layer of the policy and its overrides."""

    profile: ToolProfile | None = None
    allow: list[str] | None = None
    also_allow: list[str] | None = None
    deny: list[str] | None = None
    by_provider: Later = None
    tools_by_sender: ToolsBySender | None = None
    exec: ExecConfig | None = None
    fs: FsToolsConfig | None = None
    loop_detection: Later = None
    message: Later = None
    elevated: Later = None
    github: Later = None
    code_mode: Later = None
    swarm: Later = None
    sandbox: Later = None

    @model_validator(mode="after")
    def _one_allow_kind(self) -> AgentToolsConfig:
        if self.allow and self.also_allow:
            raise ValueError(_ALLOW_CONFLICT)
        return self


class MediaModelEntry(BaseModel):
    """One `tools.media.models[]` entry; only provider entries are acted on (CLI ones skipped)."""

    model_config = ConfigDict(
        extra="allow", alias_generator=to_camel, populate_by_name=True, defer_build=True
    )

    type: Literal["provider", "cli"] = "provider"
    provider: str | None = None
    model: str | None = None
    capabilities: list[str] | None = None
    language: str | None = None
    prompt: str | None = None
    timeout_seconds: float | None = Field(None, gt=0)
    max_bytes: int | None = Field(None, gt=0)


class MediaCapabilityConfig(BaseModel):
    """`tools.media.image|audio|video`: on unless `enabled: false`; other keys kept as given."""

    model_config = ConfigDict(
        extra="allow", alias_generator=to_camel, populate_by_name=True, defer_build=True
    )

    enabled: bool | None = None
    language: str | None = None
    prompt: str | None = None
    timeout_seconds: float | None = Field(None, gt=0)
    max_bytes: int | None = Field(None, gt=0)


class MediaToolsConfig(BaseModel):
    """`tools.media` (media-understanding): the capability-tagged models and per-kind switches."""

    model_config = ConfigDict(
        extra="allow", alias_generator=to_camel, populate_by_name=True, defer_build=True
    )

    models: list[MediaModelEntry] = Field(default_factory=list)
    image: MediaCapabilityConfig = section_default()
    audio: MediaCapabilityConfig = section_default()
    video: MediaCapabilityConfig = section_default()


class ToolsConfig(AgentToolsConfig):
    """Root `tools`: the global layers, exec and fs defaults; reference-only keys accepted."""

    # Defined with the web tools' models below; a lambda because the class comes later.
    web: WebToolsConfig = section_default()
    media: MediaToolsConfig = section_default()
    links: Later = None
    sessions: Later = None
    tool_search: Later = None
    agent_to_agent: Later = None
    subagents: Later = None
    sessions_spawn: Later = Field(None, alias="sessions_spawn")
    update_plan: Later = None


class TelegramDirect(Strict):
    """`channels.telegram.direct.<chatId | "*">`: per-DM overrides (only tools are acted on)."""

    tools: ToolPolicy | None = None
    tools_by_sender: ToolsBySender | None = None
    enabled: Later = None
    require_mention: Later = None
    allow_from: Later = None
    system_prompt: Later = None
    skills: Later = None
    topics: Later = None
    dm_policy: Later = None


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


# --- context, compaction and model metadata (issue 14; owner: context) ----------------------


class CompactionQualityGuard(Strict):
    enabled: bool | None = None
    max_retries: int = Field(1, ge=0)


class CompactionMidTurnPrecheck(Strict):
    enabled: bool = False


class CompactionMemoryFlush(Strict):
    enabled: bool = True
    model: str | None = None
    soft_threshold_tokens: int = Field(4_000, ge=0)
    force_flush_transcript_bytes: int | str | None = None
    prompt: Later = None
    system_prompt: Later = None


class CompactionConfig(Strict):
    """`agents.defaults.compaction` (context-and-cron.md A.3)."""

    enabled: bool = True
    mode: Literal["default", "safeguard"] = "safeguard"
    keep_recent_tokens: int = Field(20_000, gt=0)
    recent_turns_preserve: int = Field(3, ge=0, le=12)
    identifier_policy: Literal["strict", "off"] = "strict"
    quality_guard: CompactionQualityGuard = section_default()
    model: str | None = None
    thinking_level: Later = None
    timeout_seconds: int = Field(180, gt=0)
    notify_user: bool = False
    max_active_transcript_bytes: int | str | None = None
    mid_turn_precheck: CompactionMidTurnPrecheck = section_default()
    memory_flush: CompactionMemoryFlush = section_default()
    provider: Later = None
    post_compaction_sections: Later = None
    post_index_sync: Later = None
    # Retired tuning knobs older configs still carry: accepted, warned about once, ignored.
    reserve_tokens: Later = None
    reserve_tokens_floor: Later = None
    max_history_share: Later = None
    custom_instructions: Later = None
    truncate_after_compaction: Later = None


class TieredPrice(BaseModel):
    model_config = ConfigDict(
        extra="allow", alias_generator=to_camel, populate_by_name=True, defer_build=True
    )

    range: list[float] = Field(min_length=1, max_length=2)
    input: float | None = Field(None, ge=0)
    output: float | None = Field(None, ge=0)
    cache_read: float | None = Field(None, ge=0)
    cache_write: float | None = Field(None, ge=0)


class ModelCost(BaseModel):
    """USD per 1 000 000 tokens; omitted fields inherit the built-in price table."""

    model_config = ConfigDict(
        extra="allow", alias_generator=to_camel, populate_by_name=True, defer_build=True
    )

    input: float | None = Field(None, ge=0)
    output: float | None = Field(None, ge=0)
    cache_read: float | None = Field(None, ge=0)
    cache_write: float | None = Field(None, ge=0)
    tiered_pricing: list[TieredPrice] | None = None


class ModelDefinition(BaseModel):
    """One `models.providers.<p>.models[]` entry; keys we do not use are kept as given."""

    model_config = ConfigDict(
        extra="allow", alias_generator=to_camel, populate_by_name=True, defer_build=True
    )

    id: str = Field(min_length=1)
    name: str | None = None
    context_window: int | None = Field(None, gt=0)
    context_tokens: int | None = Field(None, gt=0)
    max_tokens: int | None = Field(None, gt=0)
    cost: ModelCost | None = None
    input: list[str] | None = None  # "text", "image": what the model reads (vision or not)


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
    # A duration ("24h"; bare number = hours) or false; typed str | bool so form editors can
    # render it. Unset = 24h; false or a zero duration turns the pruning off.
    session_retention: str | bool | None = None
    failure_alert: CronFailureAlert | None = None
    # Bearer token and SSRF policy of outbound automation webhooks (failure-alert webhooks).
    webhook_token: SecretInput | None = None
    webhook_ssrf_policy: SsrfPolicy | None = None
    triggers: Later = None
    # Retired keys the reference's doctor strips: accepted and ignored.
    store: Later = None
    max_concurrent_runs: Later = None
    retry: Later = None
    failure_destination: Later = None

    @field_validator("session_retention")
    @classmethod
    def _retention(cls, value: str | bool | None) -> str | bool | None:
        if value is True:
            raise ValueError('sessionRetention is a duration such as "24h", or false')
        if isinstance(value, str) and value.strip():
            # Imported here: the scheduler's modules load after the config, only when used.
            from gateway.cron.schedule import ScheduleError, parse_duration_ms

            try:
                parse_duration_ms(value, bare_unit="h")
            except ScheduleError as exc:
                raise ValueError(
                    f'sessionRetention: {exc}; use a duration such as "24h", "0h" or false'
                ) from None
        return value


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
    # clawgate-only (the reference has no cap): model↔tool rounds per turn (tools.md §4.2).
    max_tool_iterations: int = Field(50, ge=1)
    block_streaming_default: Later = None
    block_streaming_break: Later = None
    block_streaming_chunk: Later = None
    block_streaming_coalesce: Later = None
    human_delay: Later = None
    thinking_default: Later = None
    compaction: CompactionConfig = section_default()
    heartbeat: HeartbeatConfig | None = None
    context_pruning: Later = None
    context_tokens: int | None = Field(None, gt=0)  # legacy global cap (A.1 row 5)
    sandbox: Later = None
    subagents: Later = None
    skills: Later = None
    image_model: Later = None
    utility_model: Later = None
    model_policy: Later = None
    verbose_default: Later = None
    elevated_default: Later = None
    memory_search: MemorySearchConfig | None = None
    envelope_timezone: Later = None
    time_format: Later = None
    media_max_mb: float | None = Field(None, gt=0)  # chat attachments (default 20)


class AgentEntry(Strict):
    id: str | None = None  # only in the legacy list form; the entries map key is the id
    default: bool = False
    name: str | None = None
    workspace: str | None = None
    agent_dir: str | None = None
    model: ModelInput | None = None
    identity: Identity | None = None
    group_chat: GroupChat | None = None
    max_tool_iterations: int | None = Field(None, ge=1)  # clawgate-only; see AgentDefaults
    typing_mode: Later = None
    thinking_default: Later = None
    params: Later = None
    models: Later = None
    tools: AgentToolsConfig | None = None
    sandbox: Later = None
    skills: Later = None
    subagents: Later = None
    runtime: Later = None
    tts: Later = None
    heartbeat: HeartbeatConfig | None = None
    human_delay: Later = None
    memory_search: MemorySearchConfig | None = None


class AgentsConfig(Strict):
    defaults: AgentDefaults = section_default()
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
    models: list[ModelDefinition] = Field(default_factory=list)
    context_window: int | None = Field(None, gt=0)  # legacy provider-level (A.1)
    context_tokens: int | None = Field(None, gt=0)
    max_tokens: int | None = Field(None, gt=0)
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


# --- channel delivery: preview streaming, reactions (channels.md §4.5–4.6) ------------------

StreamingMode = Literal["off", "partial", "block", "progress"]
CommandText = Literal["status", "raw"]
ReactionScope = Literal["group-mentions", "group-all", "direct", "all", "off", "none"]


class StreamingChunk(Strict):
    """`streaming.preview.chunk`: how `block` mode cuts the draft into blocks."""

    min_chars: int = Field(200, ge=1)
    max_chars: int = Field(800, ge=1)
    break_preference: Literal["paragraph", "newline", "sentence"] = "paragraph"


class StreamingPreview(Strict):
    chunk: StreamingChunk = section_default()
    tool_progress: bool = True  # tool lines in `partial`/`block` previews
    command_text: CommandText = "status"


class StreamingProgress(Strict):
    tool_progress: bool = False  # the rolling tool log under the `progress` headline
    command_text: CommandText = "status"
    max_lines: int = Field(8, ge=1)
    max_line_chars: int = Field(120, ge=16)
    commentary: bool = False
    label: Later = None


class StreamingBlock(Strict):
    enabled: Later = None
    coalesce: Later = None


class StreamingConfig(Strict):
    """`channels.<ch>.streaming`; a bare mode string or a legacy boolean is accepted too."""

    mode: StreamingMode | None = None  # None: the channel's default (Telegram progress)
    chunk_mode: Literal["length", "newline"] = "length"
    preview: StreamingPreview = section_default()
    progress: StreamingProgress = section_default()
    block: StreamingBlock = section_default()
    native_transport: Later = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, bool):  # legacy `streaming: true|false`
            return {"mode": "partial" if value else "off"}
        if isinstance(value, str):
            return {"mode": value}
        return value


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
    auto_thread: bool = False  # each new top-level message opens its own thread
    auto_archive_duration: Literal[60, 1440, 4320, 10080, "60", "1440", "4320", "10080"] | None = (
        None
    )
    auto_thread_name: Later = None
    tools: ToolPolicy | None = None
    tools_by_sender: ToolsBySender | None = None


class DiscordGuild(Strict):
    require_mention: bool = True
    users: IdList | None = None
    roles: IdList | None = None
    channels: dict[str, DiscordGuildChannel] = Field(default_factory=dict)
    ignore_other_mentions: bool = False
    slug: str | None = None
    reaction_notifications: Literal["off", "own", "all", "allowlist"] = "own"
    tools: ToolPolicy | None = None
    tools_by_sender: ToolsBySender | None = None


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
    dm: DiscordDm = section_default()
    dms: dict[str, PerDm] = Field(default_factory=dict)
    history_limit: int = Field(20, ge=0)
    dm_history_limit: int | None = Field(None, ge=0)
    text_chunk_limit: int = Field(2000, ge=1, le=2000)
    max_lines_per_message: int = Field(17, ge=1)
    streaming: StreamingConfig = section_default()
    reply_to_mode: ReplyToMode = "off"
    allow_bots: bool | Literal["mentions"] = False
    ack_reaction: str | None = None
    ack_reaction_scope: ReactionScope | None = None
    response_prefix: Later = None
    media_max_mb: float | None = Field(None, gt=0)  # default 100 (media inbound/outbound)
    suppress_embeds: Later = None
    join_intro: Later = None
    # Per-account overrides of these keys (raw; merged over the root by `account`).
    accounts: dict[str, dict[str, Any]] = Field(default_factory=dict)
    default_account: str | None = None
    actions: Later = None
    thread_bindings: Later = None
    voice: Later = None
    exec_approvals: Later = None
    intents: Later = None
    proxy: Later = None
    dangerously_allow_name_matching: Later = None
    config_writes: Later = None
    markdown: Later = None
    commands: ChannelCommands = section_default()
    slash_command: DiscordSlashCommand = section_default()

    @model_validator(mode="after")
    def _accounts_merge(self) -> DiscordConfig:
        _check_accounts(self, "token")
        return self

    def account(self, account_id: str) -> DiscordConfig:
        """This account's effective settings: its overrides over the channel root."""
        merged: DiscordConfig = _merged_account(self, account_id)
        return merged


class TelegramGroup(Strict):
    require_mention: bool = True
    enabled: bool = True
    allow_from: IdList | None = None
    group_policy: GroupPolicy | None = None
    system_prompt: str | None = None
    topics: Later = None
    skills: Later = None
    tools: ToolPolicy | None = None
    tools_by_sender: ToolsBySender | None = None


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
    direct: dict[str, TelegramDirect] = Field(default_factory=dict)
    history_limit: int = Field(50, ge=0, le=200)
    dm_history_limit: int | None = Field(None, ge=0)
    dms: dict[str, PerDm] = Field(default_factory=dict)
    text_chunk_limit: int = Field(4000, ge=1, le=4096)
    streaming: StreamingConfig = section_default()
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
    reaction_notifications: Literal["off", "own", "all"] = "own"
    reaction_level: Literal["off", "ack", "minimal", "extensive"] = "minimal"
    ack_reaction: str | None = None
    # Per-account overrides of these keys (raw; merged over the root by `account`).
    accounts: dict[str, dict[str, Any]] = Field(default_factory=dict)
    default_account: str | None = None
    media_max_mb: float | None = Field(None, gt=0)  # default 100 (media inbound/outbound)
    actions: Later = None
    capabilities: Later = None
    config_writes: Later = None
    markdown: Later = None
    commands: ChannelCommands = section_default()
    retry: Later = None
    timeout_seconds: Later = None
    join_intro: Later = None
    error_policy: Later = None

    @model_validator(mode="after")
    def _accounts_merge(self) -> TelegramConfig:
        _check_accounts(self, "bot_token")
        return self

    def account(self, account_id: str) -> TelegramConfig:
        """This account's effective settings: its overrides over the channel root."""
        merged: TelegramConfig = _merged_account(self, account_id)
        return merged


# Never inherited by a named account: the account list itself, and the root's bot token (which
# is the implicit `default` account's own — one bot per token).
_NOT_INHERITED = {"accounts", "default_account", "token", "bot_token", "token_file"}


def _merged_account(root: Any, account_id: str) -> Any:
    """Omitted keys inherit the channel root (not `accounts.default`, channels.md §1.3)."""
    raw = root.accounts.get(account_id)
    if raw is None:
        return root
    base = root.model_dump(by_alias=True, exclude_unset=True, exclude=_NOT_INHERITED)
    return type(root).model_validate({**base, **raw})


def _account_error(account_id: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"accounts.{account_id}.{where}: {first['msg']}" if where else first["msg"]


def _check_accounts(root: Any, token_key: str) -> None:
    """Each account merges into a valid config; no two accounts share a literal token."""
    seen: dict[str, str] = {}
    root_token = getattr(root, token_key)
    if root_token is not None and "default" not in root.accounts:
        seen[
            root_token if isinstance(root_token, str) else f"{root_token.source}:{root_token.id}"
        ] = "default"
    ids = list(root.accounts)
    for account_id in ids:
        raw = root.accounts[account_id]
        if not isinstance(raw, dict):
            raise ValueError(f"accounts.{account_id} must be an object")
        for key in raw:
            if to_camel(key) in ("accounts", "defaultAccount"):
                raise ValueError(f"accounts.{account_id}.{key} is only valid on the channel root")
        try:
            merged = _merged_account(root, account_id)
        except ValidationError as exc:
            raise ValueError(_account_error(account_id, exc)) from None
        token = getattr(merged, token_key)
        if token is None:
            continue
        ident = token if isinstance(token, str) else f"{token.source}:{token.id}"
        if ident in seen and seen[ident] != account_id:
            first = (
                "the channel's own token" if seen[ident] == "default" else f"accounts.{seen[ident]}"
            )
            raise ValueError(
                f"{first} and accounts.{account_id} use the same bot token; "
                "each account needs its own bot"
            )
        seen[ident] = account_id
    if root.default_account is not None and ids and root.default_account not in ids:
        raise ValueError(
            f"defaultAccount {root.default_account!r} is not one of the accounts ({', '.join(ids)})"
        )


class ChannelDefaults(Strict):
    group_policy: GroupPolicy | None = None
    context_visibility: Later = None
    implicit_mentions: Later = None
    heartbeat_visibility: Later = None
    heartbeat: Later = None


class ChannelsConfig(BaseModel):
    """An open map (plugin channel ids are allowed); the channels we run are strict."""

    model_config = ConfigDict(
        extra="allow", alias_generator=to_camel, populate_by_name=True, defer_build=True
    )

    defaults: ChannelDefaults = section_default()
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
    reset: ResetPolicy = section_default()
    reset_by_type: ResetByType = section_default()
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


class StatusReactions(Strict):
    # Discord: unset means on whenever ack reactions are; Telegram needs an explicit true.
    enabled: bool | None = None


class TtsOpenAIConfig(Strict):
    """`tts.providers.openai`: OpenAI's speech endpoint (or an OpenAI-compatible one)."""

    api_key: SecretInput | None = None  # else models.providers.openai.apiKey / OPENAI_API_KEY
    base_url: str | None = None  # else OPENAI_TTS_BASE_URL, else models.providers.openai
    model: str | None = None  # gpt-4o-mini-tts
    speaker_voice: str | None = None  # coral
    voice: str | None = None  # legacy alias of speakerVoice
    instructions: str | None = None
    response_format: Literal["mp3", "opus", "wav"] | None = None  # else per channel
    speed: float | None = Field(None, gt=0)  # OpenAI takes 0.25..4; compatible servers vary
    extra_body: Later = None


class TtsProviders(Strict):
    openai: TtsOpenAIConfig | None = None
    # Other speech providers are accepted (a reference config loads) but not spoken with.
    model_config = ConfigDict(
        extra="allow", alias_generator=to_camel, populate_by_name=True, frozen=False
    )


class TtsConfig(Strict):
    """`tts` (and the legacy `messages.tts`): spoken replies (issue 18)."""

    auto: Literal["off", "always", "inbound", "tagged"] | None = None  # default off
    enabled: bool | None = None  # legacy toggle: true means auto "always"
    mode: Literal["final", "all"] = "final"
    provider: str | None = None
    persona: Later = None
    personas: Later = None
    summary_model: Later = None
    model_overrides: Later = None
    providers: TtsProviders = section_default()
    max_text_length: int = Field(4096, ge=1)
    timeout_ms: int = Field(30_000, ge=1)
    prefs_path: Later = None
    # Legacy direct provider blocks (`tts.openai`, ...), read as `providers.<id>`.
    openai: TtsOpenAIConfig | None = None
    elevenlabs: Later = None
    microsoft: Later = None
    edge: Later = None

    @property
    def auto_mode(self) -> Literal["off", "always", "inbound", "tagged"]:
        if self.auto is not None:
            return self.auto
        return "always" if self.enabled else "off"


ResponseUsageMode = Literal["on", "off", "tokens", "full"]  # `on` = `tokens` (legacy)


class MessagesConfig(Strict):
    queue: QueueConfig = section_default()
    inbound: Later = None
    group_chat: MessagesGroupChat = section_default()
    ack_reaction: str | None = None  # None: the agent's identity emoji, else 👀; "" disables
    ack_reaction_scope: ReactionScope = "group-mentions"
    remove_ack_after_reply: bool = False
    response_prefix: Later = None
    visible_replies: Later = None
    status_reactions: StatusReactions = section_default()
    tts: TtsConfig | None = None  # legacy place of the top-level `tts`
    suppress_tool_errors: Later = None
    # Per-reply usage footer default: one mode, or per channel with a `default` entry
    # (context-and-cron.md B.5); a session's own `/usage` choice wins.
    response_usage: Annotated[
        ResponseUsageMode | dict[str, ResponseUsageMode] | None,
        # The form editor of the official Control UI renders an enum, not a union with a map:
        # the schema shows the common case, validation still takes the per-channel map.
        WithJsonSchema(
            {
                "type": "string",
                "enum": ["off", "tokens", "full", "on"],
                "description": "Usage footer on replies; a {channel: mode, default: mode} map"
                " is accepted too (raw editor).",
            }
        ),
    ] = None
    usage_template: Later = None


class EnvConfig(BaseModel):
    # The reference also takes NAME: value pairs inline beside `vars`.
    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)

    vars: dict[str, str] = Field(default_factory=dict)
    shell_env: Later = Field(None, alias="shellEnv")


# --- memory search and web tools (issue 15) --------------------------------------------------


class MemorySearchRemote(Strict):
    """Where embeddings are fetched from when not the provider's default endpoint."""

    base_url: str | None = None
    api_key: SecretInput | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    batch: Later = None


class MemoryExtraPath(Strict):
    path: str
    pattern: str | None = None


class MemorySearchQuery(Strict):
    max_results: int | None = Field(None, ge=1, le=100)
    min_score: float | None = Field(None, ge=0, le=1)
    hybrid: Later = None


class MemorySearchChunking(Strict):
    tokens: int = Field(400, ge=32, le=8000)
    overlap: int = Field(80, ge=0, le=4000)


class MemorySearchConfig(Strict):
    """`memory.search` (and the legacy `agents.defaults.memorySearch`).

    Vector search is used only when `provider` names an embeddings provider we support
    ("openai", "openai-compatible"); unset or "none" means keyword (FTS5/BM25) search only.
    """

    enabled: bool = True
    provider: str | None = None
    model: str | None = None
    fallback: Later = None
    remote: MemorySearchRemote = section_default()
    extra_paths: list[str | MemoryExtraPath] = Field(default_factory=list)
    query: MemorySearchQuery = section_default()
    chunking: MemorySearchChunking = section_default()
    sources: Later = None
    remember_across_conversations: Later = None
    multimodal: Later = None
    cache: Later = None
    store: Later = None
    sync: Later = None
    experimental: Later = None
    output_dimensionality: Later = None


class MemoryConfig(BaseModel):
    # Only `search` is acted on; the reference's other memory keys (dreaming, citations,
    # admission, ...) are accepted and ignored.
    model_config = ConfigDict(
        extra="allow", alias_generator=to_camel, populate_by_name=True, defer_build=True
    )

    search: MemorySearchConfig = section_default()


class SsrfPolicy(Strict):
    allowed_hostnames: list[str] = Field(default_factory=list)
    blocked_hostnames: list[str] = Field(default_factory=list)
    dangerously_allow_private_network: bool = False
    allow_rfc2544_benchmark_range: Later = None
    allow_ipv6_unique_local_range: Later = None


class WebFetchConfig(Strict):
    enabled: bool = True
    max_chars: int = Field(20_000, ge=100)
    max_chars_cap: int = Field(20_000, ge=100)
    # The reference clamps to 32 000-10 000 000 when used (not a config error).
    max_response_bytes: int = Field(750_000, ge=1)
    timeout_seconds: float = Field(30, gt=0, le=600)
    cache_ttl_minutes: float = Field(15, ge=0)
    max_redirects: int = Field(3, ge=0, le=20)
    readability: bool = True
    user_agent: str | None = None
    ssrf_policy: SsrfPolicy = section_default()
    provider: Later = None
    headers: Later = None
    use_trusted_env_proxy: Later = None
    firecrawl: Later = None


class WebSearchConfig(Strict):
    enabled: bool = True
    provider: str | None = None
    max_results: int = Field(5, ge=1, le=10)
    timeout_seconds: float = Field(30, gt=0, le=600)
    cache_ttl_minutes: float = Field(15, ge=0)
    api_key: SecretInput | None = None  # legacy reference key; BRAVE_API_KEY is preferred
    openai_codex: Later = None
    firecrawl: Later = None
    perplexity: Later = None
    grok: Later = None
    kimi: Later = None


class WebToolsConfig(Strict):
    fetch: WebFetchConfig = section_default()
    search: WebSearchConfig = section_default()
    x_search: Later = None


# --- root ----------------------------------------------------------------------------------


class OpenClawConfig(Strict):
    schema_: str | None = Field(None, alias="$schema")
    gateway: GatewayConfig = section_default()
    agents: AgentsConfig = section_default()
    auth: AuthConfig = section_default()
    models: ModelsConfig = section_default()
    bindings: list[Binding] = Field(default_factory=list)
    channels: ChannelsConfig = section_default()
    session: SessionConfig = section_default()
    messages: MessagesConfig = section_default()
    tts: TtsConfig | None = None  # spoken replies; `messages.tts` is its legacy place
    env: EnvConfig = section_default()
    commands: CommandsConfig = section_default()
    cron: CronConfig = section_default()
    hooks: HooksConfig = section_default()
    tools: ToolsConfig = section_default()
    meta: dict[str, Any] = Field(default_factory=dict)
    memory: MemoryConfig = section_default()
