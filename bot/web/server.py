"""The HTTP side of the bot: one aiohttp app for health, metrics and channel webhooks.

``build_web_app`` gives ``/healthz`` (and, for a whole bot process, ``/metrics`` and the open
data of bot/web/opendata and the public pages of bot/web/public); each channel adds its own routes to the same app
(``bot.channels.telegram.webhook.add_telegram_webhook``, ``WhatsAppChannel.add_routes``), so one
port serves them all, in every mode (long polling too).
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Mapping
from concurrent.futures import Executor
from typing import TYPE_CHECKING

from aiohttp import web

from bot.web import metrics as metrics_page
from bot.web.health import Check, Health
from bot.web.kiosk.routes import add_kiosk_routes
from bot.web.opendata.routes import add_opendata_routes
from bot.web.public.routes import add_public_routes

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)
CHECKS = web.AppKey("checks", dict[str, Check])
HEALTH = web.AppKey("health", Health)
MAX_BODY = 1024 * 1024  # Telegram updates are small; refuse anything huge


def build_web_app(checks: Mapping[str, Check] | None = None, *, app: App | None = None,
                  executor: Executor | None = None) -> web.Application:
    """An app with ``GET /healthz``: 200 when every check passes, 503 naming the failing ones.

    With ``app`` (a bot process): ``/healthz`` also checks the database, the scheduler's last
    tick and stuck outbox rows (bot/web/health.py), and ``GET /metrics`` serves Prometheus
    text (bot/web/metrics.py); ``METRICS_TOKEN`` guards both. Without it only ``checks`` run.
    """
    web_app = web.Application(client_max_size=MAX_BODY)
    web_app[CHECKS] = dict(checks or {})
    if app is not None:
        web_app[HEALTH] = Health(app, checks, executor)
        metrics_page.install(web_app, app)
        add_opendata_routes(web_app, app)
        add_public_routes(web_app, app)
        add_kiosk_routes(web_app, app)
        token = app.settings.metrics_token
    else:
        token = None

    async def healthz(request: web.Request) -> web.Response:
        if app is None:
            return await _checks_only(request)
        healthy, body = await request.app[HEALTH].report()
        if not metrics_page.authorized(request, token):
            body = {"status": body["status"]}  # enough for a load balancer, nothing more
        return web.json_response(body, status=200 if healthy else 503)

    web_app.router.add_get("/healthz", healthz)
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


async def _checks_only(request: web.Request) -> web.Response:
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
