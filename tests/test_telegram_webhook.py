"""Webhook mode: Telegram POSTs updates to /telegram/webhook with the secret header."""

from __future__ import annotations

import asyncio
import socket
from contextlib import suppress
from typing import Any

import pytest
from aiohttp import ClientSession
from sqlalchemy import func, select

import bot.runtime.turn as runtime_module
from bot.app import App
from bot.channels.telegram.run import serve
from bot.storage.models import InboundEvent, SurveyAnswer
from tests.conftest import FakeClock
from tests.fake_telegram import User
from tests.telegram_harness import harness

WARGA = User(id=7001, first_name="Dewi", language_code="id")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _count(app: App, model: type) -> int:
    with app.factory() as db:
        return db.scalar(select(func.count()).select_from(model)) or 0


async def test_webhook_with_and_without_the_secret(app: App, clock: FakeClock) -> None:
    port = free_port()
    app.settings.telegram_webhook_url = "https://prima.example.go.id/telegram/webhook"
    app.settings.http_port = port
    app.settings.telegram_webhook_secret = None  # generated
    async with harness(app, clock) as h:
        stop = asyncio.Event()
        task = asyncio.create_task(serve(app, h.bot, channel=h.channel, dp=h.dp, stop=stop,
                                         background=False))
        await h.server.wait_for(lambda: h.server.webhook is not None)
        hook = h.server.webhook
        assert hook is not None and hook["url"] == app.settings.telegram_webhook_url
        secret = hook["secret_token"]
        assert len(secret) >= 32
        h.server.webhook = {**hook, "url": f"http://127.0.0.1:{port}/telegram/webhook"}
        try:
            start = h.server.message_update(WARGA, "/start")
            # no header, a wrong one: 401 and nothing stored or sent
            assert await h.server.deliver_webhook(start, secret=None) == 401
            assert await h.server.deliver_webhook(start, secret=secret[:-1] + "x") == 401
            assert _count(app, InboundEvent) == 0 and h.server.sent == []
            # the real thing, twice (Telegram retries when unsure): handled once
            assert await h.server.deliver_webhook(start) == 200
            assert await h.server.deliver_webhook(start) == 200
            assert [m.labels() for m in h.server.chat(WARGA.id)][-1][0] == "1. Setuju"
            assert len(h.server.chat(WARGA.id)) == 2
            pressed = []
            for label in ("Setuju", "Nilai layanan", "Disdukcapil", "KTP Elektronik", "Sesuai"):
                question = h.last_question(WARGA)
                press = h.server.press_update(WARGA, question, label)
                pressed.append((question, press["callback_query"]["data"]))
                assert await h.server.deliver_webhook(press) == 200
            assert _count(app, SurveyAnswer) == 1
            # each press was answered (its spinner stops) by the call its 200 carried, not by
            # a request of its own; the pressed question shows the choice, its keyboard gone
            assert h.server.webhook_calls == ["answerCallbackQuery"] * 5
            assert [m for m, _ in h.server.requests].count("answerCallbackQuery") == 5
            assert [a["callback_query_id"] for a in h.server.callback_answers] == \
                [f"cb{n}" for n in range(1, 6)]
            assert all(q.reply_markup is None and q.edits for q, _ in pressed)
            # the menu's keyboard pressed again (a slow phone still shows it): nothing stored,
            # and the notice the resident sees rides on the 200 as well
            question, data = pressed[1]
            assert await h.server.deliver_webhook(h.server.press_update(WARGA, question, data=data)) == 200
            assert h.server.webhook_calls == ["answerCallbackQuery"] * 6
            assert h.server.callback_answers[-1].get("text")
            assert _count(app, SurveyAnswer) == 1
            # a forged press without the secret changes nothing
            forged = h.server.press_update(WARGA, h.last_question(WARGA), "Mudah")
            assert await h.server.deliver_webhook(forged, secret=None) == 401
            assert _count(app, SurveyAnswer) == 1
            async with ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    assert resp.status == 200
                    assert (await resp.json())["checks"] == {"database": "ok", "outbox": "ok"}
                headers = {"X-Telegram-Bot-Api-Secret-Token": secret}
                async with http.post(f"http://127.0.0.1:{port}/telegram/webhook",
                                     data="not json", headers=headers) as resp:
                    assert resp.status == 400
        finally:
            stop.set()
            with suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)


async def test_a_press_whose_turn_fails_is_still_answered(
    app: App, clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The 500 carries nothing Telegram would act on, so the answer is a request of its own;
    the redelivery is handled once, its answer back on the 200."""
    port = free_port()
    app.settings.telegram_webhook_url = "https://prima.example.go.id/telegram/webhook"
    app.settings.http_port = port
    async with harness(app, clock) as h:
        stop = asyncio.Event()
        task = asyncio.create_task(serve(app, h.bot, channel=h.channel, dp=h.dp, stop=stop,
                                         background=False))
        await h.server.wait_for(lambda: h.server.webhook is not None)
        assert h.server.webhook is not None
        h.server.webhook = {**h.server.webhook, "url": f"http://127.0.0.1:{port}/telegram/webhook"}
        try:
            assert await h.server.deliver_webhook(h.server.message_update(WARGA, "/start")) == 200
            press = h.server.press_update(WARGA, h.last_question(WARGA), "Setuju")
            persist = runtime_module.Turn.persist

            def disk_full(self: Any, commit: bool = False) -> None:
                raise RuntimeError("disk full")

            monkeypatch.setattr(runtime_module.Turn, "persist", disk_full)
            assert await h.server.deliver_webhook(press) == 500
            assert [a["callback_query_id"] for a in h.server.callback_answers] == [
                press["callback_query"]["id"]]
            assert h.server.webhook_calls == []  # a request of its own
            assert len(h.server.chat(WARGA.id)) == 2  # nothing new said, the question kept
            assert h.last_question(WARGA).labels()[0] == "1. Setuju"

            monkeypatch.setattr(runtime_module.Turn, "persist", persist)
            assert await h.server.deliver_webhook(press) == 200  # Telegram redelivers
            assert h.server.webhook_calls == ["answerCallbackQuery"]
            assert h.last_question(WARGA).labels()[0] == "1. Nilai layanan"
            assert await h.server.deliver_webhook(press) == 200  # and again: nothing new
            assert h.server.webhook_calls == ["answerCallbackQuery"] * 2
            assert h.last_question(WARGA).labels()[0] == "1. Nilai layanan"
        finally:
            stop.set()
            with suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)
