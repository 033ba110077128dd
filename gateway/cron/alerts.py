"""Failure alerts: telling someone that a job keeps failing (`failureAlert`, `cron.failureAlert`).

The policy, as the reference's automation docs describe it:
* A job is covered when it has a route for the alert: its own `failureAlert` route fields, its
  `delivery.failureDestination` layered over the global `cron.failureAlert` destination, or its
  own announce target. Jobs without one stay quiet unless a per-job or global `failureAlert`
  object turns the policy on (then the alert goes to the owning session's last chat).
  `failureAlert: false` turns it off for the job; `cron.failureAlert.enabled: false` turns off
  what jobs would inherit; `delivery.bestEffort: true` silences inherited alerts.
* After `after` (default 2) consecutive failed runs one alert is sent; skipped runs count only
  with `includeSkipped` (on their own streak). Failures with the same cause and route are one
  incident: alerted once, however long they last. A changed cause may alert again, but never
  within `cooldownMs` (default 1 hour) of the previous alert. A successful run ends the
  incident, resets the cooldown and, if an alert went out, sends one recovery notice.
* A run that succeeded but whose required delivery failed alerts at once, and only through an
  alternate route (never the chat that just failed).
* The auto-disable notice (10 failures in a row) replaces the regular alert, whatever
  `failureAlert` says, when any route exists.

Alert text names the job, the count, the classified cause and the last error (one line, at
most 200 characters, passed through the log's secret scrubber).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from gateway.agents.web.ssrf import BlockedUrl, PinnedTransport, SsrfGuard
from gateway.config.models import CronConfig, CronFailureAlert
from gateway.config.secrets import SecretError, resolve_secret
from gateway.cron import delivery as dlv
from gateway.cron.model import Delivery, FailureAlert, FailureDestination, JobSpec
from gateway.logs import scrubber

if TYPE_CHECKING:
    from gateway.runtime import Gateway

log = logging.getLogger("gateway.cron")

DEFAULT_AFTER = 2
DEFAULT_COOLDOWN_MS = 3_600_000
ERROR_CHARS = 200
NAME_CHARS = 120
WEBHOOK_TIMEOUT_S = 10.0
WEBHOOK_POLICY_KEY = "cron.webhookSsrfPolicy"


@dataclass(frozen=True)
class Route:
    mode: str  # announce | webhook
    channel: str | None = None  # announce: telegram | discord | last
    to: str | None = None
    account_id: str | None = None
    thread_id: str | None = None


@dataclass(frozen=True)
class Policy:
    after: int
    cooldown_ms: int
    include_skipped: bool
    route: Route
    alternate: bool  # the route is not the job's own delivery target
    own: bool  # the job carries its own failureAlert object (outranks bestEffort)


@dataclass(frozen=True)
class Alert:
    kind: str  # failure | skipped | delivery | recovered | auto-disabled
    text: str
    route: Route
    run_at_ms: int


@dataclass(frozen=True)
class Sent:
    """What became of an alert (the job state's lastFailureNotification* fields)."""

    status: str  # delivered | not-delivered
    error: str | None = None


class AlertRouteError(ValueError):
    """A failure-alert route that can never work; refused when the job is created."""


# --- routes ----------------------------------------------------------------------------------


def _norm(value: str | None) -> str | None:
    text = value.strip() if isinstance(value, str) else None
    return text or None


def _channel(value: str | None) -> str | None:
    text = _norm(value)
    return text.lower() if text else None


def _announce_channel(channel: str | None, to: str | None) -> str:
    """An explicit channel, else the one a `telegram:…` recipient names, else `last`."""
    if channel and channel != "last":
        return channel
    return dlv.split_prefixed(to)[0] or channel or "last"


def primary_route(spec: JobSpec) -> Route | None:
    """The job's own announce target, when it announces."""
    d = dlv.effective_delivery(spec)
    if d is None or d.mode != "announce":
        return None
    thread = str(d.thread_id) if d.thread_id is not None else None
    to = _norm(d.to)
    return Route("announce", _announce_channel(_channel(d.channel), to), to, d.account_id, thread)


def _same_as_primary(delivery: Delivery, route: Route) -> bool:
    if delivery.mode == "none":
        return False
    to = _norm(delivery.to)
    if route.mode == "webhook":
        return delivery.mode == "webhook" and to == route.to
    return (
        route.channel == _announce_channel(_channel(delivery.channel), to)
        and route.to == to
        and route.account_id == _norm(delivery.account_id)
        and delivery.thread_id is None
    )


def _alternate(
    spec: JobSpec, glob: CronFailureAlert | None, own: FailureAlert | None
) -> Route | None:
    """`delivery.failureDestination` and the job's route fields layered over the global
    destination; None when nothing is configured or it is the job's own target."""
    channel = to = account = mode = None
    if glob is not None:
        channel, to = _channel(glob.channel), _norm(glob.to)
        account, mode = _norm(glob.account_id), glob.mode
    destination = spec.delivery.failure_destination if spec.delivery is not None else None
    layers: list[FailureDestination | FailureAlert] = [
        layer for layer in (destination, own) if layer is not None
    ]
    for layer in layers:
        # Keys with a value (a null in a cron.update patch means "not set", as on disk).
        given = {k for k in layer.model_fields_set if getattr(layer, k) is not None}
        layer_to = _norm(layer.to)
        layer_channel = _channel(layer.channel) or (
            dlv.split_prefixed(layer_to)[0] if layer_to else None
        )
        inherited_channel = _announce_channel(channel, to)
        if "channel" in given or (layer_channel and layer_to):
            channel = layer_channel
            if layer_channel and layer_channel != inherited_channel:
                # Another channel: the inherited recipient/account belonged to the old one.
                if "to" not in given:
                    to = None
                if "account_id" not in given:
                    account = None
        if "to" in given:
            to = layer_to
        if "account_id" in given:
            account = _norm(layer.account_id)
        implies_announce = "mode" not in given and layer_channel is not None
        if "mode" in given or implies_announce:
            layer_mode = "announce" if implies_announce else layer.mode
            if (mode or "announce") != (layer_mode or "announce"):
                if "channel" not in given:
                    channel = None
                if not ("to" in given and layer_to):
                    to = None
                if "account_id" not in given:
                    account = None
            mode = layer_mode
    only_mode = (
        own is not None
        and own.mode is not None
        and own.channel is None
        and own.to is None
        and own.account_id is None
    )
    if not channel and not to and not account and (not mode or only_mode):
        return None
    resolved_mode = mode or "announce"
    if resolved_mode == "webhook" and not to:
        return None
    route = Route(
        resolved_mode,
        _announce_channel(channel, to) if resolved_mode == "announce" else None,
        to,
        account,
    )
    if spec.delivery is not None and _same_as_primary(spec.delivery, route):
        return None
    return route


def _policy(
    spec: JobSpec, own: FailureAlert | None, glob: CronFailureAlert | None
) -> Policy | None:
    has_own_route = own is not None and any(
        v is not None for v in (own.channel, own.to, own.account_id, own.mode)
    )
    alternate = _alternate(spec, glob, own if has_own_route else None)
    primary = primary_route(spec)
    explicit = own is not None or glob is not None
    if alternate is None and primary is None and not explicit:
        return None
    configured_mode = (
        (own.mode if own is not None else None)
        or ("announce" if own is not None and own.channel else None)
        or (glob.mode if glob is not None else None)
    )
    if alternate is not None:
        route = alternate
    elif configured_mode == "webhook":
        to = (own.to if own is not None else None) or (glob.to if glob is not None else None)
        route = Route("webhook", None, _norm(to))
    elif primary is not None:
        route = primary
    else:
        route = Route("announce", "last")

    def pick(field: str, default: Any) -> Any:
        for source in (own, glob):
            value = getattr(source, field, None) if source is not None else None
            if value is not None:
                return value
        return default

    return Policy(
        after=int(pick("after", DEFAULT_AFTER)),
        cooldown_ms=int(pick("cooldown_ms", DEFAULT_COOLDOWN_MS)),
        include_skipped=bool(pick("include_skipped", False)),
        route=route,
        alternate=alternate is not None,
        own=own is not None,
    )


def resolve_policy(cfg: CronConfig, spec: JobSpec) -> Policy | None:
    """The job's alert policy, or None when it is not covered."""
    if spec.failure_alert is False:
        return None
    own = spec.failure_alert if isinstance(spec.failure_alert, FailureAlert) else None
    glob = cfg.failure_alert
    if own is None and glob is not None and glob.enabled is False:
        return None
    return _policy(spec, own, glob)


def safety_route(cfg: CronConfig, spec: JobSpec) -> Route | None:
    """Where the auto-disable notice goes: any route the job has, whatever its policy says."""
    own = spec.failure_alert if isinstance(spec.failure_alert, FailureAlert) else None
    policy = _policy(spec, own, cfg.failure_alert)
    return policy.route if policy is not None else None


def quiet_by_best_effort(spec: JobSpec, policy: Policy) -> bool:
    return bool(spec.delivery is not None and spec.delivery.best_effort and not policy.own)


def check(gateway: Gateway, spec: JobSpec) -> None:
    """Create-time validation of the job's own alert routes (raises AlertRouteError)."""
    own = spec.failure_alert if isinstance(spec.failure_alert, FailureAlert) else None
    destination = spec.delivery.failure_destination if spec.delivery is not None else None
    for where, layer in (("failureAlert", own), ("delivery.failureDestination", destination)):
        if layer is None:
            continue
        if layer.mode == "webhook":
            if not layer.to:
                raise AlertRouteError(f"{where}: webhook mode needs the URL in `to`")
            _webhook_url(layer.to, where)
            continue
        channel = _channel(layer.channel) or dlv.split_prefixed(layer.to)[0]
        if channel in (None, "last"):
            continue
        if channel not in dlv.CHANNELS:
            raise AlertRouteError(
                f"{where}: unknown channel {channel!r} (use telegram, discord or last)"
            )
        if channel not in dlv.configured_channels(gateway):
            raise AlertRouteError(f"{where}: channel {channel!r} is not configured")


def _webhook_url(to: str, where: str = "failure alert") -> httpx.URL:
    try:
        url = httpx.URL(to.strip())
    except (httpx.InvalidURL, TypeError) as exc:
        raise AlertRouteError(f"{where}: invalid webhook URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise AlertRouteError(f"{where}: the webhook URL must be an http(s) URL")
    if url.userinfo:
        raise AlertRouteError(f"{where}: webhook URLs must not carry user:password")
    return url


# --- incidents and text ----------------------------------------------------------------------


def incident(status: str, cause: str | None, route: Route) -> str:
    """The identity of a failure: same status, cause and route = the same incident."""
    body = json.dumps(
        [status, cause, route.mode, route.channel, route.to, route.account_id, route.thread_id]
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _name(spec: JobSpec) -> str:
    return " ".join((spec.name or spec.id or "").split())[:NAME_CHARS]


def _error_line(error: str | None) -> str:
    text = " ".join(scrubber.scrub(error or "").split())
    if len(text) > ERROR_CHARS:
        text = text[: ERROR_CHARS - 1] + "…"
    return text or "unknown"


def _started(run_at_ms: int, tz_name: str | None) -> str:
    moment = datetime.fromtimestamp(run_at_ms / 1000)
    try:
        zone = ZoneInfo(tz_name) if tz_name else None
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    local = moment.astimezone(zone) if zone is not None else moment.astimezone()
    return local.strftime("%Y-%m-%d %H:%M %Z").strip()


def failure_text(
    spec: JobSpec,
    *,
    status: str,
    count: int,
    error: str | None,
    reason: str | None,
    run_at_ms: int,
    tz_name: str | None,
) -> str:
    times = "1 time." if count == 1 else f"{count} times in a row."
    if status == "skipped":
        lines = [
            f'Automation "{_name(spec)}" was skipped {times}',
            f"Skip reason: {_error_line(error)}",
        ]
    else:
        lines = [f'Automation "{_name(spec)}" failed {times}']
        if reason:
            lines.append(f"Cause: {reason}")
        lines.append(f"Last error: {_error_line(error)}")
    lines.append(f"Run started: {_started(run_at_ms, tz_name)}")
    return "\n".join(lines)


def delivery_text(spec: JobSpec, error: str | None, run_at_ms: int, tz_name: str | None) -> str:
    return "\n".join(
        [
            f'Automation "{_name(spec)}" ran, but its result could not be delivered.',
            f"Last error: {_error_line(error)}",
            f"Run started: {_started(run_at_ms, tz_name)}",
        ]
    )


def recovered_text(spec: JobSpec) -> str:
    return f'Automation "{_name(spec)}" is working again: its latest run succeeded.'


def disabled_text(
    spec: JobSpec, *, reason: str, count: int, error: str | None, cause: str | None
) -> str:
    what = "failed runs" if reason == "consecutive-failures" else "schedule errors"
    lines = [f'Automation "{_name(spec)}" was turned off after {count} {what} in a row.']
    if cause:
        lines.append(f"Cause: {cause}")
    lines.append(f"Last error: {_error_line(error)}")
    lines.append(f"Fix the cause, then turn it back on: openclaw cron enable {spec.id}")
    return "\n".join(lines)


# --- sending ---------------------------------------------------------------------------------


async def send(
    gateway: Gateway,
    spec: JobSpec,
    agent_id: str,
    alert: Alert,
    *,
    backoff_s: Sequence[float] | None = None,
) -> Sent:
    """Deliver one alert; never raises for delivery problems (they are the result)."""
    route = alert.route
    if route.mode == "webhook":
        return await _post(gateway, spec, alert)
    d = Delivery(
        mode="announce",
        channel=route.channel or "last",
        to=route.to,
        account_id=route.account_id,
        thread_id=route.thread_id,
    )
    target = dlv.resolve(gateway, spec.model_copy(update={"delivery": d}), agent_id)
    if isinstance(target, str):
        return Sent("not-delivered", target)
    try:
        await dlv.send(gateway, target, alert.text, backoff_s=backoff_s)
    except RuntimeError as exc:
        return Sent("not-delivered", str(exc))
    return Sent("delivered")


async def _post(gateway: Gateway, spec: JobSpec, alert: Alert) -> Sent:
    cfg = gateway.loaded.config.cron
    if not alert.route.to:
        return Sent("not-delivered", "failure alert webhook needs a URL (failureAlert.to)")
    try:
        url = _webhook_url(alert.route.to)
        token = resolve_secret(cfg.webhook_token, "cron.webhookToken")
    except (AlertRouteError, SecretError) as exc:
        return Sent("not-delivered", str(exc))
    headers = {"content-type": "application/json"}
    if token:
        scrubber.add(token)
        headers["authorization"] = f"Bearer {token}"
    policy = cfg.webhook_ssrf_policy
    guard = SsrfGuard.from_lists(
        policy.allowed_hostnames if policy is not None else (),
        policy.blocked_hostnames if policy is not None else (),
        allow_private_network=bool(policy and policy.dangerously_allow_private_network),
        policy_key=WEBHOOK_POLICY_KEY,
    )
    body = {
        "jobId": spec.id,
        "jobName": spec.name,
        "message": alert.text,
        "runAtMs": alert.run_at_ms,
    }
    try:
        async with httpx.AsyncClient(
            transport=PinnedTransport(guard), timeout=WEBHOOK_TIMEOUT_S, follow_redirects=False
        ) as client:
            response = await client.post(url, json=body, headers=headers)
    except BlockedUrl as exc:
        return Sent("not-delivered", f"webhook refused: {exc}")
    except httpx.HTTPError as exc:
        return Sent("not-delivered", f"webhook to {url.host} failed: {type(exc).__name__}")
    if not response.is_success:
        return Sent("not-delivered", f"webhook to {url.host} answered HTTP {response.status_code}")
    return Sent("delivered")
