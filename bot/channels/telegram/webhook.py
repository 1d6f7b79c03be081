"""Telegram's webhook on our aiohttp server: 401 without the secret, 200 once handled.

Used by :func:`bot.channels.telegram.run.serve` and by the WhatsApp server, which serves
Telegram's webhook next to its own.

The 200 may carry one Bot API call for Telegram to make (the Bot API's "reply to the webhook"):
a button press's answer to its callback query goes there (:class:`WebhookReply`) instead of
taking an HTTPS request of its own, a third of the requests a button press made.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from aiogram import Bot, Dispatcher
from aiogram.types import Update

if TYPE_CHECKING:
    from bot.metrics import Metrics

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class WebhookReply:
    """The one Bot API call an update's 200 may carry; handlers get it as ``webhook_reply``.

    Telegram makes the call when it reads the answer and never says whether it worked, so only
    calls whose failure nobody acts on go here (answering a callback query). Without a webhook
    (polling) handlers get None and call the Bot API themselves.
    """

    __slots__ = ("call",)

    def __init__(self) -> None:
        self.call: dict[str, Any] | None = None

    def take(self, method: str, **params: Any) -> bool:
        """Carry ``method`` in the 200; False when the 200 already carries another call."""
        if self.call is not None:
            return False
        self.call = {"method": method, **{k: v for k, v in params.items() if v is not None}}
        return True


def add_telegram_webhook(web_app: Any, dp: Dispatcher, bot: Bot, secret: str,
                         path: str = WEBHOOK_PATH, *, metrics: Metrics | None = None) -> None:
    """Serve Telegram's webhook on ``path``: 401 without the secret, 200 after the commit.

    ``metrics``: requests that carried the secret are counted (``prima_webhooks_received_total``).
    """
    import hmac

    from aiogram.types.update import UpdateTypeLookupError
    from aiohttp import web
    from pydantic import ValidationError

    expected = secret.encode()

    async def webhook(request: web.Request) -> web.Response:
        got = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(got, expected):
            return web.json_response({"ok": False, "error": "unauthorized"}, status=401)
        if metrics is not None:
            metrics.webhooks.labels("telegram").inc()
        try:
            raw = await request.json()
            upd = Update.model_validate(raw, context={"bot": bot})
        except (ValueError, ValidationError, RecursionError) as exc:  # RecursionError: deep nesting
            log.warning("Telegram webhook body refused (%s): not a Telegram update", type(exc).__name__)
            return web.json_response({"ok": False, "error": "not a Telegram update"}, status=400)
        try:
            upd.event_type  # noqa: B018 - raises for an update type this version does not know
        except UpdateTypeLookupError:  # a newer Bot API type: skip it, or Telegram resends it
            log.warning("Telegram update %s of an unknown type skipped", upd.update_id)
            return web.json_response({"ok": True, "ignored": True})
        reply = WebhookReply()
        try:
            await dp.feed_update(bot, upd, webhook_reply=reply)
        except Exception:  # Telegram redelivers on 5xx; the update_id makes that safe
            log.exception("update %s failed", upd.update_id)
            return web.json_response({"ok": False}, status=500)
        return web.json_response(reply.call or {"ok": True})

    web_app.router.add_post(path, webhook)

