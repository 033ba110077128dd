"""A fake Telegram Bot API on 127.0.0.1 for python-telegram-bot (testing.md §4).

Routes: `/bot<token>/<method>` and `/file/bot<token>/<path>`. Updates are scripted with
`push_update` / `text_update` and handed out by held `getUpdates` long polls; every other
call is recorded (`await fake.wait_for("sendMessage", pred)`); `fail_next` answers one call
of a method with a Bot API error (409, 429 with retry_after, 400 parse error, 401).

Sent messages are kept per chat (`messages`) so edits behave like Telegram's: an edit to an
unknown (or deleted) message is "message to edit not found", one that changes nothing is
"message is not modified"; `deleteMessage` removes, `setMessageReaction` records the bot's
reaction (`reactions`). `reaction_update` scripts a user's `message_reaction` update.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.fakes.base import LoopbackServer

Json = dict[str, Any]
TOKEN = "123456:TEST-token"
BOT: Json = {
    "id": 7000001,
    "is_bot": True,
    "first_name": "Claw",
    "username": "claw_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}


class ApiError(Exception):
    """A Bot API error answer from a method handler."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def _json(body: Json, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body).encode(), status=status, content_type="application/json"
    )


class FakeTelegram(LoopbackServer):
    def __init__(self, token: str = TOKEN) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)  # sendDocument uploads
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.*}", self._file)
        super().__init__(app)
        self.token = token
        self.updates: list[Json] = []
        self.polls: list[Json] = []
        self.failures: dict[str, list[Json]] = {}
        self.files: dict[str, bytes] = {}
        self._file_paths: dict[str, str] = {}  # file_id → path under /file/bot<token>/
        self.file_delay = 0.0  # seconds before the file endpoint answers (timeouts)
        self._updates_changed = asyncio.Condition()
        self._uid = itertools.count(1)
        self._mid = itertools.count(100)
        self.messages: dict[tuple[str, int], str] = {}  # (chat, message id) → current text
        self.reactions: dict[tuple[str, int], list[str]] = {}  # the bot's reaction per message

    @property
    def api_root(self) -> str:
        return self.url

    # --- test side ----------------------------------------------------------------------------

    def push_update(self, update: Json) -> int:
        update = {"update_id": next(self._uid), **update}
        self.updates.append(update)
        asyncio.get_running_loop().create_task(self._wake())
        return int(update["update_id"])

    def next_message_id(self) -> int:
        return next(self._mid)

    def text_update(
        self,
        text: str,
        *,
        chat_id: int = 42,
        user_id: int = 42,
        chat_type: str = "private",
        first_name: str = "Ann",
        **extra: Any,
    ) -> int:
        """A message update; a leading `/cmd` gets its `bot_command` entity like Telegram's."""
        chat: Json = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = first_name
        else:
            chat["title"] = "Test group"
        msg: Json = {
            "message_id": next(self._mid),
            "date": int(time.time()),
            "chat": chat,
            "from": {"id": user_id, "is_bot": False, "first_name": first_name},
            "text": text,
        }
        if text.startswith("/") and "entities" not in extra:
            head = text.split()[0] if text.split() else text
            msg["entities"] = [{"type": "bot_command", "offset": 0, "length": len(head)}]
        msg.update(extra)
        return self.push_update({"message": msg})

    def add_file(self, data: bytes, name: str = "file") -> Json:
        """Serve `data` through getFile + the file endpoint; returns the file fields."""
        uid = next(self._uid)
        file_id = f"file-{uid}"
        self.files[f"files/{uid}-{name}"] = data
        self._file_paths[file_id] = f"files/{uid}-{name}"
        return {"file_id": file_id, "file_unique_id": f"u{uid}", "file_size": len(data)}

    def photo_update(self, data: bytes, caption: str | None = None, **kw: Any) -> int:
        """A photo message (Telegram sends several sizes; the largest is last)."""
        big = {**self.add_file(data, "photo.jpg"), "width": 64, "height": 48}
        thumb = {**big, "file_id": big["file_id"] + "-thumb", "width": 8, "height": 6}
        extra: Json = {"photo": [thumb, big]}
        if caption is not None:
            extra["caption"] = caption
        return self.media_update(extra, **kw)

    def voice_update(self, data: bytes, **kw: Any) -> int:
        voice = {**self.add_file(data, "voice.oga"), "duration": 3, "mime_type": "audio/ogg"}
        return self.media_update({"voice": voice}, **kw)

    def document_update(
        self, data: bytes, file_name: str, mime: str | None, caption: str | None = None, **kw: Any
    ) -> int:
        doc = {**self.add_file(data, file_name), "file_name": file_name}
        if mime:
            doc["mime_type"] = mime
        extra: Json = {"document": doc}
        if caption is not None:
            extra["caption"] = caption
        return self.media_update(extra, **kw)

    def media_update(
        self, extra: Json, *, chat_id: int = 42, user_id: int = 42, first_name: str = "Ann"
    ) -> int:
        msg: Json = {
            "message_id": next(self._mid),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": first_name},
            "from": {"id": user_id, "is_bot": False, "first_name": first_name},
            **extra,
        }
        return self.push_update({"message": msg})

    def reaction_update(
        self,
        message_id: int,
        emoji: str,
        *,
        chat_id: int = 42,
        user_id: int = 42,
        chat_type: str = "private",
        first_name: str = "Ann",
        username: str | None = None,
    ) -> int:
        """A user's `message_reaction` update adding `emoji` to `message_id`."""
        chat: Json = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = first_name
        else:
            chat["title"] = "Test group"
        who: Json = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            who["username"] = username
        return self.push_update(
            {
                "message_reaction": {
                    "chat": chat,
                    "message_id": message_id,
                    "user": who,
                    "date": int(time.time()),
                    "old_reaction": [],
                    "new_reaction": [{"type": "emoji", "emoji": emoji}],
                }
            }
        )

    def press_update(
        self,
        message_id: int,
        data: str,
        *,
        chat_id: int = 42,
        user_id: int = 42,
        first_name: str = "Ann",
    ) -> int:
        """A `callback_query` update: `user_id` pressed an inline button of our message."""
        chat: Json = {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"}
        message: Json = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": chat,
            "from": BOT,
            "text": self.messages.get((str(chat_id), message_id), ""),
        }
        return self.push_update(
            {
                "callback_query": {
                    "id": f"cq-{next(self._uid)}",
                    "from": {"id": user_id, "is_bot": False, "first_name": first_name},
                    "chat_instance": f"ci-{chat_id}",
                    "message": message,
                    "data": data,
                }
            }
        )

    def edits(self, message_id: int | None = None) -> list[Json]:
        """Successful `editMessageText` calls (of one message), in order."""
        return [
            r["params"]
            for r in self.requests
            if r["method"] == "editMessageText"
            and r["status"] == 200
            and (message_id is None or int(r["params"]["message_id"]) == message_id)
        ]

    def mention_entities(self, text: str, username: str = BOT["username"]) -> list[Json]:
        handle = f"@{username}"
        return [{"type": "mention", "offset": text.index(handle), "length": len(handle)}]

    def fail_next(self, method: str, code: int, description: str, **parameters: Any) -> None:
        body: Json = {"ok": False, "error_code": code, "description": description}
        if parameters:
            body["parameters"] = parameters
        self.failures.setdefault(method, []).append(body)

    def calls(self, method: str) -> list[Json]:
        return [r["params"] for r in self.requests if r["method"] == method]

    async def wait_for(
        self, method: str, pred: Callable[[Json], bool] = lambda p: True, timeout: float = 5.0
    ) -> Json:
        def found(reqs: list[Json]) -> bool:
            return any(r["method"] == method and pred(r["params"]) for r in reqs)

        reqs = await self.wait_until(found, timeout)
        return next(r["params"] for r in reqs if r["method"] == method and pred(r["params"]))

    async def wait_polls(self, count: int, timeout: float = 5.0) -> None:
        await self.wait_until(lambda _: len(self.polls) >= count, timeout)

    async def _wake(self) -> None:
        async with self._updates_changed:
            self._updates_changed.notify_all()

    # --- server side ----------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> Json:
        raw: dict[str, Any]
        if request.method == "GET":
            raw = dict(request.query)
        elif request.content_type == "application/json":
            raw = await request.json()
        else:  # PTB posts form-encoded fields; structured values arrive as JSON strings
            raw = {}
            for key, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    raw[key] = {"filename": value.filename, "bytes": value.file.read()}
                else:
                    raw[key] = value
        out: Json = {}
        for key, value in raw.items():
            if isinstance(value, str) and value[:1] in "[{":
                try:
                    value = json.loads(value)
                except ValueError:
                    pass
            out[key] = value
        return out

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        if request.match_info["token"] != self.token:
            await self.record({"method": method, "params": params, "status": 401})
            return _json({"ok": False, "error_code": 401, "description": "Unauthorized"}, 401)
        if method == "getUpdates":
            self.polls.append(params)
        failure = self.failures.get(method, [])
        if failure:
            body = failure.pop(0)
            await self.record({"method": method, "params": params, "status": body["error_code"]})
            return _json(body, body["error_code"])
        if method == "getUpdates":
            # Recorded on arrival: a held long poll is visible to waiters at once.
            await self.record({"method": method, "params": params, "status": 200})
            result: Any = await self._get_updates(params)
            return _json({"ok": True, "result": result})
        handler = getattr(self, f"m_{method}", None)
        try:
            result = await handler(params) if handler is not None else True
        except ApiError as exc:
            await self.record({"method": method, "params": params, "status": exc.code})
            body = {"ok": False, "error_code": exc.code, "description": exc.description}
            return _json(body, exc.code)
        await self.record({"method": method, "params": params, "status": 200})
        return _json({"ok": True, "result": result})

    async def _file(self, request: web.Request) -> web.Response:
        await self.record({"method": "file", "params": {"path": request.match_info["path"]}})
        if self.file_delay:
            await asyncio.sleep(self.file_delay)
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        data = self.files.get(request.match_info["path"])
        return web.Response(body=data) if data is not None else web.Response(status=404)

    async def _get_updates(self, p: Json) -> list[Json]:
        offset = int(p.get("offset") or 0)
        timeout = float(p.get("timeout") or 0)
        # Updates below the offset are confirmed: drop them.
        self.updates = [u for u in self.updates if u["update_id"] >= offset]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with self._updates_changed:
            while not self.updates:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    await asyncio.wait_for(self._updates_changed.wait(), left)
                except TimeoutError:
                    break
        return self.updates[: int(p.get("limit") or 100)]

    def _message(self, p: Json, **extra: Any) -> Json:
        chat_id = str(p.get("chat_id"))
        kind = "private" if not chat_id.startswith("-") else "supergroup"
        return {
            "message_id": next(self._mid),
            "date": int(time.time()),
            "from": BOT,
            "chat": {
                "id": int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id,
                "type": kind,
            },
            **extra,
        }

    async def m_getMe(self, p: Json) -> Json:
        return BOT

    async def m_sendMessage(self, p: Json) -> Json:
        sent = self._message(p, text=p.get("text", ""))
        self.messages[(str(p.get("chat_id")), int(sent["message_id"]))] = sent["text"]
        return sent

    async def m_getFile(self, p: Json) -> Json:
        file_id = str(p.get("file_id"))
        path = self._file_paths.get(file_id)
        if path is None:
            raise web.HTTPBadRequest(
                text=json.dumps(
                    {"ok": False, "error_code": 400, "description": "Bad Request: invalid file_id"}
                ),
                content_type="application/json",
            )
        return {
            "file_id": file_id,
            "file_unique_id": "u" + file_id,
            "file_size": len(self.files[path]),
            "file_path": path,
        }

    async def m_sendPhoto(self, p: Json) -> Json:
        sizes = [{"file_id": "sent-photo", "file_unique_id": "sp", "width": 1, "height": 1}]
        return self._message(p, photo=sizes, caption=p.get("caption"))

    async def m_sendDocument(self, p: Json) -> Json:
        doc = p.get("document")
        name = doc.get("filename") if isinstance(doc, dict) else None
        sent = {"file_id": "sent-doc", "file_unique_id": "sd", "file_name": name}
        return self._message(p, document=sent, caption=p.get("caption"))

    async def m_sendVoice(self, p: Json) -> Json:
        upload = p.get("voice")
        size = len(upload["bytes"]) if isinstance(upload, dict) else 0
        sent = {"file_id": "sent-voice", "file_unique_id": "sv", "duration": 1, "file_size": size}
        return self._message(p, voice=sent, caption=p.get("caption"))

    async def m_answerCallbackQuery(self, p: Json) -> bool:
        if not p.get("callback_query_id"):
            raise ApiError(400, "Bad Request: query is too old and response timeout expired")
        return True

    async def m_editMessageText(self, p: Json) -> Json:
        key = (str(p.get("chat_id")), int(p["message_id"]))
        if key not in self.messages:
            raise ApiError(400, "Bad Request: message to edit not found")
        text = p.get("text", "")
        if self.messages[key] == text:
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply"
                " markup are exactly the same as a current content and reply markup of the"
                " message",
            )
        self.messages[key] = text
        return {
            **self._message(p, text=text),
            "message_id": int(p["message_id"]),
            "edit_date": int(time.time()),
        }

    async def m_deleteMessage(self, p: Json) -> bool:
        key = (str(p.get("chat_id")), int(p["message_id"]))
        if self.messages.pop(key, None) is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        return True

    async def m_setMessageReaction(self, p: Json) -> bool:
        key = (str(p.get("chat_id")), int(p["message_id"]))
        reaction = p.get("reaction") or []
        self.reactions[key] = [r.get("emoji", "") for r in reaction if isinstance(r, dict)]
        return True
