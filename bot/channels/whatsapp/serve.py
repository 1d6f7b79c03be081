"""Running WhatsApp: one process, one aiohttp server, one scheduler (Telegram beside it).

Webhooks are served by our own aiohttp app, next to Telegram's webhook (or its long
polling) when a Telegram token is configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.channels.whatsapp.channel import WEBHOOK_PATH, WhatsAppChannel, whatsapp_missing
from bot.channels.whatsapp.ids import CHANNEL
from bot.channels.whatsapp.store import webhook_backlog
from bot.config import ConfigError

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from sqlalchemy import Connection

    from bot.app import App

log = logging.getLogger(__name__)

async def serve(app: App, stop: asyncio.Event | None = None, retry_every: float = 60.0,
                started: asyncio.Event | None = None) -> None:
    """WhatsApp (and Telegram when configured) in one process, one aiohttp server, one scheduler.

    ``started`` is set once the server listens; ``stop`` ends it (default: run until killed).
    """
    from bot.scheduler import shared_limiter, start_background
    from bot.web.metrics import add_probe
    from bot.web.server import build_web_app, start_site

    settings = app.settings
    channel = WhatsAppChannel.from_app(app, limiter=shared_limiter(app))
    web_app = build_web_app(app=app)  # /healthz and /metrics
    channel.add_routes(web_app)
    add_probe(web_app, webhook_gauges)
    from bot.web.desk.base import DeskHooks
    from bot.web.desk.routes import add_desk_routes

    hooks = DeskHooks(deliver=channel.deliver)  # WhatsApp photos are served from WHATSAPP_MEDIA_DIR
    add_desk_routes(web_app, app, hooks)
    senders: dict[str, Any] = {CHANNEL: channel.sender}
    from bot.channels.webchat.serve import mount

    chat = mount(web_app, app, senders)  # the web chat on the same server
    background: list[asyncio.Task[Any]] = []
    cleanup: list[Callable[[], Awaitable[Any]]] = []
    runner = web.AppRunner(web_app, handle_signals=False)
    scheduler = None

    async def retry_loop() -> None:
        while True:
            try:
                await channel.retry_stored()
            except Exception:  # the database may be briefly away: try again next round
                log.exception("retrying stored WhatsApp webhooks failed")
            await asyncio.sleep(retry_every)

    try:
        if settings.telegram_bot_token:
            background.append(await _start_telegram(app, web_app, senders, cleanup))
        await runner.setup()
        await start_site(runner, settings.http_host, settings.http_port)
        log.info("WhatsApp webhook on %s:%s%s", settings.http_host, settings.http_port, WEBHOOK_PATH)
        scheduler = await start_background(app, senders)
        background.append(asyncio.create_task(retry_loop()))
        if started is not None:
            started.set()
        await (stop or asyncio.Event()).wait()
    finally:
        if scheduler is not None:
            from bot.scheduler import stop_background

            await stop_background(scheduler)  # a tick in progress records what it sent
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await runner.cleanup()
        for fn in cleanup:
            await fn()
        await channel.close()
        if chat is not None:
            chat.close()


async def _start_telegram(app: App, web_app: web.Application, senders: dict[str, Any],
                          cleanup: list[Callable[[], Awaitable[Any]]]) -> asyncio.Task[Any]:
    """Telegram next to WhatsApp: its webhook on the same server, or long polling in a task.

    Long polling here is the same :class:`Poller` as a Telegram-only process: an update is
    confirmed to Telegram only once stored, and a stop finishes the updates in hand.
    """
    import secrets

    from bot.channels.telegram.channel import TelegramChannel
    from bot.channels.telegram.polling import POLLING_BACKOFF, Poller
    from bot.channels.telegram.render import CHANNEL as TG_CHANNEL
    from bot.channels.telegram.run import _setup_until_reachable
    from bot.channels.telegram.sender import make_bot
    from bot.channels.telegram.staffroom import with_cases  # case rows go to their topics
    from bot.channels.telegram.webhook import add_telegram_webhook
    from bot.scheduler import shared_limiter

    s = app.settings
    bot = make_bot(s.telegram_bot_token or "", s.telegram_api_base)
    channel = TelegramChannel(app.runtime, bot, app.texts, limiter=shared_limiter(app))
    dp = channel.dispatcher()
    await _setup_until_reachable(channel, POLLING_BACKOFF)  # a refused token stops here
    senders[TG_CHANNEL] = with_cases(channel.sender, app.factory)
    _desk_with_telegram(web_app, channel, TG_CHANNEL)
    stop_polling = asyncio.Event()
    polling: list[asyncio.Task[Any]] = []

    async def close() -> None:
        stop_polling.set()  # the poller finishes the updates in hand and their replies
        await asyncio.gather(*polling, return_exceptions=True)
        channel.close()
        await bot.session.close()

    cleanup.append(close)
    if s.telegram_webhook_url:
        secret = s.telegram_webhook_secret or secrets.token_urlsafe(32)
        add_telegram_webhook(web_app, dp, bot, secret, metrics=app.metrics)
        await bot.set_webhook(s.telegram_webhook_url, secret_token=secret,
                              allowed_updates=dp.resolve_used_update_types())
    else:
        from bot.storage.locks import poller_lock  # a second poller: 409 Conflict, so refused

        cleanup.append(poller_lock(app.engine, bot.id).aclose)  # after close() stopped the poller
        await bot.delete_webhook(drop_pending_updates=False)
        polling.append(asyncio.create_task(Poller(channel, dp, bot, backoff=POLLING_BACKOFF).run(stop_polling)))
    # The caller cancels this placeholder on exit; the poller itself is stopped gracefully above.
    return asyncio.create_task(asyncio.Event().wait())


def webhook_gauges(conn: Connection, now: datetime) -> Iterator[Metric]:
    """/metrics: stored webhook bodies awaiting a retry, and those given up on."""
    from prometheus_client.core import GaugeMetricFamily

    retry, given_up = webhook_backlog(conn)
    family = GaugeMetricFamily("prima_webhook_bodies_stored", "Signed webhook bodies kept after "
                               "a failed processing: awaiting a retry, or given up on",
                               labels=["channel", "state"])
    family.add_metric([CHANNEL, "awaiting_retry"], retry)
    family.add_metric([CHANNEL, "given_up"], given_up)
    yield family


def run_whatsapp(app: App) -> int:
    """Entry point used by ``python bot.py`` when the WhatsApp settings are present."""
    missing = whatsapp_missing(app.settings)
    if missing:
        raise ConfigError(f"Configuration error: {missing[0]}: required for WhatsApp "
                          f"(missing: {', '.join(missing)})")
    from aiogram.exceptions import TelegramUnauthorizedError

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):  # finish accepted webhooks, then stop
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await serve(app, stop=stop)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        return 0
    except TelegramUnauthorizedError:
        log.error("TELEGRAM_BOT_TOKEN was refused by the Bot API (401 Unauthorized)")
        return 2
    return 0


def _desk_with_telegram(web_app: web.Application, channel: Any, tg_channel: str) -> None:
    """The web desk of a WhatsApp deployment that also runs Telegram: cards refreshed in their
    topics, Telegram photos fetched, each row sent by its own channel."""
    from bot.channels.telegram.deskhooks import telegram_desk_hooks
    from bot.web.desk.base import HOOKS

    if HOOKS not in web_app:
        return
    hooks = web_app[HOOKS]
    tg = telegram_desk_hooks(channel)
    hooks.edit_card, hooks.fetch_media = tg.edit_card, tg.fetch_media
    wa_deliver, tg_deliver = hooks.deliver, tg.deliver

    async def deliver(rows: list[Any]) -> None:
        if tg_deliver is not None:
            await tg_deliver([r for r in rows if r.channel == tg_channel])
        if wa_deliver is not None:
            await wa_deliver([r for r in rows if r.channel != tg_channel])

    hooks.deliver = deliver
