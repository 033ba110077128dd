"""The job at the edge: pydantic models of the wire `CronJob` definition (§C.2, §C.4, §C.7).

The same model validates `cron.add` params, patched jobs (`cron.update`), the agent tool's
input and every job read back from `jobs.json`, so there is one definition of a valid job.
Runtime state (`state`) is a dataclass of its own (state.py): it changes on every run and is
stored apart from the definitions.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from gateway.cron import schedule as sched


class Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = self.model_dump(by_alias=True, exclude_none=True)
        return out


NonBlank = Annotated[str, Field(min_length=1, pattern=r"\S")]


class AtSchedule(Wire):
    kind: Literal["at"]
    at: str = Field(min_length=1)


class EverySchedule(Wire):
    kind: Literal["every"]
    every_ms: int = Field(ge=1, le=8_640_000_000_000_000)
    anchor_ms: int | None = Field(None, ge=0, le=8_640_000_000_000_000)


class CronSchedule(Wire):
    kind: Literal["cron"]
    expr: str = Field(min_length=1)
    tz: str | None = None
    stagger_ms: int | None = Field(None, ge=0, le=8_640_000_000_000_000)


class LaterSchedule(Wire):
    """Process-watch triggers (`on-exit`, `stream`): valid wire shapes we do not run."""

    model_config = ConfigDict(extra="allow")
    kind: Literal["on-exit", "stream"]


ScheduleModel = Annotated[
    AtSchedule | EverySchedule | CronSchedule | LaterSchedule, Field(discriminator="kind")
]


class SystemEventPayload(Wire):
    kind: Literal["systemEvent"]
    text: str = Field(min_length=1)
    tools_allow: list[str] | None = None
    tools_allow_is_default: bool | None = None


class AgentTurnPayload(Wire):
    kind: Literal["agentTurn"]
    message: str = Field(min_length=1)
    model: str | None = None
    fallbacks: list[str] | None = None
    thinking: str | None = None
    timeout_seconds: float | None = Field(None, ge=0)
    allow_unsafe_external_content: bool | None = None
    light_context: bool | None = None
    tools_allow: list[str] | None = None
    tools_allow_is_default: bool | None = None


class LaterPayload(Wire):
    """`command` / `script` payloads: valid wire shapes we refuse to run (§C.4)."""

    model_config = ConfigDict(extra="allow")
    kind: Literal["command", "script"]


class SystemPayload(Wire):
    """System-owned payloads (the heartbeat row); never accepted from clients."""

    kind: Literal["heartbeat", "skillCollectionReview"]


PayloadModel = Annotated[
    SystemEventPayload | AgentTurnPayload | LaterPayload | SystemPayload,
    Field(discriminator="kind"),
]


class FailureDestination(Wire):
    channel: NonBlank | None = None
    to: NonBlank | None = None
    account_id: str | None = Field(None, min_length=1)
    mode: Literal["announce", "webhook"] | None = None


class CompletionDestination(Wire):
    mode: Literal["webhook"]
    to: NonBlank


class Delivery(Wire):
    mode: Literal["none", "announce", "webhook"]
    channel: NonBlank | None = None
    to: NonBlank | None = None
    thread_id: str | int | None = None
    account_id: str | None = Field(None, min_length=1)
    best_effort: bool | None = None
    failure_destination: FailureDestination | None = None
    completion_destination: CompletionDestination | None = None


class FailureAlert(Wire):
    after: int | None = Field(None, ge=1)
    channel: NonBlank | None = None
    to: NonBlank | None = None
    cooldown_ms: int | None = Field(None, ge=0)
    include_skipped: bool | None = None
    mode: Literal["announce", "webhook"] | None = None
    account_id: str | None = Field(None, min_length=1)


class Owner(Wire):
    agent_id: str | None = Field(None, min_length=1)
    session_key: str | None = Field(None, min_length=1)
    account_id: str | None = Field(None, min_length=1)


class TrustedPolicy(Wire):
    version: Literal[1]
    mode: Literal["trusted"]


class AccountPolicy(Wire):
    version: Literal[1]
    mode: Literal["account"]
    owner_session_key: str = Field(min_length=1)
    owner_account_id: str = Field(min_length=1)


SessionTarget = Annotated[str, Field(pattern=r"^(main|isolated|current|session:.+)$")]


class JobSpec(Wire):
    """A job definition: everything in `CronJob` except the runtime `state`."""

    id: str | None = Field(None, min_length=1)
    name: str = Field(min_length=1)
    declaration_key: str | None = Field(None, min_length=1, max_length=200, pattern=r"\S")
    display_name: str | None = Field(None, min_length=1, max_length=200, pattern=r"\S")
    owner: Owner | None = None
    scheduled_tool_policy: TrustedPolicy | AccountPolicy | None = None
    agent_id: str | None = Field(None, min_length=1)
    session_key: str | None = Field(None, min_length=1)
    description: str | None = None
    enabled: bool = True
    delete_after_run: bool | None = None
    created_at_ms: int | None = Field(None, ge=0)
    updated_at_ms: int | None = Field(None, ge=0)
    config_revision: str | None = Field(None, min_length=1, max_length=128)
    schedule: ScheduleModel
    pacing: dict[str, Any] | None = None
    trigger: dict[str, Any] | None = None
    session_target: SessionTarget
    wake_mode: Literal["now", "next-heartbeat"]
    payload: PayloadModel
    delivery: Delivery | None = None
    failure_alert: Literal[False] | FailureAlert | None = None

    @model_validator(mode="after")
    def _combinations(self) -> JobSpec:
        """The payload/sessionTarget rules of §C.4 (messages name the rule)."""
        kind = self.payload.kind
        target = self.session_target
        if kind == "systemEvent" and target != "main":
            raise ValueError('a systemEvent payload needs sessionTarget "main"')
        if kind == "agentTurn" and target == "main":
            raise ValueError(
                'an agentTurn payload needs sessionTarget "isolated", "current" or "session:<key>"'
            )
        return self

    # --- derived facts ---------------------------------------------------------------------------

    @property
    def is_one_shot(self) -> bool:
        return isinstance(self.schedule, AtSchedule)

    def schedule_value(self) -> sched.Schedule:
        s = self.schedule
        if isinstance(s, AtSchedule):
            return sched.At(s.at)
        if isinstance(s, EverySchedule):
            return sched.Every(s.every_ms, s.anchor_ms)
        if isinstance(s, CronSchedule):
            return sched.Cron(s.expr, s.tz, s.stagger_ms)
        raise sched.ScheduleError(f"schedule kind {s.kind!r} is not supported by this gateway")

    def revision(self) -> str:
        """`configRevision`: a hash of the definition (without timestamps and itself)."""
        body = self.wire()
        for key in ("configRevision", "createdAtMs", "updatedAtMs"):
            body.pop(key, None)
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest()
        return "sha256:" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def describe(exc: ValidationError) -> str:
    """`path: message; ...` for a pydantic error, in the wire's camelCase names."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).endswith("Schedule"))
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def parse_spec(data: dict[str, Any]) -> JobSpec:
    """Validate a definition (raises ValidationError)."""
    return JobSpec.model_validate(data)


def merge_patch(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """`cron.update` semantics: top-level keys replace, except `payload` and `delivery`
    which merge one level deep (same payload kind); a `null` value clears the key."""
    out = dict(base)
    for key, value in patch.items():
        if key in ("payload", "delivery") and isinstance(value, dict):
            current = out.get(key)
            if isinstance(current, dict) and (
                key == "delivery" or current.get("kind") == value.get("kind", current.get("kind"))
            ):
                merged = dict(current)
                for k, v in value.items():
                    if v is None:
                        merged.pop(k, None)
                    else:
                        merged[k] = v
                out[key] = merged
                continue
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out
