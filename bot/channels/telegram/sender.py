"""Outbox payloads out to Telegram: the Bot object, one send, aiogram's errors classified.

:class:`TelegramSender` is the outbox's :class:`bot.outbox.store.Sender` for Telegram, used for
immediate replies (bot/channels/telegram/channel.py) and by the outbox dispatcher. Text goes
out without ``parse_mode``: what the resident typed is echoed back literally and can never
break the markup.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import FSInputFile

from bot.channels.telegram.render import CHANNEL, MAX_TEXT, keyboard
from bot.outbox.store import SendError
from bot.text import split_text

# ---------------------------------------------------------------------- bot and API server


def api_server(base: str | None) -> TelegramAPIServer:
    """Telegram's own Bot API, or another server (self-hosted telegram-bot-api, a test server)."""
    return TelegramAPIServer.from_base(base) if base else PRODUCTION


def make_bot(token: str, api_base: str | None = None, timeout: float = 30.0) -> Bot:
    """A bot without a default parse_mode: every text is sent as plain text."""
    return Bot(token, session=AiohttpSession(api=api_server(api_base), timeout=timeout))


# ---------------------------------------------------------------------- sending

_CODES: tuple[tuple[type[Exception], str], ...] = (
    (TelegramRetryAfter, "429"), (TelegramForbiddenError, "403"), (TelegramNotFound, "404"),
    (TelegramEntityTooLarge, "413"), (TelegramMigrateToChat, "400"), (TelegramBadRequest, "400"),
    (TelegramUnauthorizedError, "401"), (TelegramConflictError, "409"),
    (TelegramServerError, "5xx"), (TelegramNetworkError, "network"), (ClientDecodeError, "decode"),
)


def error_code(exc: Exception) -> str:
    """The error's HTTP status as Telegram gave it (aiogram keeps only the class), for metrics."""
    for cls, code in _CODES:
        if isinstance(exc, cls):
            return code
    return type(exc).__name__


def classify(exc: Exception) -> SendError:
    """Map aiogram's errors onto the outbox's retry rules."""
    reason = f"{type(exc).__name__}: {exc}"
    code = error_code(exc)
    if isinstance(exc, TelegramRetryAfter):
        return SendError(reason, retry_after=float(exc.retry_after), code=code)
    if isinstance(exc, TelegramForbiddenError):
        return SendError(reason, permanent=True, unreachable=True, code=code)
    if isinstance(exc, TelegramBadRequest | TelegramNotFound | TelegramMigrateToChat
                  | TelegramEntityTooLarge):
        return SendError(reason, permanent=True, code=code)
    if isinstance(exc, TelegramNetworkError):
        cause = exc.__cause__
        if isinstance(cause, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
            return SendError(reason, code=code)  # never connected: nothing arrived, safe to retry
        # A read timeout or a connection dropped after the request left: it may have arrived.
        return SendError(reason, unknown=True, code=code)
    if isinstance(exc, ClientDecodeError):
        return SendError(reason, unknown=True, code=code)
    return SendError(reason, code=code)  # 5xx (TelegramServerError) and the rest: retry later


class TelegramSender:
    """:class:`bot.outbox.store.Sender` for Telegram. Raises :class:`SendError`, classified."""

    channel = CHANNEL

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send(self, chat_id: str, payload: dict[str, Any]) -> str | None:
        try:
            return await self._send(chat_id, payload)
        except (TelegramAPIError, ClientDecodeError) as exc:
            raise classify(exc) from exc
        except OSError as exc:  # a file to upload went missing: retrying will not help
            raise SendError(f"{type(exc).__name__}: {exc}", permanent=True, code="file") from exc

    async def _send(self, chat_id: str, payload: dict[str, Any]) -> str | None:
        markup = keyboard(payload)
        text = str(payload.get("text") or "")
        if payload.get("photo"):
            photo = payload["photo"]
            msg = await self.bot.send_photo(chat_id, FSInputFile(photo["path"]),
                                            caption=(photo.get("caption") or text)[:1024] or None,
                                            reply_markup=markup)
            return str(msg.message_id)
        if payload.get("document"):
            doc = payload["document"]
            msg = await self.bot.send_document(
                chat_id, FSInputFile(doc["path"], filename=doc.get("filename")),
                caption=(doc.get("caption") or text)[:1024] or None, reply_markup=markup)
            return str(msg.message_id)
        parts = split_text(text, MAX_TEXT)
        msg_id = None
        for n, part in enumerate(parts):
            last = n == len(parts) - 1
            msg = await self.bot.send_message(chat_id, part, reply_markup=markup if last else None)
            msg_id = str(msg.message_id)
        return msg_id
