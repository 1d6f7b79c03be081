"""A fake WhatsApp Cloud API (Graph API) for tests: real HTTP on 127.0.0.1, the real formats.

The sender talks to it through ``WHATSAPP_API_BASE``. It checks the bearer token and the
limits Meta enforces on interactive messages (3 buttons, 20-character unique titles, 10 list
rows, 24/72-character row texts, 1024-character bodies), records every accepted message as
the resident's phone would show it, and answers with any Graph API error a test queues
(130429, 131056, 131047, 131026 ...). It also builds webhook bodies in Meta's shapes, signed
like Meta signs them, for posting to the bot.

    graph = FakeGraph()
    await graph.start()
    graph.fail_next(130429)                  # the next send gets "throughput exceeded"
    msg = graph.last_to("6281234567890")     # what the resident sees
    body = webhook(text_message("6281234567890", "halo"))
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN = "EAAG-test-token"
PHONE_NUMBER_ID = "106540352242922"
APP_SECRET = "app-secret-for-tests"
VERIFY_TOKEN = "verify-me"
VERSION = "v26.0"
BUSINESS_ACCOUNT_ID = "102290129340398"

ERRORS: dict[int, tuple[int, str]] = {
    130429: (400, "Rate limit hit"),
    131056: (400, "(Business Account, Consumer Account) pair rate limit hit"),
    131047: (400, "Re-engagement message"),
    131026: (400, "Message undeliverable"),
    131009: (400, "Parameter value is not valid"),
    131000: (500, "Something went wrong"),
    132001: (404, "Template name does not exist in the translation"),
    190: (401, "Error validating access token"),
}


@dataclass
class Sent:
    """One accepted message (what the resident's phone shows)."""

    wamid: str
    to: str
    type: str
    body: dict[str, Any]

    @property
    def text(self) -> str:
        if self.type == "text":
            return str(self.body["text"]["body"])
        if self.type == "interactive":
            return str(self.body["interactive"]["body"]["text"])
        if self.type == "template":
            params = self.body["template"]["components"][0]["parameters"]
            return str(params[0]["text"])
        media = self.body.get(self.type) or {}
        return str(media.get("caption") or "")

    @property
    def interactive(self) -> dict[str, Any]:
        return dict(self.body.get("interactive") or {})

    def options(self) -> list[dict[str, Any]]:
        """Buttons or list rows: dicts with ``id`` and ``title`` (and maybe ``description``)."""
        inter = self.interactive
        if inter.get("type") == "button":
            return [b["reply"] for b in inter["action"]["buttons"]]
        if inter.get("type") == "list":
            return [r for s in inter["action"]["sections"] for r in s["rows"]]
        return []

    def titles(self) -> list[str]:
        return [str(o["title"]) for o in self.options()]

    def option(self, title: str) -> dict[str, Any]:
        for o in self.options():
            if o["title"] == title or unkeyed(str(o["title"])) == title:
                return o
        raise KeyError(f"no option {title!r} in {self.titles()}")


def unkeyed(title: str) -> str:
    """An option's words without the number the bot shows in front: "1. Setuju" -> "Setuju"."""
    key, sep, rest = title.partition(". ")
    return rest if sep and key.isdigit() else title


@dataclass
class Fault:
    code: int
    times: int = 1
    http_status: int | None = None
    to: str | None = None  # only for this recipient


@dataclass
class FakeGraph:
    token: str = TOKEN
    phone_number_id: str = PHONE_NUMBER_ID
    sent: list[Sent] = field(default_factory=list)
    refused: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    uploads: list[dict[str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    requests: int = 0
    media: dict[str, bytes] = field(default_factory=dict)  # residents' media, by id
    gone: set[str] = field(default_factory=set)  # media ids Meta no longer has
    downloads: list[str] = field(default_factory=list)
    drop_after_send: dict[str, int] = field(default_factory=dict)  # recipient -> sends whose answer is lost
    app_secret: str = APP_SECRET  # checks appsecret_proof when a call carries one
    business_account_id: str = BUSINESS_ACCOUNT_ID
    templates: list[dict[str, Any]] = field(default_factory=list)  # message_templates entries

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._changed = asyncio.Event()

    # -------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.router.add_post("/{version}/{phone}/messages", self._messages)
        app.router.add_post("/{version}/{phone}/media", self._media)
        app.router.add_get("/download/{media_id}", self._media_download)  # before the catch-all
        app.router.add_get("/{version}/{waba}/message_templates", self._templates)
        app.router.add_get("/{version}/{media_id}", self._media_info)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{VERSION}"

    # -------------------------------------------------------------- test controls

    def fail_next(self, code: int, times: int = 1, http_status: int | None = None,
                  to: str | None = None) -> None:
        self.faults.append(Fault(code, times, http_status, to))

    def to(self, wa_id: str) -> list[Sent]:
        return [s for s in self.sent if s.to == wa_id]

    def last_to(self, wa_id: str) -> Sent:
        msgs = self.to(wa_id)
        assert msgs, f"nothing was sent to {wa_id}"
        return msgs[-1]

    def last_question(self, wa_id: str) -> Sent:
        for s in reversed(self.to(wa_id)):
            if s.options():
                return s
        raise AssertionError(f"no message with buttons or a list to {wa_id}")

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async def wait() -> None:
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), timeout)

    # -------------------------------------------------------------- handlers

    def _error(self, code: int, http_status: int | None = None, details: str | None = None) -> web.Response:
        status, message = ERRORS.get(code, (400, "Error"))
        err: dict[str, Any] = {"message": f"({'#'}{code}) {message}", "type": "OAuthException",
                               "code": code, "fbtrace_id": "Atest"}
        if details:
            err["error_data"] = {"messaging_product": "whatsapp", "details": details}
        return web.json_response({"error": err}, status=http_status or status)

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    async def _messages(self, request: web.Request) -> web.Response:
        self.requests += 1
        try:
            if not self._authorised(request):
                return self._error(190)
            if request.match_info["phone"] != self.phone_number_id:
                return self._error(100, 400, "Unsupported post request: unknown phone number id")
            body = await request.json()
            to = str(body.get("to") or body.get("recipient") or "")
            for fault in self.faults:
                if fault.times > 0 and (fault.to is None or fault.to == to):
                    fault.times -= 1
                    self.refused.append((fault.code, body))
                    return self._error(fault.code, fault.http_status)
            problem = check_message(body)
            if problem:
                self.refused.append((131009, body))
                return self._error(131009, 400, problem)
            wamid = f"wamid.TEST{next(self._ids):06d}"
            self.sent.append(Sent(wamid, to, str(body["type"]), body))
            if self.drop_after_send.get(to, 0) > 0:  # delivered, then the connection drops
                self.drop_after_send[to] -= 1
                assert request.transport is not None
                request.transport.abort()
                raise asyncio.CancelledError
            return web.json_response({"messaging_product": "whatsapp",
                                      "contacts": [{"input": to, **({"wa_id": to} if body.get("to")
                                                                     else {"user_id": to})}],
                                      "messages": [{"id": wamid}]})
        finally:
            self._changed.set()

    def _media_bytes(self, media_id: str) -> bytes:
        return self.media.get(media_id, b"\xff\xd8\xff\xe0JPEG " + media_id.encode())

    async def _media_info(self, request: web.Request) -> web.Response:
        media_id = request.match_info["media_id"]
        if not self._authorised(request):
            return self._error(190)
        if request.query.get("appsecret_proof") not in (None, proof(self.token, self.app_secret)):
            return self._error(100, 400, "Invalid appsecret_proof provided in the API argument")
        if media_id == self.phone_number_id:  # the phone number node: a harmless read
            return web.json_response({"id": media_id, "display_phone_number": "+62 811-0000-0000",
                                      "verified_name": "Prima Test", "quality_rating": "GREEN"})
        if "display_phone_number" in request.query.get("fields", ""):  # asked as a phone number
            return self._error(100, 400, f"Unsupported get request. Object with ID '{media_id}' "
                               "does not exist")
        if media_id in self.gone:
            return self._error(100, 400, "Unsupported get request: media does not exist")
        data = self._media_bytes(media_id)
        return web.json_response({
            "messaging_product": "whatsapp", "id": media_id, "mime_type": "image/jpeg",
            "sha256": hashlib.sha256(data).hexdigest(), "file_size": len(data),
            "url": f"http://127.0.0.1:{self.port}/download/{media_id}"})

    async def _templates(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._error(190)
        if request.match_info["waba"] != self.business_account_id:
            return self._error(100, 400, "Unsupported get request: unknown business account id")
        name = request.query.get("name")
        data = [t for t in self.templates if name is None or t.get("name") == name]
        return web.json_response({"data": data, "paging": {}})

    async def _media_download(self, request: web.Request) -> web.Response:
        if not self._authorised(request):  # Meta wants the token on the download too
            return web.Response(status=401)
        media_id = request.match_info["media_id"]
        self.downloads.append(media_id)
        return web.Response(body=self._media_bytes(media_id), content_type="image/jpeg")

    async def _media(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._error(190)
        form = await request.post()
        file = form.get("file")
        size = len(file.file.read()) if isinstance(file, web.FileField) else 0
        media_id = f"media-{next(self._ids)}"
        self.uploads.append({"id": media_id, "type": form.get("type"), "size": size,
                             "messaging_product": form.get("messaging_product")})
        return web.json_response({"id": media_id})


def check_message(body: dict[str, Any]) -> str | None:
    """The limits Meta enforces; a message breaking one is refused with 131009."""
    if body.get("messaging_product") != "whatsapp" or not (body.get("to") or body.get("recipient")):
        return "messaging_product and to (a phone number) or recipient (a BSUID) are required"
    if body.get("to") and not str(body["to"]).lstrip("+").isdigit():
        return "to takes a phone number; a business-scoped user id goes in recipient"
    kind = body.get("type")
    if kind == "text":
        text = body["text"]["body"]
        return None if 0 < len(text) <= 4096 else f"text body length {len(text)}"
    if kind == "interactive":
        inter = body["interactive"]
        if not 0 < len(inter["body"]["text"]) <= 1024:
            return "interactive body must be 1-1024 characters"
        if inter["type"] == "button":
            buttons = inter["action"]["buttons"]
            titles = [b["reply"]["title"] for b in buttons]
            if not 1 <= len(buttons) <= 3:
                return "1-3 buttons allowed"
            if any(not 0 < len(t) <= 20 for t in titles) or len(set(titles)) != len(titles):
                return "button titles must be unique, 1-20 characters"
            if any(len(b["reply"]["id"]) > 256 for b in buttons):
                return "button id over 256 characters"
            return None
        if inter["type"] == "list":
            rows = [r for s in inter["action"]["sections"] for r in s["rows"]]
            if not 1 <= len(rows) <= 10:
                return "1-10 rows allowed"
            if not 0 < len(inter["action"]["button"]) <= 20:
                return "list button 1-20 characters"
            for r in rows:
                if not 0 < len(r["title"]) <= 24 or len(r.get("description", "")) > 72 or len(r["id"]) > 200:
                    return f"bad row {r}"
            if len({r["id"] for r in rows}) != len(rows):
                return "row ids must be unique"
            return None
        return f"unknown interactive type {inter['type']}"
    if kind == "template":
        t = body["template"]
        for comp in t.get("components", []):
            for p in comp.get("parameters", []):
                text = p.get("text", "")
                if "\n" in text or "\t" in text or "     " in text:
                    return "template parameters may not hold newlines, tabs or 5 spaces"
        return None if t.get("name") and t.get("language", {}).get("code") else "template name/language"
    if kind in ("image", "document"):
        return None if body[kind].get("id") or body[kind].get("link") else "media id required"
    return f"unsupported type {kind}"


# ---------------------------------------------------------------------- webhook bodies


_wamids = itertools.count(1)


def new_wamid() -> str:
    return f"wamid.IN{next(_wamids):08d}"


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def proof(token: str, secret: str = APP_SECRET) -> str:
    """``appsecret_proof``: HMAC-SHA256 of the access token keyed with the app secret."""
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def webhook(*, messages: list[dict[str, Any]] | None = None, statuses: list[dict[str, Any]] | None = None,
            contacts: list[dict[str, Any]] | None = None,
            phone_number_id: str = PHONE_NUMBER_ID) -> dict[str, Any]:
    """A ``whatsapp_business_account`` notification as Meta posts it."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "6281100000000", "phone_number_id": phone_number_id},
    }
    if contacts is not None:
        value["contacts"] = contacts
    if messages is not None:
        value["messages"] = messages
    if statuses is not None:
        value["statuses"] = statuses
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}]}


def contact(wa_id: str, name: str = "Siti Aminah", user_id: str | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"profile": {"name": name}, "wa_id": wa_id}
    if user_id:
        c["user_id"] = user_id
    return c


def message(wa_id: str, kind: str, content: dict[str, Any], *, ts: int = 1764036000,
            msg_id: str | None = None, context: str | None = None) -> dict[str, Any]:
    m: dict[str, Any] = {"from": wa_id, "id": msg_id or new_wamid(), "timestamp": str(ts), "type": kind,
                         kind: content}
    if context:
        m["context"] = {"from": "6281100000000", "id": context}
    return m


def text_message(wa_id: str, text: str, **kw: Any) -> dict[str, Any]:
    return message(wa_id, "text", {"body": text}, **kw)


def button_reply(wa_id: str, option: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return message(wa_id, "interactive",
                   {"type": "button_reply", "button_reply": {"id": option["id"], "title": option["title"]}}, **kw)


def list_reply(wa_id: str, option: dict[str, Any], **kw: Any) -> dict[str, Any]:
    reply = {"id": option["id"], "title": option["title"]}
    if option.get("description"):
        reply["description"] = option["description"]
    return message(wa_id, "interactive", {"type": "list_reply", "list_reply": reply}, **kw)


def image_message(wa_id: str, caption: str | None = None, **kw: Any) -> dict[str, Any]:
    img: dict[str, Any] = {"mime_type": "image/jpeg", "sha256": "Xl1f4tCQ0wXXq3mDjVjJQw==",
                           "id": f"media-in-{next(_wamids)}"}
    if caption:
        img["caption"] = caption
    return message(wa_id, "image", img, **kw)


def location_message(wa_id: str, lat: float, lon: float, **kw: Any) -> dict[str, Any]:
    return message(wa_id, "location", {"latitude": lat, "longitude": lon, "name": "Kantor Dukcapil",
                                       "address": "Jl. Sudirman, Muara Bungo"}, **kw)


def sticker_message(wa_id: str, **kw: Any) -> dict[str, Any]:
    return message(wa_id, "sticker", {"mime_type": "image/webp", "sha256": "abc", "id": "media-st",
                                      "animated": False}, **kw)


def status(wamid: str, state: str, wa_id: str, *, ts: int = 1764036100,
           error_code: int | None = None) -> dict[str, Any]:
    st: dict[str, Any] = {"id": wamid, "status": state, "timestamp": str(ts), "recipient_id": wa_id}
    if state in ("sent", "delivered"):
        st["conversation"] = {"id": "conv-1", "origin": {"type": "service"}}
        st["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "service"}
    if error_code is not None:
        _, title = ERRORS.get(error_code, (400, "Error"))
        st["errors"] = [{"code": error_code, "title": title, "message": title,
                         "error_data": {"details": f"{title} (test)"}}]
    return st


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
