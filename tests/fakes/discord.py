"""Fake Discord: REST API v10 and the gateway websocket on 127.0.0.1, enough for discord.py 2.7.

Point discord.py at it with env `DISCORD_API_URL=fake.api_base` (the adapter patches discord.py's
REST base and discovers the websocket URL from `GET /gateway`), or in library-only tests set
`discord.http.Route.BASE` and `discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY` directly.

Slash commands: `interaction_create()` dispatches an INTERACTION_CREATE (application command)
and the fake answers the interaction endpoints discord.py uses — `POST /interactions/{id}/{token}/
callback`, `POST /webhooks/{app}/{token}` (follow-ups) and `GET/PATCH/DELETE /webhooks/{app}/
{token}/messages/@original` — checking the token, a single acknowledgement and that follow-ups
come after it, like Discord (error codes 10062, 40060, 10015).

Bot messages are kept (`messages`, by channel and id): `PATCH` edits one (404 Unknown Message
when it is gone), `DELETE` removes it; reactions (`PUT/DELETE .../reactions/{emoji}/@me`) are
kept in `reactions`; `POST .../messages/{id}/threads` opens a thread (`threads_opened`).

Every REST call and gateway op is stored with `record()` so tests await them with
`wait_until()` / `wait_rest()` / `wait_op()` instead of sleeping. Protocol facts (verified against
discord.py 2.7, see the testing spec §3): responses must have exactly
`Content-Type: application/json`; a 429 is retried only with a `Via` header and a JSON
`retry_after`; frames are sent as text (no zlib); READY's `resume_gateway_url` must be ours.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.base import LoopbackServer

TOKEN = "TEST.DISCORD.TOKEN-0123456789"
BOT_ID = 900
APP_ID = 901
GUILD_ID = 100
TEXT_CH = 555  # "general" in the guild
OTHER_CH = 556  # "random" in the guild (not allowlisted by the Fly guide config)
THREAD_CH = 558  # a public thread under "general"
DM_CH = 777
USER_ID = 42
BOT_ROLE = 300  # the bot's managed role in the guild
USER_ROLE = 301

Json = dict[str, Any]
_snowflakes = itertools.count(10_000)


def snowflake() -> str:
    return str(next(_snowflakes))


def _now() -> str:
    return datetime.now(UTC).isoformat()


def user(uid: int = USER_ID, name: str = "ann", *, bot: bool = False) -> Json:
    return {
        "id": str(uid),
        "username": name,
        "discriminator": "0",
        "global_name": name.title(),
        "avatar": None,
        "bot": bot,
    }


BOT_USER: Json = {
    **user(BOT_ID, "clawbot", bot=True),
    "global_name": None,
    "verified": True,
    "mfa_enabled": False,
    "flags": 0,
}


def message(
    content: str,
    channel_id: int | str,
    author: Json | None = None,
    *,
    guild_id: int | str | None = None,
    mentions: Iterable[Json] = (),
    mention_roles: Iterable[int | str] = (),
    roles: Iterable[int | str] = (),
    **extra: Any,
) -> Json:
    """A MESSAGE_CREATE payload (also the shape REST returns for sent messages)."""
    stamp = _now()
    msg: Json = {
        "id": snowflake(),
        "channel_id": str(channel_id),
        "author": author if author is not None else user(),
        "content": content,
        "timestamp": stamp,
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": list(mentions),
        "mention_roles": [str(r) for r in mention_roles],
        "attachments": [],
        "embeds": [],
        "pinned": False,
        "type": 0,
        "flags": 0,
        **extra,
    }
    if guild_id is not None:
        msg["guild_id"] = str(guild_id)
        msg["member"] = {
            "roles": [str(r) for r in roles],
            "joined_at": stamp,
            "deaf": False,
            "mute": False,
            "flags": 0,
        }
    return msg


def reply_to(original: Json, content: str, author: Json | None = None, **kw: Any) -> Json:
    """A reply (type 19) to `original`, carrying `referenced_message` as Discord does."""
    guild_id = original.get("guild_id")
    return message(
        content,
        original["channel_id"],
        author,
        guild_id=guild_id,
        type=19,
        message_reference={
            "message_id": original["id"],
            "channel_id": original["channel_id"],
            **({"guild_id": guild_id} if guild_id else {}),
        },
        referenced_message=original,
        **kw,
    )


def interaction(
    name: str,
    options: dict[str, str] | None = None,
    *,
    channel_id: int = TEXT_CH,
    guild_id: int | None = GUILD_ID,
    author: Json | None = None,
    roles: Iterable[int | str] = (),
    channel: Json | None = None,
) -> Json:
    """An application-command INTERACTION_CREATE payload (type 2, chat input command)."""
    author = author if author is not None else user()
    data: Json = {"id": snowflake(), "name": name, "type": 1}
    if options:
        data["options"] = [{"name": k, "type": 3, "value": v} for k, v in options.items()]
    payload: Json = {
        "id": snowflake(),
        "application_id": str(APP_ID),
        "type": 2,
        "token": f"itoken-{snowflake()}",
        "version": 1,
        "data": data,
        "channel_id": str(channel_id),
        "locale": "en-US",
        "app_permissions": "0",
        "entitlements": [],
        "attachment_size_limit": 8 * 1024 * 1024,
    }
    if guild_id is not None:
        payload["guild_id"] = str(guild_id)
        payload["guild_locale"] = "en-US"
        payload["context"] = 0
        payload["authorizing_integration_owners"] = {"0": str(guild_id)}
        payload["member"] = {
            "user": author,
            "roles": [str(r) for r in roles],
            "joined_at": _now(),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "permissions": "1071698660929",
        }
        payload["channel"] = channel or {
            "id": str(channel_id),
            "type": 0,
            "guild_id": str(guild_id),
            "name": "general" if channel_id == TEXT_CH else "random",
        }
    else:
        payload["context"] = 1
        payload["authorizing_integration_owners"] = {"1": author["id"]}
        payload["user"] = author
        payload["channel"] = channel or {"id": str(channel_id), "type": 1, "recipients": [author]}
    return payload


def button_press(
    custom_id: str,
    message_id: str,
    *,
    channel_id: int = DM_CH,
    guild_id: int | None = None,
    author: Json | None = None,
) -> Json:
    """A component INTERACTION_CREATE (type 3): `author` pressed a button of our message."""
    payload = interaction("-", channel_id=channel_id, guild_id=guild_id, author=author)
    payload["type"] = 3
    payload["data"] = {"custom_id": custom_id, "component_type": 2}
    payload["message"] = {**message("", channel_id, BOT_USER), "id": message_id}
    return payload


def _text_channel(cid: int, name: str, position: int) -> Json:
    return {
        "id": str(cid),
        "type": 0,
        "name": name,
        "position": position,
        "guild_id": str(GUILD_ID),
        "permission_overwrites": [],
        "nsfw": False,
        "parent_id": None,
        "topic": None,
        "last_message_id": None,
    }


def _role(rid: int, name: str, position: int, managed: bool = False) -> Json:
    return {
        "id": str(rid),
        "name": name,
        "permissions": "1071698660929",
        "position": position,
        "color": 0,
        "hoist": False,
        "managed": managed,
        "mentionable": True,
    }


def thread_channel(
    thread_id: int = THREAD_CH,
    name: str = "side-topic",
    parent_id: int = TEXT_CH,
    guild_id: int = GUILD_ID,
) -> Json:
    return {
        "id": str(thread_id),
        "type": 11,  # public thread
        "name": name,
        "guild_id": str(guild_id),
        "parent_id": str(parent_id),
        "owner_id": str(USER_ID),
        "last_message_id": None,
        "message_count": 0,
        "member_count": 1,
        "rate_limit_per_user": 0,
        "flags": 0,
        "thread_metadata": {
            "archived": False,
            "auto_archive_duration": 1440,
            "archive_timestamp": _now(),
            "locked": False,
        },
    }


def guild_create(guild_id: int = GUILD_ID, name: str = "Test Guild") -> Json:
    thread = thread_channel(guild_id=guild_id)
    bot_member = {
        "user": BOT_USER,
        "roles": [str(BOT_ROLE)],
        "joined_at": _now(),
        "deaf": False,
        "mute": False,
        "flags": 0,
    }
    return {
        "id": str(guild_id),
        "name": name,
        "icon": None,
        "owner_id": str(USER_ID),
        "unavailable": False,
        "member_count": 2,
        "roles": [
            _role(guild_id, "@everyone", 0),
            _role(BOT_ROLE, "clawbot", 1, managed=True),
            _role(USER_ROLE, "friends", 2),
        ],
        "channels": [_text_channel(TEXT_CH, "general", 0), _text_channel(OTHER_CH, "random", 1)],
        "threads": [thread],
        "members": [bot_member],
        "emojis": [],
        "stickers": [],
        "features": [],
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "premium_tier": 0,
        "preferred_locale": "en-US",
        "joined_at": _now(),
        "large": False,
        "voice_states": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "system_channel_flags": 0,
        "nsfw_level": 0,
    }


def jr(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """JSON with a bare `application/json` type: discord.py decodes nothing else."""
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


RATE_LIMIT_HEADERS = {"X-RateLimit-Scope": "user", "Via": "1.1 google"}


class FakeDiscord(LoopbackServer):
    """REST under `/api/v10/...`, websocket at `/gateway`; records everything."""

    def __init__(self, token: str = TOKEN) -> None:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{path:.*}", self._rest)
        app.router.add_get("/cdn/{name:.*}", self._cdn)
        super().__init__(app)
        self.cdn: dict[str, bytes] = {}  # attachment files by path under /cdn/
        self.cdn_delay = 0.0  # seconds before a CDN answer (timeouts)
        self.token = token
        self.session_id = "fake-session-1"
        self.guilds: list[Json] = [guild_create()]
        self._sockets: list[web.WebSocketResponse] = []
        self._seq = 0
        self._rest_failures: dict[tuple[str, str], list[tuple[int, Json, dict[str, str]]]] = {}
        self._refuse_ws = 0
        # Channels only REST knows (GET /channels/{id}), e.g. a thread the client never saw.
        self.rest_channels: dict[str, Json] = {}
        self.hold_ready = False  # accept IDENTIFY but never send READY (a stuck gateway)
        # Interactions by token: the payload, how it was acknowledged, the messages it got.
        self.interactions: dict[str, Json] = {}
        self.messages: dict[tuple[str, str], str] = {}  # (channel, message id) → content
        self.reactions: dict[tuple[str, str], list[str]] = {}  # the bot's reactions
        self.threads_opened: list[Json] = []

    def attachment(self, filename: str, data: bytes, content_type: str | None) -> Json:
        """An attachment object whose file this fake serves (what `Attachment.read` fetches)."""
        aid = snowflake()
        self.cdn[f"{aid}/{filename}"] = data
        url = f"{self.url}/cdn/{aid}/{filename}"
        att: Json = {"id": aid, "filename": filename, "size": len(data), "url": url}
        att["proxy_url"] = url
        if content_type:
            att["content_type"] = content_type
        return att

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        await self.record({"kind": "cdn", "method": "GET", "path": name})
        if self.cdn_delay:
            await asyncio.sleep(self.cdn_delay)
        data = self.cdn.get(name)
        return web.Response(body=data) if data is not None else web.Response(status=404)

    def uploads(self) -> list[Json]:
        """Files sent with messages: {"channel", "filename", "bytes", "content"}."""
        return [r["upload"] for r in self.requests if r.get("kind") == "upload"]

    @property
    def api_base(self) -> str:
        return f"{self.url}/api/v10"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # --- test-side API ----------------------------------------------------------------------

    @property
    def connected_sockets(self) -> int:
        return len(self._sockets)

    def rest_calls(self, method: str | None = None, path: str | None = None) -> list[Json]:
        return [
            r
            for r in self.requests
            if r["kind"] == "rest"
            and (method is None or r["method"] == method)
            and (path is None or r["path"] == path)
        ]

    def ops(self, op: int) -> list[Json]:
        return [r for r in self.requests if r["kind"] == "ws" and r["op"] == op]

    async def wait_rest(
        self,
        method: str,
        path: str,
        pred: Callable[[Json], bool] = lambda _c: True,
        count: int = 1,
        timeout: float = 5.0,
    ) -> Json:
        """The `count`-th matching REST call (waits, bounded)."""

        def hits(reqs: list[Json]) -> list[Json]:
            return [
                r
                for r in reqs
                if r["kind"] == "rest" and r["method"] == method and r["path"] == path and pred(r)
            ]

        reqs = await self.wait_until(lambda rs: len(hits(rs)) >= count, timeout)
        return hits(reqs)[count - 1]

    async def wait_op(self, op: int, count: int = 1, timeout: float = 5.0) -> Json:
        """The `count`-th gateway op the client sent (2 IDENTIFY, 6 RESUME, 1 heartbeat)."""
        reqs = await self.wait_until(lambda rs: len(self._ops_in(rs, op)) >= count, timeout)
        return self._ops_in(reqs, op)[count - 1]

    @staticmethod
    def _ops_in(reqs: list[Json], op: int) -> list[Json]:
        return [r for r in reqs if r["kind"] == "ws" and r["op"] == op]

    async def dispatch(self, event: str, data: Json) -> None:
        """Send a DISPATCH (op 0) to every connected client."""
        self._seq += 1
        frame = json.dumps({"op": 0, "t": event, "s": self._seq, "d": data})
        for ws in list(self._sockets):
            await ws.send_str(frame)

    async def interaction_create(self, payload: Json) -> Json:
        """Dispatch an INTERACTION_CREATE (see `interaction()`); its token opens the webhooks."""
        self.interactions[payload["token"]] = {"payload": payload, "ack": None, "messages": []}
        await self.dispatch("INTERACTION_CREATE", payload)
        return payload

    def callbacks(self, payload: Json) -> list[Json]:
        """The interaction-response callbacks the client sent for this interaction."""
        path = f"/interactions/{payload['id']}/{payload['token']}/callback"
        return self.rest_calls("POST", path)

    def followups(self, payload: Json) -> list[Json]:
        """Bodies of the follow-up messages sent for this interaction, in order."""
        path = f"/webhooks/{APP_ID}/{payload['token']}"
        return [c["json"] for c in self.rest_calls("POST", path)]

    async def wait_followup(self, payload: Json, count: int = 1, timeout: float = 5.0) -> Json:
        call = await self.wait_rest(
            "POST", f"/webhooks/{APP_ID}/{payload['token']}", count=count, timeout=timeout
        )
        body: Json = call["json"]
        return body

    async def message_create(self, msg: Json) -> Json:
        await self.dispatch("MESSAGE_CREATE", msg)
        return msg

    async def send_op(self, op: int, d: Any = None) -> None:
        for ws in list(self._sockets):
            await ws.send_str(json.dumps({"op": op, "d": d}))

    async def drop_sockets(self, code: int = 4000) -> None:
        """Close every gateway socket (4000 = unknown error: discord.py reconnects + RESUMEs)."""
        for ws in list(self._sockets):
            await ws.close(code=code)

    def refuse_websocket(self, times: int) -> None:
        """Answer the next `times` websocket handshakes with HTTP 503 (an outage)."""
        self._refuse_ws = times

    def fail_next(
        self,
        method: str,
        path: str,
        status: int,
        body: Json,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._rest_failures.setdefault((method, path), []).append((status, body, headers or {}))

    def rate_limit_next(self, method: str, path: str, retry_after: float = 0.2) -> None:
        """One 429 with the headers discord.py needs to treat it as a retryable rate limit."""
        self.fail_next(
            method,
            path,
            429,
            {"message": "You are being rate limited.", "retry_after": retry_after, "global": False},
            {**RATE_LIMIT_HEADERS, "Retry-After": str(max(1, round(retry_after)))},
        )

    # --- gateway ----------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        if self._refuse_ws > 0:
            self._refuse_ws -= 1
            await self.record({"kind": "ws-refused"})
            return web.Response(status=503, text="gateway unavailable (fake)")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await self.record({"kind": "ws-open", "query": dict(request.query)})
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))  # HELLO
        try:
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    continue
                payload = json.loads(frame.data)
                op = payload.get("op")
                if op == 1:
                    await ws.send_str(json.dumps({"op": 11}))  # HEARTBEAT_ACK
                elif op == 2 and not self.hold_ready:
                    await self._ready(ws)
                elif op == 6:
                    await self._send(ws, "RESUMED", {})
                # Recorded after answering so a waiter sees the op once the reply is out.
                await self.record({"kind": "ws", "op": op, "d": payload.get("d")})
        finally:
            self._sockets.remove(ws)
            await self.record({"kind": "ws-closed"})
        return ws

    async def _send(self, ws: web.WebSocketResponse, event: str, data: Json) -> None:
        self._seq += 1
        await ws.send_str(json.dumps({"op": 0, "t": event, "s": self._seq, "d": data}))

    async def _ready(self, ws: web.WebSocketResponse) -> None:
        await self._send(
            ws,
            "READY",
            {
                "v": 10,
                "user": BOT_USER,
                "guilds": [{"id": g["id"], "unavailable": True} for g in self.guilds],
                "session_id": self.session_id,
                "resume_gateway_url": self.ws_url,  # must be loopback too: RESUME uses it
                "application": {"id": str(APP_ID), "flags": 0},
                "private_channels": [],
                "relationships": [],
                "shard": [0, 1],
            },
        )
        for guild in self.guilds:
            await self._send(ws, "GUILD_CREATE", guild)

    # --- REST -------------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["path"]
        body: Any = None
        if request.content_type == "application/json" and request.can_read_body:
            body = await request.json()
        elif request.content_type.startswith("multipart/"):
            form = await request.post()
            payload = form.get("payload_json")
            body = json.loads(str(payload)) if payload is not None else {}
            files = [v for v in form.values() if isinstance(v, web.FileField)]
            body["_files"] = [f.filename for f in files]
            for f in files:
                upload = {"path": path, "filename": f.filename, "bytes": f.file.read()}
                upload["content"] = body.get("content", "")
                await self.record({"kind": "upload", "upload": upload})
        await self.record(
            {
                "kind": "rest",
                "method": request.method,
                "path": path,
                "json": body,
                "query": dict(request.query),
                "headers": dict(request.headers),
            }
        )
        # Interaction callbacks and follow-ups authenticate with the interaction token in the URL.
        tokened = path.startswith(("/interactions/", "/webhooks/"))
        if (
            path != "/gateway"
            and not tokened
            and request.headers.get("Authorization") != f"Bot {self.token}"
        ):
            return jr({"message": "401: Unauthorized", "code": 0}, status=401)
        fails = self._rest_failures.get((request.method, path))
        if fails:
            status, fail_body, headers = fails.pop(0)
            return jr(fail_body, status=status, headers=headers)
        return self._answer(request.method, path, body)

    def _interaction_answer(self, method: str, parts: list[str], body: Any) -> web.Response:
        unknown = jr({"message": "Unknown interaction", "code": 10062}, status=404)
        if parts[0] == "interactions":  # POST /interactions/{id}/{token}/callback
            state = self.interactions.get(parts[2])
            if method != "POST" or parts[3:] != ["callback"] or state is None:
                return unknown
            if state["payload"]["id"] != parts[1]:
                return unknown
            if state["ack"] is not None:
                return jr(
                    {"message": "Interaction has already been acknowledged.", "code": 40060},
                    status=400,
                )
            state["ack"] = body or {}
            kind = int((body or {}).get("type", 0))
            flags = int(((body or {}).get("data") or {}).get("flags") or 0)
            answer: Json = {
                "interaction": {
                    "id": parts[1],
                    "type": 2,
                    "response_message_loading": kind == 5,
                    "response_message_ephemeral": bool(flags & 64),
                }
            }
            if kind == 4:
                answer["resource"] = {"type": 4, "message": self._webhook_message(state, body)}
            return jr(answer)
        # /webhooks/{app}/{token}[/messages/@original]
        state = self.interactions.get(parts[2]) if len(parts) >= 3 else None
        if state is None or parts[1] != str(APP_ID):
            return jr({"message": "Unknown Webhook", "code": 10015}, status=404)
        if state["ack"] is None:  # Discord: no follow-up before the interaction is answered
            return jr({"message": "Unknown Webhook", "code": 10015}, status=404)
        if parts[3:] == [] and method == "POST":
            return jr(self._webhook_message(state, {"data": body or {}}))
        if parts[3:] == ["messages", "@original"]:
            if method == "DELETE":
                return web.Response(status=204)
            return jr(self._webhook_message(state, {"data": body or {}}))
        return jr({"message": "Unknown (fake)", "code": 0}, status=404)

    def _webhook_message(self, state: Json, body: Any) -> Json:
        data = (body or {}).get("data") or {}
        payload = state["payload"]
        msg = message(
            str(data.get("content", "")),
            payload["channel_id"],
            BOT_USER,
            webhook_id=str(APP_ID),
            flags=int(data.get("flags") or 0),
        )
        state["messages"].append(msg)
        return msg

    def _answer(self, method: str, path: str, body: Any) -> web.Response:
        parts = path.strip("/").split("/")
        if parts[0] in ("interactions", "webhooks"):
            return self._interaction_answer(method, parts, body)
        if (method, path) == ("GET", "/users/@me"):
            return jr(BOT_USER)
        if (method, path) == ("GET", "/oauth2/applications/@me"):
            return jr(
                {
                    "id": str(APP_ID),
                    "name": "claw",
                    "icon": None,
                    "description": "",
                    "bot_public": True,
                    "bot_require_code_grant": False,
                    "owner": user(),
                    "verify_key": "00",
                    "flags": 0,
                }
            )
        if method == "GET" and path in ("/gateway", "/gateway/bot"):
            limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
            return jr({"url": self.ws_url, "shards": 1, "session_start_limit": limit})
        if method == "POST" and parts[0] == "channels" and parts[2:] == ["messages"]:
            sent = body or {}
            extra: Json = {}
            if sent.get("message_reference"):
                extra = {"type": 19, "message_reference": sent["message_reference"]}
            msg = message(sent.get("content", ""), parts[1], BOT_USER, **extra)
            self.messages[(parts[1], msg["id"])] = msg["content"]
            return jr(msg)
        if parts[0] == "channels" and len(parts) == 4 and parts[2] == "messages":
            key = (parts[1], parts[3])
            if key not in self.messages:
                return jr({"message": "Unknown Message", "code": 10008}, status=404)
            if method == "DELETE":
                del self.messages[key]
                return web.Response(status=204)
            if method == "PATCH":
                self.messages[key] = str((body or {}).get("content", ""))
                edited = message(self.messages[key], parts[1], BOT_USER, edited_timestamp=_now())
                return jr({**edited, "id": parts[3]})
        if parts[0] == "channels" and parts[2:3] == ["messages"] and parts[4:5] == ["reactions"]:
            if parts[6:] == ["@me"] and method in ("PUT", "DELETE"):
                mine = self.reactions.setdefault((parts[1], parts[3]), [])
                emoji = parts[5]
                if method == "PUT" and emoji not in mine:
                    mine.append(emoji)
                elif method == "DELETE" and emoji in mine:
                    mine.remove(emoji)
                return web.Response(status=204)
        if method == "POST" and parts[0] == "channels" and parts[2:3] == ["messages"]:
            if parts[4:] == ["threads"]:
                thread = thread_channel(int(snowflake()), str((body or {}).get("name", "")))
                thread["parent_id"] = parts[1]
                thread["id"] = parts[3]  # Discord: a thread from a message takes its id
                self.threads_opened.append({"parent": parts[1], **thread, "request": body})
                return jr(thread)
        if method == "GET" and parts[0] == "channels" and len(parts) == 2:
            if parts[1] in self.rest_channels:
                return jr(self.rest_channels[parts[1]])
            return jr({"message": "Unknown Channel", "code": 10003}, status=404)
        if method == "POST" and parts[0] == "channels" and parts[2:] == ["typing"]:
            return web.Response(status=204)
        if (method, path) == ("POST", "/users/@me/channels"):
            recipient = user(int((body or {}).get("recipient_id", USER_ID)))
            return jr({"id": str(DM_CH), "type": 1, "recipients": [recipient]})
        if method == "PUT" and parts[0] == "applications" and parts[2:] == ["commands"]:
            return jr(
                [
                    {**c, "id": snowflake(), "application_id": str(APP_ID), "version": "1"}
                    for c in (body or [])
                ]
            )
        return jr({"message": "Unknown (fake)", "code": 0}, status=404)
