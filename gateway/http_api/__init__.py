"""HTTP APIs beside the WebSocket protocol: inbound hooks and the OpenAI-compatible endpoints.

Each is off until its config enables it and answers 404 while off (checked per request, so
a saved config applies without a restart).
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from gateway.runtime import Gateway


def routes(gateway: Gateway) -> list[BaseRoute]:
    from gateway.http_api import hooks, openai_compat

    return [*openai_compat.routes(gateway), *hooks.routes(gateway)]
