"""Wiring for WhatsApp tests: the real channel on the real aiohttp app, the fake Graph API.

Webhooks are posted over HTTP to 127.0.0.1 with Meta's signature; the channel answers 200,
processes in the background, and ``post`` waits for that processing before returning.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from bot.app import App
from bot.channels.whatsapp.channel import WEBHOOK_PATH, WhatsAppChannel
from bot.outbox.dispatcher import Dispatcher, TickStats
from bot.outbox.ratelimit import RateLimiter, whatsapp_limits
from bot.web.server import build_web_app
from tests import fake_graph as fg
from tests.conftest import FakeClock, make_app


def wa_settings(graph: fg.FakeGraph, **extra: Any) -> dict[str, Any]:
    return {
        "whatsapp_token": graph.token,
        "whatsapp_phone_number_id": graph.phone_number_id,
        "whatsapp_app_secret": fg.APP_SECRET,
        "whatsapp_verify_token": fg.VERIFY_TOKEN,
        "whatsapp_api_base": graph.base_url,
        **extra,
    }


class VirtualTime:
    """Monotonic time for the rate limiter: sleeping moves it on, nothing waits for real."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.t += max(0.0, seconds)


@dataclass
class WA:
    app: App
    clock: FakeClock
    graph: fg.FakeGraph
    channel: WhatsAppChannel
    http: TestClient[Any, Any]
    dispatcher: Dispatcher

    async def post(self, body: dict[str, Any] | bytes, signature: str | None = "good") -> int:
        """Post a webhook; wait until it was processed. ``signature``: good, bad or None."""
        raw = body if isinstance(body, bytes) else fg.encode(body)
        headers = {"Content-Type": "application/json"}
        if signature == "good":
            headers["X-Hub-Signature-256"] = fg.sign(raw)
        elif signature is not None:
            headers["X-Hub-Signature-256"] = signature
        resp = await self.http.post(WEBHOOK_PATH, data=raw, headers=headers)
        await resp.read()
        await self.channel.idle()
        return resp.status

    async def send(self, wa_id: str, msg: dict[str, Any], name: str = "Siti Aminah",
                   user_id: str | None = None) -> list[fg.Sent]:
        """The resident sends one message; returns what the bot sent them in answer."""
        before = len(self.graph.to(wa_id))
        status = await self.post(fg.webhook(messages=[msg], contacts=[fg.contact(wa_id, name, user_id)]))
        assert status == 200
        return self.graph.to(wa_id)[before:]

    async def say(self, wa_id: str, text: str) -> list[fg.Sent]:
        return await self.send(wa_id, fg.text_message(wa_id, text))

    async def tap(self, wa_id: str, title: str, on: fg.Sent | None = None) -> list[fg.Sent]:
        """Tap a reply button or a list row by its title on the last question."""
        question = on or self.graph.last_question(wa_id)
        option = question.option(title)
        if question.interactive["type"] == "button":
            return await self.send(wa_id, fg.button_reply(wa_id, option))
        return await self.send(wa_id, fg.list_reply(wa_id, option))

    async def drain(self) -> TickStats:
        """Let the outbox dispatcher send whatever is due now (follow-ups, retries)."""
        return await self.dispatcher.drain(max_ticks=20)


@asynccontextmanager
async def harness(url: str, clock: FakeClock, **settings: Any) -> AsyncIterator[WA]:
    graph = fg.FakeGraph()
    await graph.start()
    media = tempfile.TemporaryDirectory()
    settings.setdefault("whatsapp_media_dir", Path(media.name) / "whatsapp")
    app = make_app(url, clock, **wa_settings(graph, **settings))
    channel = WhatsAppChannel.from_app(app)
    web_app = build_web_app()
    channel.add_routes(web_app)
    http: TestClient[Any, Any] = TestClient(TestServer(web_app, host="127.0.0.1", port=0))
    await http.start_server()
    vt = VirtualTime()
    dispatcher = Dispatcher(app.factory, {"whatsapp": channel.sender},
                            RateLimiter({"whatsapp": whatsapp_limits(80)}, monotonic=vt.monotonic),
                            clock=clock, sleep=vt.sleep, jitter=lambda: 0.5, monotonic=vt.monotonic)
    try:
        yield WA(app, clock, graph, channel, http, dispatcher)
    finally:
        await http.close()
        await channel.close()
        await graph.stop()
        app.engine.dispose()
        media.cleanup()
