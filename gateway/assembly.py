"""Build a Gateway from settings and config, attaching each subsystem's services."""

from __future__ import annotations

from gateway.config.loader import LoadedConfig
from gateway.runtime import Gateway
from gateway.settings import RuntimeSettings


def build_gateway(settings: RuntimeSettings, loaded: LoadedConfig) -> Gateway:
    import gateway.rpc  # noqa: F401  (registers the RPC methods)
    from channels.manager import attach as attach_channels
    from gateway.agents.service import attach as attach_agents
    from gateway.config.watch import attach as attach_config_watch
    from gateway.cron.service import attach as attach_cron
    from gateway.ws.feed import attach as attach_client_feed

    gw = Gateway(settings=settings, loaded=loaded)
    agents = attach_agents(gw)  # before channels: channels hand messages to the agents
    attach_client_feed(gw)  # run events as the official clients follow them
    attach_channels(gw)
    attach_config_watch(gw)  # edits of openclaw.json apply like config.set (bad ones are refused)
    gw.services.append(agents)  # stopped first: runs drain while channels can still reply
    attach_cron(gw)  # after agents: stopped before them, so its runs end while agents serve
    return gw
