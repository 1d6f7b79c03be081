"""A resident on the web chat, driven over HTTP like a browser without JavaScript: read the page,
press a button or type, follow the redirect, read the page again."""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import CookieJar, FormData
from aiohttp.test_utils import TestClient, TestServer

from bot.app import App
from bot.channels.webchat.guard import Limits
from bot.channels.webchat.routes import add_webchat_routes
from bot.web.server import build_web_app

_n = itertools.count(1)


@dataclass
class Page:
    status: int
    html: str

    def field(self, name: str) -> str:
        found = re.search(rf'name="{name}" value="([^"]*)"', self.html)
        assert found, f"no {name} on the page"
        return html.unescape(found.group(1))

    @property
    def messages(self) -> list[str]:
        return [html.unescape(m) for m in re.findall(r'<div class="msg bot"><p class="text">(.*?)</p></div>',
                                                     self.html, re.S)]

    @property
    def buttons(self) -> dict[str, str]:
        """label -> value of the last message's buttons."""
        return {html.unescape(label): html.unescape(value) for value, label in
                re.findall(r'name="choice" value="([^"]*)">(.*?)</button>', self.html)}

    def button(self, words: str) -> str:
        for label, value in self.buttons.items():
            if words.lower() in label.lower():
                return value
        raise AssertionError(f"no button {words!r} among {list(self.buttons)}")

    @property
    def secret(self) -> tuple[str, str] | None:
        t = re.search(r"data-ticket>([^<]+)<", self.html)
        s = re.search(r"data-secret>([^<]+)<", self.html)
        return (t.group(1), s.group(1)) if t and s else None


class Resident:
    def __init__(self, client: TestClient[Any, Any]) -> None:
        self.client = client
        self.page: Page | None = None

    async def open(self, path: str = "/chat") -> Page:
        r = await self.client.get(path)
        self.page = Page(r.status, await r.text())
        return self.page

    async def post(self, action: str = "/chat/send", data: dict[str, Any] | FormData | None = None,
                   csrf: str | None = None) -> Page:
        assert self.page is not None
        body = data if isinstance(data, FormData) else FormData()
        if not isinstance(data, FormData):
            for k, v in (data or {}).items():
                body.add_field(k, v)
        body.add_field("csrf", self.page.field("csrf") if csrf is None else csrf)
        body.add_field("n", f"nonce{next(_n):012d}abcdef")
        r = await self.client.post(action, data=body)
        self.page = Page(r.status, await r.text())
        return self.page

    async def say(self, text: str) -> Page:
        return await self.post(data={"text": text})

    async def press(self, words: str) -> Page:
        assert self.page is not None
        return await self.post(data={"choice": self.page.button(words)})

    async def photo(self, data: bytes, name: str = "bukti.jpg", ctype: str = "image/jpeg") -> Page:
        form = FormData()
        form.add_field("photo", data, filename=name, content_type=ctype)
        return await self.post(data=form)


@asynccontextmanager
async def chat_client(app: App, limits: Limits | None = None) -> AsyncIterator[TestClient[Any, Any]]:
    web_app = build_web_app()
    chat = add_webchat_routes(web_app, app, limits)
    client: TestClient[Any, Any] = TestClient(TestServer(web_app), cookie_jar=CookieJar(unsafe=True))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
        if chat is not None:
            chat.close()
