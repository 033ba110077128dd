"""HTTP APIs beside the WebSocket protocol: inbound hooks, the OpenAI-compatible endpoints and
`/tools/invoke`.

Hooks and the OpenAI endpoints are off until the config enables them and answer 404 while off
(checked per request, so a saved config applies without a restart); `/tools/invoke` is always
on, as in the reference, behind the gateway secret and the tool policy.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from gateway.runtime import Gateway


def routes(gateway: Gateway) -> list[BaseRoute]:
    from gateway.http_api import openai_compat, tools_invoke

    return [*openai_compat.routes(gateway), *tools_invoke.routes(gateway)]
