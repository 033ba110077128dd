"""HTTP routes the official Control UI calls besides its files (official-clients spec §5.1).

`GET <base>/control-ui-config.json` answers JSON (never the SPA page) to a bearer holding the
gateway's shared secret or a current device token; the avatar and plugin-asset paths answer 404
instead of handing an `<img>` the SPA's HTML.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway import devices
from gateway.auth import secrets_equal
from gateway.runtime import Gateway

NOT_FOUND_PREFIXES = ("/api/", "/avatar/", "/__openclaw__/")
_UNAUTHORIZED = {"error": {"message": "Unauthorized", "type": "unauthorized"}}


def authorized(gateway: Gateway, request: Request) -> bool:
    auth = gateway.settings.auth
    if auth.mode == "none":
        return True
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given:
        return False
    secret = auth.secret or ""
    if secret and secrets_equal(given, secret):
        return True
    store = gateway.extensions.get("devices")
    if not isinstance(store, devices.DeviceStore):
        store = devices.DeviceStore(gateway.settings.state_dir)
    return bool(secret) and store.token_valid(given, devices.secret_generation(secret))


def config_body(gateway: Gateway) -> dict[str, Any]:
    from gateway.agents import roster as rv
    from gateway.rpc.clients_chat_methods import agent_identity
    from gateway.ws.handshake import build_id

    config = gateway.loaded.config
    agent_id = rv.default_agent_id(config)
    identity = agent_identity(config, agent_id, gateway.settings.state_dir)
    remote = identity.get("avatarStatus") == "remote"
    return {
        "basePath": config.gateway.control_ui.base_path,
        "assistantName": identity["name"],
        "assistantAvatar": identity.get("avatar"),
        "assistantAvatarSource": identity.get("avatarSource") if remote else None,
        "assistantAvatarStatus": identity.get("avatarStatus") if remote else None,
        "assistantAvatarReason": None,
        "assistantAgentId": agent_id,
        "serverVersion": gateway.version,
        "serverBuildId": build_id(gateway),
        "embedSandbox": "scripts",
        # What clawgate does not have is switched off, not pretended.
        "allowExternalEmbedUrls": False,
        "automaticallyFetchFavicons": False,
        "communityInvite": False,
        "terminalEnabled": False,
        "cliAgentsEnabled": False,
        "pluginAssetsRequireAuth": True,
        "pluginFrameGrants": [],
    }


def routes(gateway: Gateway, base: str) -> list[BaseRoute]:
    async def ui_config(request: Request) -> Response:
        if not authorized(gateway, request):
            return JSONResponse(_UNAUTHORIZED, status_code=401)
        return JSONResponse(config_body(gateway), headers={"Cache-Control": "no-store"})

    async def not_found(request: Request) -> Response:
        return JSONResponse({"error": {"message": "Not Found", "type": "not_found"}}, 404)

    out: list[BaseRoute] = [
        Route(f"{base}/control-ui-config.json", ui_config, methods=["GET", "HEAD"])
    ]
    for prefix in NOT_FOUND_PREFIXES:
        out.append(Route(f"{base}{prefix}{{path:path}}", not_found, methods=["GET", "HEAD"]))
    return out
