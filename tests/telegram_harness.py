"""Wiring for Telegram tests: the real channel and aiogram ``Bot`` against :mod:`tests.fake_telegram`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.utils.backoff import BackoffConfig
from sqlalchemy import select

from bot.app import App
from bot.channels.telegram.channel import TelegramChannel
from bot.channels.telegram.run import serve
from bot.channels.telegram.sender import make_bot
from bot.storage.models import OutboxMessage
from tests.conftest import FakeClock, free_port
from tests.fake_telegram import FakeTelegram, Sent, User

FAST_BACKOFF = BackoffConfig(min_delay=0.05, max_delay=0.2, factor=1.5, jitter=0.0)


class FakeSleep:
    """Injected into the channel: records each wait and moves the clock instead of sleeping."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds=seconds)


class Harness:
    def __init__(self, app: App, clock: FakeClock, server: FakeTelegram) -> None:
        self.app = app
        self.clock = clock
        self.server = server
        self.bot: Bot = make_bot(server.token, server.base_url)
        self.sleep = FakeSleep(clock)
        self.channel = TelegramChannel(app.runtime, self.bot, app.texts, sleep=self.sleep)
        self.dp: Dispatcher = self.channel.dispatcher()
        self.done: set[int] = set()
        self._cond = asyncio.Condition()

        async def track(handler: Callable[..., Awaitable[Any]], update: Any, data: dict[str, Any]) -> Any:
            try:
                return await handler(update, data)
            finally:
                async with self._cond:
                    self.done.add(update.update_id)
                    self._cond.notify_all()

        self.dp.update.outer_middleware(track)

    async def processed(self, update: dict[str, Any], timeout: float = 5.0) -> None:
        """Wait until the dispatcher finished this update (handled, sent, recorded)."""
        uid = update["update_id"]

        async def wait() -> None:
            async with self._cond:
                await self._cond.wait_for(lambda: uid in self.done)

        await asyncio.wait_for(wait(), timeout)

    async def feed(self, update: dict[str, Any]) -> None:
        """Give one update straight to the dispatcher (no polling), and wait for it."""
        await self.dp.feed_raw_update(self.bot, update)

    async def say(self, user: User, text: str | None = None, **extra: Any) -> list[Sent]:
        """Polling: the resident sends a message; returns the bot's new messages to them."""
        before = len(self.server.chat(user.id))
        upd = self.server.message(user, text, **extra)
        await self.processed(upd)
        return self.server.chat(user.id)[before:]

    async def press(self, user: User, label: str, sent: Sent | None = None) -> list[Sent]:
        """Polling: the resident presses a button (on the last message with a keyboard)."""
        sent = sent or self.last_question(user)
        before = len(self.server.chat(user.id))
        upd = self.server.press(user, sent, label)
        await self.processed(upd)
        return self.server.chat(user.id)[before:]

    def last_question(self, user: User) -> Sent:
        return [s for s in self.server.chat(user.id) if s.buttons][-1]

    def outbox(self) -> list[OutboxMessage]:
        with self.app.factory() as db:
            return list(db.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))

    @asynccontextmanager
    async def polling(self) -> AsyncIterator[None]:
        self.app.settings.http_port = free_port()  # /healthz and /metrics listen in polling mode too
        stop = asyncio.Event()
        task = asyncio.create_task(serve(self.app, self.bot, channel=self.channel, dp=self.dp,
                                         stop=stop, backoff=FAST_BACKOFF, polling_timeout=1,
                                         background=False))
        try:
            await self.server.wait_for(lambda: bool(self.server.calls("deleteWebhook")))
            yield
        finally:
            stop.set()
            with suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)


@asynccontextmanager
async def harness(app: App, clock: FakeClock) -> AsyncIterator[Harness]:
    server = FakeTelegram()
    await server.start()
    h = Harness(app, clock, server)
    try:
        yield h
    finally:
        await h.bot.session.close()
        h.channel.close()
        await server.stop()
