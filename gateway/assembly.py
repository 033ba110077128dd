"""Build a Gateway from settings and config, attaching each subsystem's services."""

from __future__ import annotations

import importlib

from gateway.config.loader import LoadedConfig
from gateway.runtime import Gateway
from gateway.settings import RuntimeSettings

# What `attach_services` imports, in a worker thread before it runs (see `preload`).
SUBSYSTEM_MODULES = (
    "channels.manager",
    "gateway.agents.service",
    "gateway.config.watch",
    "gateway.cron.service",
    "gateway.ws.feed",
    "gateway.agents.roster",
    "gateway.agents.model_turn",
)


def build_gateway(settings: RuntimeSettings, loaded: LoadedConfig) -> Gateway:
    """A gateway with every subsystem attached (not started)."""
    gw = Gateway.from_loaded(settings, loaded)
    attach_services(gw)
    return gw


def preload() -> None:
    """Import the subsystems, the RPC methods and the full web app (the slow part of a start).

    Run in a worker thread by the CLI's deferred start, so the socket already answers probes;
    importing is all it does, so running it twice or not at all changes nothing."""
    import gateway.rpc
    from gateway import web
    from gateway.agents import tools

    gateway.rpc.load_methods()
    tools.load()  # else the first turn imports them on the event loop
    for name in (*SUBSYSTEM_MODULES, *web.FULL_APP_MODULES):
        importlib.import_module(name)


def attach_services(gw: Gateway) -> None:
    import gateway.rpc
    from channels.manager import attach as attach_channels
    from gateway.agents.service import attach as attach_agents
    from gateway.config.watch import attach as attach_config_watch
    from gateway.cron.service import attach as attach_cron
    from gateway.ws.feed import attach as attach_client_feed

    gateway.rpc.load_methods()
    agents = attach_agents(gw)  # before channels: channels hand messages to the agents
    attach_client_feed(gw)  # run events as the official clients follow them
    attach_channels(gw)
    attach_config_watch(gw)  # edits of openclaw.json apply like config.set (bad ones are refused)
    gw.services.append(agents)  # stopped first: runs drain while channels can still reply
    attach_cron(gw)  # after agents: stopped before them, so its runs end while agents serve
