"""The HTTP side of the bot: one aiohttp app for health checks and channel webhooks.

``build_web_app`` gives ``/healthz`` and the open data (bot/web/opendata); each channel adds its own routes to the same app
(``bot.channels.telegram.webhook.add_telegram_webhook``; a WhatsApp webhook can be added the same
way), so one port serves them all.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
from typing import TYPE_CHECKING

from aiohttp import web
from sqlalchemy import text

from bot.web.opendata.routes import add_opendata_routes

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)
Check = Callable[[], Awaitable[None]]
CHECKS = web.AppKey("checks", dict[str, Check])
MAX_BODY = 1024 * 1024  # Telegram updates are small; refuse anything huge


def build_web_app(checks: Mapping[str, Check] | None = None, app: App | None = None) -> web.Application:
    """An app with ``GET /healthz``: 200 when every check passes, 503 naming the failing ones;
    given the bot's ``app``, also the open data (/data/..., /open311/v2/...)."""
    web_app = web.Application(client_max_size=MAX_BODY)
    web_app[CHECKS] = dict(checks or {})
    web_app.router.add_get("/healthz", healthz)
    if app is not None:
        add_opendata_routes(web_app, app)
    return web_app


async def start_site(runner: web.AppRunner, host: str, port: int) -> web.TCPSite:
    """Listen on HTTP_HOST:HTTP_PORT; a port in use (or a bad host) is a configuration error."""
    from bot.config import ConfigError

    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        reason = "already in use by another process" if exc.errno == errno.EADDRINUSE \
            else (exc.strerror or str(exc))
        raise ConfigError(f"Configuration error: HTTP_PORT: cannot listen on {host}:{port}: {reason}") from None
    return site


async def healthz(request: web.Request) -> web.Response:
    results: dict[str, str] = {}
    for name, check in request.app[CHECKS].items():
        try:
            await asyncio.wait_for(check(), timeout=5)
            results[name] = "ok"
        except Exception as exc:  # a health check reports, it never raises
            results[name] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in results.values())
    return web.json_response({"status": "ok" if healthy else "unhealthy", "checks": results},
                             status=200 if healthy else 503)


def database_check(app: App, executor: Executor | None = None) -> Check:
    """``SELECT 1`` through the pool, off the event loop."""

    def ping() -> None:
        with app.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    async def check() -> None:
        await asyncio.get_running_loop().run_in_executor(executor, ping)

    return check
