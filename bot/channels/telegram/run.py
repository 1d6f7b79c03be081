"""Running the Telegram channel: ``python bot.py`` with TELEGRAM_BOT_TOKEN set.

:func:`serve` wires the channel, the scheduler, the HTTP server (health and metrics in every
mode) and either the webhook (TELEGRAM_WEBHOOK_URL) or long polling, and stops cleanly on a
signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import TYPE_CHECKING, Any

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramNetworkError, TelegramServerError
from aiogram.utils.backoff import BackoffConfig

from bot.channels.telegram.channel import TelegramChannel
from bot.channels.telegram.polling import POLLING_BACKOFF, Poller
from bot.channels.telegram.render import CHANNEL
from bot.channels.telegram.sender import make_bot
from bot.channels.telegram.staffroom import with_cases
from bot.channels.telegram.webhook import WEBHOOK_PATH, add_telegram_webhook

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)


async def serve(app: App, bot: Bot, *, channel: TelegramChannel | None = None,
                dp: Dispatcher | None = None, stop: asyncio.Event | None = None,
                backoff: BackoffConfig = POLLING_BACKOFF, polling_timeout: int = 30,
                background: bool = True) -> None:
    """Run the channel until ``stop`` is set (or a signal arrives).

    The HTTP server (HTTP_HOST:HTTP_PORT: ``/healthz``, ``/metrics``, and the webhook in
    webhook mode) runs in both modes. ``background`` also starts the scheduler (outbox
    dispatcher for follow-ups and retries, weekly digests) in this event loop.
    """
    from aiohttp import web

    from bot.scheduler import shared_limiter
    from bot.web.server import build_web_app, start_site

    own = channel is None
    channel = channel or TelegramChannel(app.runtime, bot, app.texts, limiter=shared_limiter(app))
    channel.public_base_url = channel.public_base_url or getattr(app.settings, "public_base_url", None)
    dp = dp or channel.dispatcher()
    await _setup_until_reachable(channel, backoff)
    settings = app.settings
    web_app = build_web_app(app=app)
    secret = None
    if settings.telegram_webhook_url:
        secret = settings.telegram_webhook_secret or secrets.token_urlsafe(32)
        add_telegram_webhook(web_app, dp, bot, secret, metrics=app.metrics)
    from bot.channels.telegram.deskhooks import telegram_desk_hooks
    from bot.web.desk.routes import add_desk_routes

    add_desk_routes(web_app, app, telegram_desk_hooks(channel))  # the web desk, in both modes
    from bot.channels.webchat.serve import mount

    senders: dict[str, Any] = {CHANNEL: with_cases(channel.sender, app.factory)}  # case rows: topics
    chat = mount(web_app, app, senders)  # the web chat, in both modes
    locks = contextlib.ExitStack()
    if not settings.telegram_webhook_url:
        from bot.storage.locks import poller_lock

        # Before the port: a second poller of this bot (409 Conflict at Telegram) is told why,
        # not that HTTP_PORT is taken.
        locks.enter_context(poller_lock(app.engine, bot.id))
    runner = web.AppRunner(web_app, handle_signals=False)
    await runner.setup()
    scheduler = None
    try:
        await start_site(runner, settings.http_host, settings.http_port)
        if background:
            from bot.scheduler import start_background

            scheduler = await start_background(app, senders)
        if secret is not None:
            await bot.set_webhook(settings.telegram_webhook_url or "", secret_token=secret,
                                  allowed_updates=dp.resolve_used_update_types())
            log.info("Telegram webhook mode on %s:%s%s", settings.http_host, settings.http_port,
                     WEBHOOK_PATH)
            await (stop or _until_signal()).wait()
        else:
            await bot.delete_webhook(drop_pending_updates=False)
            log.info("Telegram long polling; /healthz and /metrics on %s:%s", settings.http_host,
                     settings.http_port)
            poller = Poller(channel, dp, bot, timeout=polling_timeout, backoff=backoff)
            await poller.run(stop or _until_signal())
    finally:
        await runner.cleanup()  # webhook requests in progress finish first
        if scheduler is not None:
            from bot.scheduler import stop_background

            await stop_background(scheduler)  # a tick in progress records what it sent
        if own:
            channel.close()
        if chat is not None:
            chat.close()
        locks.close()


def _until_signal() -> asyncio.Event:
    """Set on SIGTERM/SIGINT, so webhook mode shuts down cleanly like polling does."""
    import signal

    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # not available on Windows
            loop.add_signal_handler(sig, event.set)
    return event


async def _setup_until_reachable(channel: TelegramChannel, backoff: BackoffConfig) -> None:
    """Start even if the Bot API is briefly unreachable; a refused token stops at once."""
    delay = backoff.min_delay
    while True:
        try:
            await channel.setup()
            return
        except (TelegramNetworkError, TelegramServerError) as exc:
            log.warning("Bot API not reachable (%s); retrying in %.0fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(backoff.max_delay, delay * backoff.factor)


def run_telegram(app: App) -> int:
    """Entry point used by ``python bot.py`` when TELEGRAM_BOT_TOKEN is set."""
    from aiogram.exceptions import TelegramUnauthorizedError

    settings = app.settings
    assert settings.telegram_bot_token

    async def main() -> int:
        bot = make_bot(settings.telegram_bot_token or "", settings.telegram_api_base)
        try:
            await serve(app, bot)
        except TelegramUnauthorizedError:
            log.error("TELEGRAM_BOT_TOKEN was refused by the Bot API (401 Unauthorized)")
            return 2
        finally:
            await bot.session.close()
        return 0

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 0
