"""A process with only the web chat (``WEB_CHAT=on``, neither Telegram nor WhatsApp configured).

The same aiohttp server as the other modes (health, metrics, public pages, the desk, the web
chat) and the scheduler (outbox dispatcher with the web "sender", digests, SLA, retention),
until a signal stops it. With Telegram or WhatsApp configured the web chat is served by their
process instead (:func:`mount` is called there).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.channels.webchat.routes import WebChat, add_webchat_routes
from bot.channels.webchat.thread import CHANNEL, WebSender
from bot.outbox.store import mark_sent
from bot.storage.models import OutboxMessage

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)


def mount(web_app: web.Application, app: App, senders: dict[str, Any]) -> WebChat | None:
    """The web chat on a server being built (after the desk), and its sender for the scheduler.

    The desk sends a staff reply at once through the channel's hook; a reply to a web resident
    is not the channel's to send: it joins the thread (marked sent) and the others go on.
    """
    chat = add_webchat_routes(web_app, app)
    if chat is None:
        return None
    senders[CHANNEL] = WebSender()
    from bot.web.desk.base import HOOKS

    hooks = web_app.get(HOOKS)
    if hooks is not None and hooks.deliver is not None:
        inner = hooks.deliver

        async def deliver(rows: list[OutboxMessage]) -> None:
            mine = [(r.id, None) for r in rows if r.channel == CHANNEL]
            if mine:
                await asyncio.to_thread(mark_sent, app.factory, mine, app.runtime.clock())
            rest = [r for r in rows if r.channel != CHANNEL]
            if rest:
                await inner(rest)

        hooks.deliver = deliver
    return chat


async def serve(app: App, stop: asyncio.Event | None = None, started: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set; ``started`` is set once the port listens."""
    from bot.scheduler import start_background, stop_background
    from bot.web.desk.routes import add_desk_routes
    from bot.web.server import build_web_app, start_site

    settings = app.settings
    web_app = build_web_app(app=app)
    add_desk_routes(web_app, app)  # staff replies go to the outbox; web rows join the thread
    senders: dict[str, Any] = {}
    chat = mount(web_app, app, senders)
    runner = web.AppRunner(web_app, handle_signals=False)
    await runner.setup()
    scheduler = None
    try:
        await start_site(runner, settings.http_host, settings.http_port)
        scheduler = await start_background(app, senders)
        log.info("web chat only: http://%s:%s/chat", settings.http_host, settings.http_port)
        if started is not None:
            started.set()
        await (stop or asyncio.Event()).wait()
    finally:
        if scheduler is not None:
            await stop_background(scheduler)
        await runner.cleanup()
        if chat is not None:
            chat.close()


def run_web_only(app: App) -> int:
    """Entry point of ``python bot.py`` with ``WEB_CHAT=on`` and no other channel."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await serve(app, stop=stop)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        return 0
    return 0
