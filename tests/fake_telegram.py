"""A fake Telegram Bot API server for tests: real HTTP on 127.0.0.1, the real request format.

aiogram's real ``Bot`` talks to it through ``TelegramAPIServer.from_base(server.base_url)``.
It keeps what a user would see (messages per chat, edits, callback answers, registered
commands, the webhook) and lets a test queue updates, inject faults (429 with retry_after,
403, 5xx) and apply a server-side rate limit (one budget for all its clients together, like
Telegram's per bot token; ``throttled`` counts the 429s it answered). Waiting is event-driven
(``wait_for``), never a sleep.

    server = FakeTelegram()
    await server.start()
    uid = server.message(user, "/start")          # queue an update for getUpdates
    await server.wait_for(lambda: len(server.sent) >= 2)
    server.press(user, server.sent[-1], "Setuju") # press a button by its label
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, web
from aiohttp.web_request import FileField

TOKEN = "123456789:TEST-token-for-the-fake-bot-api"
JSONish = ("reply_markup", "allowed_updates", "commands", "scope", "link_preview_options",
           "reply_parameters", "entities", "caption_entities")


@dataclass
class User:
    id: int
    first_name: str = "Warga"
    last_name: str | None = None
    language_code: str | None = "id"
    username: str | None = None

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            d["last_name"] = self.last_name
        if self.language_code:
            d["language_code"] = self.language_code
        if self.username:
            d["username"] = self.username
        return d


def _picture(width: int = 160, height: int = 120) -> bytes:
    """A small grey PNG, made here so the fake needs no image library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes((150, 160, 170)) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PICTURE = _picture()


@dataclass
class Sent:
    """A message the bot sent (sendMessage / sendPhoto / sendDocument), as the chat shows it now."""

    method: str
    chat_id: int
    message_id: int
    text: str | None
    reply_markup: dict[str, Any] | None
    params: dict[str, Any]
    edits: list[str] = field(default_factory=list)

    @property
    def buttons(self) -> list[list[dict[str, Any]]]:
        return (self.reply_markup or {}).get("inline_keyboard", [])

    def labels(self) -> list[str]:
        return [b["text"] for row in self.buttons for b in row]

    @property
    def thread(self) -> int | None:
        """The forum topic (``message_thread_id``) the message was sent into, if any."""
        value = self.params.get("message_thread_id")
        return int(value) if value not in (None, "") else None

    def data_for(self, label: str) -> str:
        """The button showing ``label``, with or without the number in front ("4. Sangat sesuai")."""
        for row in self.buttons:
            for b in row:
                if b["text"] == label or unkeyed(b["text"]) == label:
                    return str(b["callback_data"])
        raise KeyError(f"no button {label!r} in {self.labels()}")


def unkeyed(label: str) -> str:
    """A button's words without the number the bot shows in front: "4. Sangat sesuai" -> "Sangat sesuai"."""
    key, sep, rest = label.partition(". ")
    return rest if sep and key.isdigit() else label


@dataclass
class Fault:
    method: str | None  # None: any method
    status: int
    description: str
    retry_after: int | None = None
    count: int = 1
    chat_id: int | None = None


class FakeTelegram:
    """The fake server. ``start()``/``stop()`` may be called again (a restart keeps the state)."""

    def __init__(
        self,
        token: str = TOKEN,
        username: str = "PrimaTestBot",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token = token
        self.bot_user = {"id": int(token.split(":")[0]), "is_bot": True, "first_name": "Prima",
                         "username": username, "can_join_groups": True,
                         "can_read_all_group_messages": False, "supports_inline_queries": False}
        self.username = username
        self.clock = clock
        self.port = 0
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.sent: list[Sent] = []
        self.callback_answers: list[dict[str, Any]] = []
        self.webhook_calls: list[str] = []  # Bot API calls made from a webhook's answer
        self.commands: dict[str, list[dict[str, Any]]] = {}  # language_code ("" default) -> list
        self.webhook: dict[str, Any] | None = None
        self.faults: list[Fault] = []
        self.blocked: set[int] = set()
        self.rate_limit: float | None = None  # messages per second, answered with 429 above it
        self.throttled = 0  # sends answered 429 by that limit (from every client together)
        self._bucket: tuple[float, float] = (0.0, 0.0)  # (tokens, at)
        self._updates: list[dict[str, Any]] = []
        self._next_update = 1000
        self._next_message: dict[int, int] = {}
        self._by_key: dict[tuple[int, int], Sent] = {}
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.forums: set[int] = set()  # supergroups with topics enabled
        self.topics: dict[tuple[int, int], str] = {}  # (chat id, message_thread_id) -> name
        # The bot's membership per group (getChatMember): an admin allowed to manage topics
        # unless a test says otherwise, e.g. {"status": "member"} or can_manage_topics False.
        self.bot_rights: dict[int, dict[str, Any]] = {}
        self._callback_seq = 0
        self._closing = False
        # Outbound faults after the message is stored (it reaches the chat): answered late, or
        # the connection drops instead of the answer. Keyed by chat id.
        self.slow: dict[int, float] = {}  # chat -> seconds before the answer
        self.drop_after_send: dict[int, int] = {}  # chat -> how many sends lose their answer
        self.answered_at: list[tuple[int, float]] = []  # (chat, monotonic time) per answered send
        self.offsets: list[int] = []  # the offset of each getUpdates call that gave one
        # Called with the offset before it confirms anything (tests check what is stored by then).
        self.on_confirm: Callable[[int], None] | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        app.router.add_get("/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.*}", self._file)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        if not self.port:
            server = site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._runner is not None:
            self._closing = True  # end waiting long polls now, not at their timeout
            async with self._changed:
                self._changed.notify_all()
            await self._runner.cleanup()
            self._runner = None
            self._closing = False

    # ------------------------------------------------------------------ test API: updates

    def queue(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue a raw update (an update_id is assigned unless given) for getUpdates."""
        if "update_id" not in update:
            update = {"update_id": self._next_update, **update}
            self._next_update += 1
        self._updates.append(update)
        self._notify()
        return update

    def message_update(
        self, user: User, text: str | None = None, *, chat_id: int | None = None,
        chat_type: str = "private", **extra: Any,
    ) -> dict[str, Any]:
        """Build (not queue) a message update from ``user``; ``extra`` adds photo/location/..."""
        chat: dict[str, Any] = {"id": chat_id if chat_id is not None else user.id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = user.first_name
        else:
            chat["title"] = "Grup Warga"
        self._next_update += 1
        msg: dict[str, Any] = {"message_id": self._next_update, "date": int(time.time()),
                               "chat": chat, "from": user.as_dict(), **extra}
        if text is not None:
            msg["text"] = text
            if text.startswith("/"):
                msg["entities"] = [{"type": "bot_command", "offset": 0,
                                    "length": len(text.split()[0])}]
        return {"update_id": self._next_update, "message": msg}

    @property
    def pending(self) -> list[int]:
        """update_ids not yet confirmed by a getUpdates offset."""
        return [u["update_id"] for u in self._updates]

    def message(self, user: User, text: str | None = None, **kwargs: Any) -> dict[str, Any]:
        return self.queue(self.message_update(user, text, **kwargs))

    def press_update(self, user: User, sent: Sent, label: str | None = None,
                     data: str | None = None) -> dict[str, Any]:
        """Build a callback_query update: ``user`` presses a button of message ``sent``."""
        if data is None:
            assert label is not None
            data = sent.data_for(label)
        self._callback_seq += 1
        self._next_update += 1
        message = self._message_dict(sent)
        return {"update_id": self._next_update, "callback_query": {
            "id": f"cb{self._callback_seq}", "from": user.as_dict(), "message": message,
            "chat_instance": f"ci{sent.chat_id}", "data": data}}

    def press(self, user: User, sent: Sent, label: str | None = None,
              data: str | None = None) -> dict[str, Any]:
        return self.queue(self.press_update(user, sent, label, data))

    # ------------------------------------------------------------------ test API: faults

    def fail_next(self, method: str | None, status: int, description: str = "",
                  retry_after: int | None = None, count: int = 1,
                  chat_id: int | None = None) -> None:
        """The next ``count`` calls of ``method`` (None: any) answer with this error."""
        default = {429: "Too Many Requests: retry after {n}", 403: "Forbidden: bot was blocked by the user",
                   400: "Bad Request: chat not found", 500: "Internal Server Error",
                   502: "Bad Gateway"}.get(status, "Error")
        text = description or default.format(n=retry_after)
        self.faults.append(Fault(method, status, text, retry_after, count, chat_id))

    def block(self, chat_id: int) -> None:
        """The user blocked the bot: every send to them answers 403."""
        self.blocked.add(chat_id)

    # ------------------------------------------------------------------ test API: reading

    def chat(self, chat_id: int) -> list[Sent]:
        return [s for s in self.sent if s.chat_id == chat_id]

    def last(self, chat_id: int) -> Sent:
        return self.chat(chat_id)[-1]

    def calls(self, method: str) -> list[dict[str, Any]]:
        return [p for m, p in self.requests if m.lower() == method.lower()]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds; re-checked whenever the server handles a request."""
        async def waiter() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)
        await asyncio.wait_for(waiter(), timeout)

    async def deliver_webhook(self, update: dict[str, Any], secret: str | None = "use-registered",
                              ) -> int:
        """POST an update to the registered webhook as Telegram does; returns the HTTP status."""
        assert self.webhook is not None, "no webhook registered"
        headers = {}
        token = self.webhook.get("secret_token") if secret == "use-registered" else secret
        if token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = token
        async with ClientSession() as http, \
                http.post(self.webhook["url"], json=update, headers=headers) as resp:
            if resp.status == 200 and resp.content_type == "application/json":
                await self.webhook_call(await resp.json())
            return resp.status

    async def webhook_call(self, body: Any) -> None:
        """Make the Bot API call a webhook's 200 carries, as Telegram does (its outcome is never
        reported back to the bot); ``webhook_calls`` keeps the methods made that way."""
        if not isinstance(body, dict) or not isinstance(body.get("method"), str):
            return
        params = {k: v for k, v in body.items() if k != "method"}
        method = body["method"]
        self.webhook_calls.append(method)
        self.requests.append((method, params))
        handler = getattr(self, f"_m_{method.lower()}", None)
        if handler is not None:
            await handler(params)
        self._notify()

    # ------------------------------------------------------------------ HTTP

    def _notify(self) -> None:
        async def notify() -> None:
            async with self._changed:
                self._changed.notify_all()
        with contextlib.suppress(RuntimeError):  # no loop running: nobody is waiting
            asyncio.get_running_loop().create_task(notify())

    @staticmethod
    def _error(status: int, description: str, retry_after: int | None = None) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        return web.json_response(body, status=status)

    async def _params(self, request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            data: dict[str, Any] = await request.json()
            return data
        form = await request.post()
        params: dict[str, Any] = {}
        for key, value in form.items():
            if isinstance(value, FileField):  # an uploaded file
                params[key] = {"filename": value.filename, "size": len(value.file.read())}
            elif key in JSONish:
                params[key] = json.loads(str(value))
            else:
                params[key] = str(value)
        for key, value in list(params.items()):  # aiogram sends files as "attach://<field>"
            if isinstance(value, str) and value.startswith("attach://"):
                params[key] = params.pop(value.removeprefix("attach://"), value)
        return params

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return self._error(401, "Unauthorized")
        method = request.match_info["method"]
        params = await self._params(request)
        try:
            if method.lower() != "getupdates":
                self.requests.append((method, params))
                fault = self._fault(method, params)
                if fault is not None:
                    return fault
            handler = getattr(self, f"_m_{method.lower()}", None)
            if handler is None:
                return self._error(404, "Not Found: method not found")
            result = await handler(params)
            if isinstance(result, web.Response):
                return result
            chat = int(params["chat_id"]) if str(params.get("chat_id", "")).lstrip("-").isdigit() else None
            if chat is not None and method in ("sendMessage", "sendPhoto", "sendDocument"):
                if chat in self.slow:
                    await asyncio.sleep(self.slow[chat])
                if self.drop_after_send.get(chat, 0) > 0:  # delivered, but the answer is lost
                    self.drop_after_send[chat] -= 1
                    assert request.transport is not None
                    request.transport.abort()
                    raise asyncio.CancelledError
                self.answered_at.append((chat, time.monotonic()))
            return web.json_response({"ok": True, "result": result})
        finally:
            self._notify()

    def _fault(self, method: str, params: dict[str, Any]) -> web.Response | None:
        chat = int(params["chat_id"]) if "chat_id" in params else None
        for fault in self.faults:
            if fault.method not in (None, method) or fault.count <= 0:
                continue
            if fault.chat_id is not None and fault.chat_id != chat:
                continue
            fault.count -= 1
            return self._error(fault.status, fault.description, fault.retry_after)
        sending = method in ("sendMessage", "sendPhoto", "sendDocument")
        if sending and chat in self.blocked:
            return self._error(403, "Forbidden: bot was blocked by the user")
        if sending and self.rate_limit:
            now = self.clock()
            tokens, at = self._bucket
            tokens = min(self.rate_limit, tokens + (now - at) * self.rate_limit) if at else self.rate_limit
            if tokens < 1:
                self._bucket = (tokens, now)
                self.throttled += 1
                wait = max(1, int((1 - tokens) / self.rate_limit + 0.999))
                return self._error(429, f"Too Many Requests: retry after {wait}", wait)
            self._bucket = (tokens - 1, now)
        return None

    def _message_dict(self, sent: Sent) -> dict[str, Any]:
        chat_type = "private" if sent.chat_id > 0 else "group"
        msg: dict[str, Any] = {"message_id": sent.message_id, "date": int(time.time()),
                               "chat": {"id": sent.chat_id, "type": chat_type},
                               "from": self.bot_user}
        if sent.method == "sendPhoto":
            msg["photo"] = [{"file_id": f"ph{sent.message_id}", "file_unique_id": f"u{sent.message_id}",
                             "width": 800, "height": 600}]
            if sent.text:
                msg["caption"] = sent.text
        elif sent.method == "sendDocument":
            msg["document"] = {"file_id": f"doc{sent.message_id}", "file_unique_id": f"d{sent.message_id}",
                               "file_name": (sent.params.get("document") or {}).get("filename", "file")}
            if sent.text:
                msg["caption"] = sent.text
        else:
            msg["text"] = sent.text
        if sent.reply_markup:
            msg["reply_markup"] = sent.reply_markup
        if sent.thread is not None:
            msg["message_thread_id"] = sent.thread
            msg["is_topic_message"] = True
        return msg

    def _store(self, method: str, params: dict[str, Any], text: str | None) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        message_id = self._next_message.get(chat_id, 0) + 1
        self._next_message[chat_id] = message_id
        sent = Sent(method, chat_id, message_id, text, params.get("reply_markup"), params)
        self.sent.append(sent)
        self._by_key[(chat_id, message_id)] = sent
        return self._message_dict(sent)

    # ------------------------------------------------------------------ methods

    async def _m_getme(self, params: dict[str, Any]) -> Any:
        return self.bot_user

    async def _m_getfile(self, params: dict[str, Any]) -> Any:
        """Every file id is a small picture (the web desk shows residents' photos)."""
        file_id = str(params.get("file_id", ""))
        return {"file_id": file_id, "file_unique_id": f"u{file_id}"[:32], "file_size": len(PICTURE),
                "file_path": f"photos/{file_id}.png"}

    async def _file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        return web.Response(body=PICTURE, content_type="image/png")

    async def _m_getupdates(self, params: dict[str, Any]) -> Any:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        if offset:  # everything below offset is confirmed and forgotten
            self.offsets.append(offset)
            if self.on_confirm is not None:
                self.on_confirm(offset)
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        if not self._updates and timeout > 0:
            with contextlib.suppress(TimeoutError):
                await self.wait_for(lambda: bool(self._updates) or self._closing, timeout)
        return self._updates[:limit]

    async def _m_sendmessage(self, params: dict[str, Any]) -> Any:
        text = str(params.get("text") or "")
        if not text.strip():
            return self._error(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            return self._error(400, "Bad Request: message is too long")
        return self._store("sendMessage", params, text)

    async def _m_sendphoto(self, params: dict[str, Any]) -> Any:
        return self._store("sendPhoto", params, params.get("caption"))

    async def _m_senddocument(self, params: dict[str, Any]) -> Any:
        return self._store("sendDocument", params, params.get("caption"))

    def _find(self, params: dict[str, Any]) -> Sent | web.Response:
        key = (int(params.get("chat_id") or 0), int(params.get("message_id") or 0))
        sent = self._by_key.get(key)
        if sent is None:
            return self._error(400, "Bad Request: message to edit not found")
        return sent

    async def _m_editmessagetext(self, params: dict[str, Any]) -> Any:
        sent = self._find(params)
        if isinstance(sent, web.Response):
            return sent
        text = str(params.get("text") or "")
        markup = params.get("reply_markup")
        if text == sent.text and markup == sent.reply_markup:
            return self._error(400, "Bad Request: message is not modified")
        sent.text, sent.reply_markup = text, markup
        sent.edits.append(text)
        return self._message_dict(sent)

    async def _m_editmessagereplymarkup(self, params: dict[str, Any]) -> Any:
        sent = self._find(params)
        if isinstance(sent, web.Response):
            return sent
        sent.reply_markup = params.get("reply_markup")
        return self._message_dict(sent)

    async def _m_createforumtopic(self, params: dict[str, Any]) -> Any:
        chat_id = int(params.get("chat_id") or 0)
        if chat_id not in self.forums:
            return self._error(400, "Bad Request: the chat is not a forum")
        name = str(params.get("name") or "")
        if not 1 <= len(name) <= 128:
            return self._error(400, "Bad Request: TOPIC_NAME_INVALID")
        thread = self._next_message.get(chat_id, 0) + 1  # topics are messages too
        self._next_message[chat_id] = thread
        self.topics[(chat_id, thread)] = name
        return {"message_thread_id": thread, "name": name, "icon_color": 7322096}

    async def _m_editforumtopic(self, params: dict[str, Any]) -> Any:
        chat_id, thread = int(params.get("chat_id") or 0), int(params.get("message_thread_id") or 0)
        if (chat_id, thread) not in self.topics:
            return self._error(400, "Bad Request: message thread not found")
        name = str(params.get("name") or "")
        if not 1 <= len(name) <= 128:
            return self._error(400, "Bad Request: TOPIC_NAME_INVALID")
        if self.topics[(chat_id, thread)] == name:
            return self._error(400, "Bad Request: TOPIC_NOT_MODIFIED")
        self.topics[(chat_id, thread)] = name
        return True

    async def _m_getchat(self, params: dict[str, Any]) -> Any:
        chat_id = int(params.get("chat_id") or 0)
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "Warga", "accent_color_id": 0,
                    "max_reaction_count": 11, "accepted_gift_types": self._gift_types()}
        forum = chat_id in self.forums
        # topics need a supergroup (ids -100...); a basic group is "group" and never a forum
        kind = "supergroup" if forum or str(chat_id).startswith("-100") else "group"
        chat: dict[str, Any] = {"id": chat_id, "type": kind, "title": "Grup Petugas",
                                "accent_color_id": 0, "max_reaction_count": 11,
                                "accepted_gift_types": self._gift_types()}
        if forum:
            chat["is_forum"] = True
        return chat

    @staticmethod
    def _gift_types() -> dict[str, bool]:
        return {"unlimited_gifts": False, "limited_gifts": False, "unique_gifts": False,
                "premium_subscription": False, "gifts_from_channels": False}

    async def _m_getchatmember(self, params: dict[str, Any]) -> Any:
        chat_id, user_id = int(params.get("chat_id") or 0), int(params.get("user_id") or 0)
        if user_id != self.bot_user["id"]:
            return {"status": "member", "user": {"id": user_id, "is_bot": False, "first_name": "X"}}
        rights = {"status": "administrator", "can_manage_topics": True, **self.bot_rights.get(chat_id, {})}
        member: dict[str, Any] = {"user": self.bot_user, "status": rights["status"]}
        if rights["status"] == "administrator":
            flags = ("can_manage_chat", "can_delete_messages", "can_manage_video_chats",
                     "can_restrict_members", "can_promote_members", "can_change_info",
                     "can_invite_users", "can_post_stories", "can_edit_stories",
                     "can_delete_stories", "can_send_welcome_messages")
            member.update({"can_be_edited": False, "is_anonymous": False,
                           **{flag: True for flag in flags},
                           "can_manage_topics": bool(rights["can_manage_topics"])})
        return member

    async def _m_answercallbackquery(self, params: dict[str, Any]) -> Any:
        self.callback_answers.append(params)
        return True

    async def _m_setmycommands(self, params: dict[str, Any]) -> Any:
        self.commands[str(params.get("language_code") or "")] = list(params.get("commands") or [])
        return True

    async def _m_setwebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = params
        return True

    async def _m_deletewebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = None
        return True

    async def _m_getwebhookinfo(self, params: dict[str, Any]) -> Any:
        return {"url": (self.webhook or {}).get("url", ""), "has_custom_certificate": False,
                "pending_update_count": len(self._updates)}
