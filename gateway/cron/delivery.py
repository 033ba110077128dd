"""Where a job's result goes and how it gets there (§C.7).

`resolve` turns a job's `delivery` (explicit channel/to, or `last` = the route recorded on
the owning session) into a concrete target; `send` formats and chunks the text the way the
channel's replies are, and sends piece by piece. A piece that fails is retried with back-off
(a channel that is down at fire time, a transient API error); pieces already sent are never
sent again, so a retry cannot double-post.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from channels.base import OutboundTarget
from gateway.agents import roster as rv
from gateway.agents.session_keys import main_session_key
from gateway.cron.model import Delivery, JobSpec

if TYPE_CHECKING:
    from channels.manager import ChannelManager
    from gateway.runtime import Gateway

log = logging.getLogger("gateway.cron")

CHANNELS = ("telegram", "discord")
# Back-off between send attempts for one piece (seconds); tests shorten it.
SEND_BACKOFF_S: tuple[float, ...] = (2.0, 10.0, 30.0)


class DeliveryConfigError(ValueError):
    """A delivery that can never work (unknown channel, no recipient); refused at create."""


@dataclass(frozen=True)
class Target:
    channel: str
    to: str
    account_id: str | None = None
    thread_id: str | None = None
    source: str = "explicit"  # explicit | last

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"channel": self.channel, "to": self.to, "source": self.source}
        if self.account_id:
            out["accountId"] = self.account_id
        if self.thread_id:
            out["threadId"] = self.thread_id
        return out


@dataclass
class Outcome:
    """What became of a run's delivery (the run log's delivery fields)."""

    status: str = "not-requested"  # delivered | not-delivered | unknown | not-requested
    delivered: bool = False
    error: str | None = None
    suppression: str | None = None  # empty | silent | heartbeat
    intended: dict[str, Any] | None = None
    resolved: dict[str, Any] | None = None
    message_ids: list[str] = field(default_factory=list)


def split_prefixed(to: str | None) -> tuple[str | None, str | None]:
    """`telegram:123` → (telegram, 123); anything else → (None, to)."""
    if to and ":" in to:
        head, rest = to.split(":", 1)
        if head.lower() in CHANNELS and rest:
            return head.lower(), rest
    return None, to


def effective_delivery(spec: JobSpec) -> Delivery | None:
    """The job's delivery with the defaults of §C.7 applied."""
    if spec.delivery is not None:
        return spec.delivery
    if spec.payload.kind == "agentTurn" and spec.session_target != "main":
        return Delivery(mode="announce")
    return None


def route_session(spec: JobSpec, agent_id: str) -> str:
    """The session whose recorded route `last` means: the creator's, else the job's, else main."""
    if spec.owner is not None and spec.owner.session_key:
        return spec.owner.session_key
    if spec.session_key:
        return spec.session_key
    if spec.session_target.startswith("session:"):
        return spec.session_target.split(":", 1)[1]
    return main_session_key(agent_id)


def _last_route(gateway: Gateway, session_key: str) -> dict[str, Any] | None:
    agents = gateway.extensions.get("agents")
    if agents is None:
        return None
    row = agents.store.get(session_key)
    route = getattr(row, "last_route", None) if row is not None else None
    return dict(route) if isinstance(route, dict) else None


def configured_channels(gateway: Gateway) -> list[str]:
    channels = gateway.loaded.config.channels
    return [c for c in CHANNELS if getattr(channels, c, None) is not None]


def check(gateway: Gateway, spec: JobSpec, agent_id: str) -> None:
    """Create-time validation (#79079, #69018: never accept what fails every fire)."""
    d = spec.delivery
    if d is None or d.mode == "none":
        return
    if d.mode == "webhook":
        raise DeliveryConfigError("webhook delivery is not supported by this gateway yet")
    if spec.session_target == "main" and spec.payload.kind == "systemEvent":
        raise DeliveryConfigError(
            "main-session jobs cannot announce to a chat (they use the session's own route)"
        )
    prefixed, _ = split_prefixed(d.to)
    channel = prefixed or (d.channel if d.channel and d.channel != "last" else None)
    if channel is None:
        return  # `last`: resolved at fire time; the preview says whether a route exists now
    if channel not in CHANNELS:
        raise DeliveryConfigError(
            f"unknown delivery channel {channel!r} (use telegram, discord or last)"
        )
    if channel not in configured_channels(gateway):
        raise DeliveryConfigError(f"delivery channel {channel!r} is not configured")
    if not d.to:
        route = _last_route(gateway, route_session(spec, agent_id))
        if route is None or route.get("channel") != channel:
            raise DeliveryConfigError(
                f"delivery to {channel} needs a recipient (delivery.to), and the job's session"
                " has no recorded route on that channel"
            )


def resolve(gateway: Gateway, spec: JobSpec, agent_id: str) -> Target | str:
    """The concrete target, or the reason there is none."""
    d = effective_delivery(spec)
    assert d is not None
    prefixed, to = split_prefixed(d.to)
    channel = prefixed or (d.channel if d.channel and d.channel != "last" else None)
    thread = str(d.thread_id) if d.thread_id is not None else None
    if channel is not None and to:
        return Target(channel, to, d.account_id, thread, "explicit")
    route = _last_route(gateway, route_session(spec, agent_id))
    if route is None or not route.get("channel") or not route.get("to"):
        return "no delivery route: the job's session has no recorded chat (set delivery.channel/to)"
    if channel is not None and route.get("channel") != channel:
        return f"no delivery route on {channel}: the session's last chat was elsewhere"
    return Target(
        str(route["channel"]),
        str(route["to"]),
        d.account_id or route.get("accountId"),
        thread or (str(route["threadId"]) if route.get("threadId") else None),
        "last",
    )


def preview(gateway: Gateway, spec: JobSpec, agent_id: str) -> dict[str, str]:
    """`deliveryPreview` {label, detail} for cron.add / cron.list."""
    d = effective_delivery(spec)
    if d is None or d.mode == "none":
        return {"label": "not requested", "detail": "not requested"}
    where = d.channel or "last"
    target = resolve(gateway, spec, agent_id)
    if isinstance(target, str):
        return {"label": f"{d.mode} -> {where}", "detail": f"{where} -> will fail-closed: {target}"}
    return {"label": f"{d.mode} -> {where}", "detail": f"{target.channel} -> {target.to}"}


async def send(
    gateway: Gateway,
    target: Target,
    text: str,
    *,
    backoff_s: Sequence[float] | None = None,
) -> list[str]:
    """Send `text` to `target`; returns message ids. Raises RuntimeError once retries are
    exhausted (the message names the channel and the last error)."""
    delays = list(SEND_BACKOFF_S if backoff_s is None else backoff_s)
    manager: ChannelManager | None = gateway.extensions.get("channels")
    pieces: list[str] | None = None
    ids: list[str] = []
    index = 0
    attempt = 0
    while True:
        error: str
        rt = manager.get(target.channel, target.account_id) if manager is not None else None
        if rt is None:
            error = f"{target.channel} is not configured on this gateway"
        elif rt.transport is None or not rt.status.running:
            error = f"{target.channel} is not running"
        else:
            if pieces is None:
                pieces = rt.pipeline.format(text)
            try:
                while index < len(pieces):
                    sent = await rt.transport.send_text(
                        OutboundTarget(target.to, target.thread_id), pieces[index]
                    )
                    ids.append(sent.message_id)
                    index += 1
                return ids
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = f"{target.channel} send failed: {exc}"
        if attempt >= len(delays):
            raise RuntimeError(error)
        log.warning("cron: delivery to %s failed (%s); retrying", target.channel, error)
        await asyncio.sleep(delays[attempt])
        attempt += 1


def default_agent(gateway: Gateway, spec: JobSpec) -> str:
    return spec.agent_id or rv.default_agent_id(gateway.loaded.config)
