"""The outbox sender for WhatsApp, which keeps the 24-hour rule.

Free-form messages are only allowed within 24 hours of the resident's last message; later,
a follow-up goes out as the configured approved template or waits (outbox status
``waiting``) until the resident writes again, instead of failing with error 131047.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy.orm import Session, sessionmaker

from bot.channels.whatsapp.graph import WINDOW_CODES, GraphClient, GraphError, classify
from bot.channels.whatsapp.ids import CHANNEL
from bot.channels.whatsapp.render import render, template_message
from bot.channels.whatsapp.store import contact_info
from bot.config import Settings
from bot.outbox.store import SendError
from bot.runtime.types import Clock
from flows.machine.types import Texts

WINDOW = timedelta(hours=24)  # customer-service window after the resident's last message


@dataclass(frozen=True)
class Templates:
    """The approved template for messages outside the 24-hour window (None: wait instead)."""

    name: str | None = None
    language_id: str = "id"
    language_en: str = "en"
    buttons: int = 0

    def language(self, lang: str) -> str:
        return self.language_en if lang == "en" and self.language_en else self.language_id

    @classmethod
    def from_settings(cls, s: Settings) -> Templates:
        return cls(s.whatsapp_template_followup or None, s.whatsapp_template_language,
                   s.whatsapp_template_language_en, s.whatsapp_template_buttons)


class WhatsAppSender:
    """:class:`bot.outbox.store.Sender` for WhatsApp; applies the 24-hour rule before sending."""

    channel = CHANNEL

    def __init__(
        self,
        client: GraphClient,
        factory: sessionmaker[Session],
        clock: Clock,
        texts: Texts,
        templates: Templates | None = None,
        default_language: str = "id",
    ) -> None:
        self.client = client
        self.factory = factory
        self.clock = clock
        self.texts = texts
        self.templates = templates or Templates()
        self.default_language = default_language

    async def send(self, chat_id: str, payload: dict[str, Any],
                   known: tuple[str | None, datetime | None] | None = None) -> str | None:
        """Send one outbox payload. ``known``: the resident's (language, last message time)
        when the caller has just read them (an immediate reply), else they are looked up."""
        lang: str | None
        last: datetime | None
        if payload.get("erasure"):
            # The answer to the message that erased the resident (bot/privacy.py): their row
            # is gone, but they wrote a moment ago, so the window is open.
            lang, last = self.default_language, self.clock()
        elif known is not None:
            lang, last = known
        else:
            lang, last = await asyncio.to_thread(contact_info, self.factory, chat_id)
        lang = lang or self.default_language
        in_window = last is not None and self.clock() - last < WINDOW and not payload.get("wa_template")
        try:
            if not in_window:
                return await self._outside_window(chat_id, payload, lang)
            try:
                return await self._send(chat_id, payload, lang)
            except GraphError as exc:
                if exc.code in WINDOW_CODES and self.templates.name:  # Meta counts differently
                    return await self._outside_window(chat_id, payload, lang)
                raise
        except GraphError as exc:
            raise classify(exc.code, exc.http_status, str(exc)) from exc
        except aiohttp.ClientConnectorError as exc:  # never reached the server: safe to retry
            raise SendError(f"{type(exc).__name__}: {exc}", code="network") from exc
        except (TimeoutError, aiohttp.ClientError) as exc:  # it may have arrived
            raise SendError(f"{type(exc).__name__}: {exc}", unknown=True, code="network") from exc
        except (OSError, ValueError) as exc:  # a file went missing, an id too long
            raise SendError(f"{type(exc).__name__}: {exc}", permanent=True, code="file") from exc

    async def _outside_window(self, chat_id: str, payload: dict[str, Any], lang: str) -> str:
        t = self.templates
        if not t.name:
            raise SendError("outside the 24-hour window and no template configured: "
                            "waits for the resident's next message", wait_for_contact=True)
        if payload.get("photo") or payload.get("document"):  # a template cannot carry the file
            raise SendError("outside the 24-hour window with a file: waits for the "
                            "recipient's next message", wait_for_contact=True)
        msg_id = await self.client.send(chat_id, template_message(t.name, t.language(lang), payload, t.buttons))
        answers = [c for c in payload.get("choices") or [] if not c.get("nav")]
        if len(answers) > t.buttons:
            # The template told them; its buttons cannot answer this question, so the question
            # itself waits and goes out, answerable, as soon as they reply.
            raise SendError(f"template {msg_id} sent as a notice; the question waits for the "
                            "resident's reply", wait_for_contact=True)
        return msg_id

    async def _send(self, chat_id: str, payload: dict[str, Any], lang: str) -> str | None:
        msg_id: str | None = None
        media = payload.get("photo") or payload.get("document")
        if media:
            kind = "image" if payload.get("photo") else "document"
            media_id = await self.client.upload(str(media["path"]))
            obj: dict[str, Any] = {"id": media_id}
            caption = str(media.get("caption") or payload.get("text") or "")[:1024]
            if caption:
                obj["caption"] = caption
            if kind == "document" and media.get("filename"):
                obj["filename"] = str(media["filename"])
            msg_id = await self.client.send(chat_id, {"type": kind, kind: obj})
            if not payload.get("choices"):
                return msg_id
        for message in render(payload, lang, self.texts):
            msg_id = await self.client.send(chat_id, message)
        return msg_id


class KnownContact:
    """The sender for one resident whose language and last message time were just read:
    an immediate reply skips the lookup (``bot.outbox.store.send_within`` calls ``send``)."""

    channel = CHANNEL

    def __init__(self, sender: WhatsAppSender, known: tuple[str | None, datetime | None]) -> None:
        self.sender = sender
        self.known = known

    async def send(self, chat_id: str, payload: dict[str, Any]) -> str | None:
        return await self.sender.send(chat_id, payload, self.known)
