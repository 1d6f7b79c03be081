"""WhatsApp channel (Cloud API): signed webhooks in, outbox payloads out.

The adapter only translates. A webhook is checked (``X-Hub-Signature-256``, HMAC-SHA256 of
the raw body with the app secret, compared in constant time), stored, answered 200 at once,
and then processed: each message becomes one :class:`bot.runtime.Inbound` keyed by its
message id (the runtime's unique key makes Meta's redeliveries harmless), each status
(sent, delivered, read, failed) is written on the outbox row with that message id. A body
whose processing fails stays stored and is retried, so nothing a resident sent is lost.

Sending follows WhatsApp's rules: at most 3 choices become reply buttons (titles cut to 20
characters), up to 10 a list message (titles 24, descriptions 72), more a numbered text the
resident answers by typing the number or the words. Free-form messages are only allowed
within 24 hours of the resident's last message; later, a follow-up goes out as the
configured approved template or waits (outbox status ``waiting``) until the resident writes
again, instead of failing with error 131047.

The client is a small typed wrapper over aiohttp rather than a library: the Graph API base
must be configurable (``WHATSAPP_API_BASE``, for tests and proxies) and webhooks are served
by our own aiohttp app next to Telegram's.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import mimetypes
import re
import signal
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
from aiohttp import web
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.channels.common import KeyedLocks, Pacer, choice_label, decode_choice, encode_choice
from bot.config import ConfigError, Settings
from bot.outbox.ratelimit import RateLimiter
from bot.outbox.store import SendError, apply_failure, mark_sent, record_failure, send_within
from bot.runtime.facade import Runtime
from bot.runtime.types import Clock, Inbound
from bot.storage.models import (
    Case,
    Contact,
    ConversationSession,
    OutboxMessage,
    WhatsAppIdentity,
    WhatsAppWebhook,
)
from bot.text import split_text
from flows.types import Event, Texts

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)
T = TypeVar("T")

CHANNEL = "whatsapp"
WEBHOOK_PATH = "/whatsapp/webhook"
SIGNATURE_HEADER = "X-Hub-Signature-256"
PHOTO_STEPS = {("complaint", "photos_done")}  # the questions that ask for a photo (flows/steps.py)
WINDOW = timedelta(hours=24)  # customer-service window after the resident's last message

MAX_TEXT = 4096  # one text message
MAX_INTERACTIVE_BODY = 1024
MAX_BUTTONS = 3
BUTTON_TITLE = 20
MAX_ROWS = 10
ROW_TITLE = 24
ROW_DESCRIPTION = 72
LIST_BUTTON = 20
MAX_BUTTON_ID = 256
MAX_ROW_ID = 200
MAX_TEMPLATE_PARAM = 1000
MAX_WEBHOOK_ATTEMPTS = 10
# Meta sends webhook bodies of up to 3 MB; a body refused with 413 is redelivered for days.
# 4 MiB leaves room (the rest of the server keeps bot.web.server.MAX_BODY).
MAX_WEBHOOK_BODY = 4 * 1024 * 1024
STATUS_RETRIES = 2  # a failure status for a message id we do not know yet: look again twice

# Graph API error codes (https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes)
THROUGHPUT = 130429  # too many messages per second from this number
PAIR_RATE = 131056  # too many messages to one recipient in a short time
OUTSIDE_WINDOW = 131047  # more than 24 hours since the resident's last message
RETRY_CODES = frozenset({1, 2, 4, 80007, 131000, 131016, 133004, THROUGHPUT, PAIR_RATE})
AUTH_CODES = frozenset({0, 3, 10, 190, 200})  # a token problem the operator can fix: keep rows
WINDOW_CODES = frozenset({OUTSIDE_WINDOW, 470})
STATUS_RANK = {"sent": 1, "delivered": 2, "read": 3}


# ---------------------------------------------------------------------- signatures


def sign(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def valid_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Constant-time check of the header against the HMAC of the raw body."""
    if not header or not secret:
        return False
    return hmac.compare_digest(header.strip().encode(), sign(secret, body).encode())


# ---------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class NewNumber:
    """A ``user_changed_number`` (or ``user_changed_user_id``) system message: the same person
    under a new ``wa_id`` and/or business-scoped user id."""

    wa_id: str | None
    user_id: str | None


@dataclass(frozen=True)
class Incoming:
    """One resident message from a webhook; ``event`` None means "nothing to answer"."""

    message_id: str
    wa_id: str | None
    user_id: str | None
    name: str | None
    event: Event | None
    changed: NewNumber | None = None
    at: datetime | None = None  # Meta's timestamp: orders the messages of one body

    @property
    def key(self) -> str:
        """What the resident's messages are serialised on."""
        return self.wa_id or self.user_id or ""


@dataclass(frozen=True)
class Status:
    message_id: str
    status: str  # sent | delivered | read | failed
    at: datetime | None
    error_code: int | None = None
    error: str | None = None


@dataclass
class Parsed:
    messages: list[Incoming] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)


def is_phone(chat_id: str) -> bool:
    """A ``wa_id`` is the phone number in digits; a business-scoped user id (``ID.1234...``,
    parent ``ID.ENT.1234...``) has a country code and a period."""
    return chat_id.isdigit()


def address(chat_id: str) -> dict[str, str]:
    """Meta's Messages API: ``to`` takes a phone number, ``recipient`` a business-scoped user id."""
    return {"to": chat_id} if is_phone(chat_id) else {"recipient": chat_id}


def reply_id(q: int | None, choice_id: str, limit: int = MAX_BUTTON_ID) -> str:
    """``"<question number>:<choice id>"``: the engine refuses a choice whose question is gone."""
    data = encode_choice(q, choice_id)
    if len(data) > limit:
        raise ValueError(f"reply id over {limit} characters: {data!r}")
    return data


def parse_reply_id(data: str | None) -> tuple[int, str] | None:
    """``"12:agree"`` -> (12, "agree"); anything malformed -> None (never raises)."""
    if not data or len(data) > MAX_BUTTON_ID:
        return None
    return decode_choice(data)


def _timestamp(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _choice_event(event_id: str, data: str | None, title: str | None) -> Event:
    parsed = parse_reply_id(data)
    if parsed is None:  # not one of ours: treat the title as typed text
        return Event("text", event_id, text=title or "")
    q, choice = parsed
    return Event("choice", event_id, choice=choice, q=q)


def to_event(msg: dict[str, Any]) -> Event | None:
    """One Cloud API message object -> an engine event (None: ignore, e.g. a reaction)."""
    kind = msg.get("type")
    event_id = f"wa:{msg.get('id')}"
    if kind == "text":
        return Event("text", event_id, text=str((msg.get("text") or {}).get("body") or ""))
    if kind == "interactive":
        inter = msg.get("interactive") or {}
        reply = inter.get(inter.get("type") or "") or {}
        if inter.get("type") in ("button_reply", "list_reply"):
            return _choice_event(event_id, reply.get("id"), reply.get("title"))
        return Event("unsupported", event_id)
    if kind == "button":  # a quick-reply button on a template message
        button = msg.get("button") or {}
        return _choice_event(event_id, button.get("payload"), button.get("text"))
    if kind == "image":
        image = msg.get("image") or {}
        media: dict[str, Any] = {"type": "photo", "media_id": image.get("id"),
                                 "mime_type": image.get("mime_type"), "sha256": image.get("sha256")}
        if image.get("caption"):
            media["caption"] = str(image["caption"])[:1024]
        return Event("photo", event_id, media=media)
    if kind == "location":
        loc = msg.get("location") or {}
        try:
            point = (float(loc["latitude"]), float(loc["longitude"]))
        except (KeyError, TypeError, ValueError):
            return Event("unsupported", event_id)
        return Event("location", event_id, location=point)
    if kind in ("reaction", "system", "request_welcome"):
        return None  # not a message to answer
    return Event("unsupported", event_id)  # audio, video, sticker, document, contacts, unknown...


def parse_webhook(body: dict[str, Any], phone_number_id: str | None = None) -> Parsed:
    """Messages and statuses of a webhook body, for our phone number only, in order."""
    out = Parsed()
    if not isinstance(body, dict) or body.get("object") != "whatsapp_business_account":
        return out
    for entry in body.get("entry") or []:
        for change in (entry or {}).get("changes") or []:
            value = (change or {}).get("value") or {}
            if change.get("field") not in (None, "messages"):
                continue
            number = str((value.get("metadata") or {}).get("phone_number_id") or "")
            if phone_number_id and number and number != str(phone_number_id):
                continue  # another number of the same app
            contacts = value.get("contacts") or []
            for msg in value.get("messages") or []:
                if not isinstance(msg, dict) or not msg.get("id"):
                    continue
                wa_id = msg.get("from") or None
                contact = next((c for c in contacts if c.get("wa_id") and c.get("wa_id") == wa_id),
                               contacts[0] if len(contacts) == 1 else {})
                user_id = msg.get("from_user_id") or contact.get("user_id") or None
                wa_id = wa_id or contact.get("wa_id") or None
                if not wa_id and not user_id:
                    continue
                name = (contact.get("profile") or {}).get("name") or None
                out.messages.append(Incoming(str(msg["id"]), wa_id and str(wa_id),
                                             user_id and str(user_id), name, to_event(msg),
                                             changed=_new_number(msg), at=_timestamp(msg.get("timestamp"))))
            # Meta's timestamps order the messages of one body (a stable sort: equal ones keep
            # the body's order); one resident's bodies are processed in the order stored.
            out.messages.sort(key=lambda m: m.at or datetime.min.replace(tzinfo=UTC))
            for st in value.get("statuses") or []:
                if not isinstance(st, dict) or not st.get("id") or not st.get("status"):
                    continue
                errors = st.get("errors") or []
                code = error = None
                if errors:
                    first = errors[0] or {}
                    code = _int(first.get("code"))
                    details = (first.get("error_data") or {}).get("details")
                    error = " - ".join(str(x) for x in (first.get("title") or first.get("message"),
                                                        details) if x)
                out.statuses.append(Status(str(st["id"]), str(st["status"]),
                                           _timestamp(st.get("timestamp")), code, error))
    return out


CHANGE_TYPES = ("user_changed_number", "user_changed_user_id")


def _new_number(msg: dict[str, Any]) -> NewNumber | None:
    """The new identity in a system message about a changed number or user id, else None."""
    system = msg.get("system") if msg.get("type") == "system" else None
    if not isinstance(system, dict) or system.get("type") not in CHANGE_TYPES:
        return None
    wa_id = system.get("wa_id") or system.get("new_wa_id") or None
    user_id = system.get("user_id") or system.get("new_user_id") or None
    if system.get("type") == "user_changed_user_id":
        wa_id = None  # only the business-scoped id changed
    if not wa_id and not user_id:
        return None
    return NewNumber(wa_id and str(wa_id), user_id and str(user_id))


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------- rendering




def cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def unique_titles(labels: Iterable[str], limit: int) -> list[str]:
    """Cut to ``limit``; WhatsApp refuses two buttons with the same title, so number clashes."""
    titles: list[str] = []
    for label in labels:
        title = cut(label, limit) or "-"
        n = 2
        while title in titles:
            suffix = f" ({n})"
            title = cut(label, limit - len(suffix)) + suffix
            n += 1
        titles.append(title)
    return titles


def _text_messages(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": {"body": part, "preview_url": False}} for part in split_text(text, MAX_TEXT)]


def _interactive_split(text: str) -> tuple[list[dict[str, Any]], str]:
    """Texts to send first, and the interactive body (WhatsApp allows 1024 characters there)."""
    parts = split_text(text, MAX_TEXT)
    last = parts.pop()
    tail = split_text(last, MAX_INTERACTIVE_BODY)
    body = tail.pop()
    head = [*parts, *tail]
    return [m for part in head for m in _text_messages(part)], body


def render(payload: dict[str, Any], lang: str, texts: Texts) -> list[dict[str, Any]]:
    """An outbox payload -> Cloud API message objects (without ``to``), sent in order."""
    text = str(payload.get("text") or "")
    choices = [c for c in payload.get("choices") or [] if c.get("id") and c.get("label")]
    q = payload.get("q")
    if not choices:
        return _text_messages(text)
    if len(choices) <= MAX_ROWS:
        first, body = _interactive_split(text)
        if len(choices) <= MAX_BUTTONS:
            titles = unique_titles((choice_label(c) for c in choices), BUTTON_TITLE)
            buttons = [{"type": "reply", "reply": {"id": reply_id(q, str(c["id"])), "title": t}}
                       for c, t in zip(choices, titles, strict=True)]
            interactive: dict[str, Any] = {"type": "button", "body": {"text": body},
                                           "action": {"buttons": buttons}}
        else:
            titles = unique_titles((choice_label(c) for c in choices), ROW_TITLE)
            rows = []
            for c, title in zip(choices, titles, strict=True):
                row = {"id": reply_id(q, str(c["id"]), MAX_ROW_ID), "title": title}
                label = " ".join(str(c["label"]).split())
                if len(choice_label(c)) > ROW_TITLE:  # the full words go in the description
                    row["description"] = cut(label, ROW_DESCRIPTION)
                rows.append(row)
            interactive = {"type": "list", "body": {"text": body},
                           "action": {"button": cut(texts(lang, "wa.list_button"), LIST_BUTTON),
                                      "sections": [{"rows": rows}]}}
        return [*first, {"type": "interactive", "interactive": interactive}]
    return _text_messages(numbered(text, choices, lang, texts))


def numbered(text: str, choices: list[dict[str, Any]], lang: str, texts: Texts) -> str:
    """More than 10 choices: a numbered menu; the engine takes a typed number or label."""
    answers = [c for c in choices if not c.get("nav")]
    lines = [text, ""] + [choice_label(c) if c.get("key") else f"{n}. {c['label']}"
                          for n, c in enumerate(answers, 1)]
    lines += ["", texts(lang, "wa.numbered_hint")]
    nav = [re.sub(r"^\W+|\W+$", "", str(c["label"])).lower() for c in choices if c.get("nav")]
    if nav:
        lines.append(texts(lang, "wa.nav_hint", words=" / ".join(w for w in nav if w)))
    return "\n".join(lines)


def flatten(text: str, limit: int = MAX_TEMPLATE_PARAM) -> str:
    """Template variables may not hold newlines, tabs or runs of spaces."""
    lines = [" ".join(line.split()) for line in (text or "").splitlines()]
    return cut(" · ".join(line for line in lines if line) or "-", limit)


def template_message(
    name: str, language: str, payload: dict[str, Any], buttons: int = 0
) -> dict[str, Any]:
    """A follow-up as an approved template: the text fills ``{{1}}``, answers the quick replies."""
    components: list[dict[str, Any]] = [
        {"type": "body", "parameters": [{"type": "text", "text": flatten(str(payload.get("text") or ""))}]}
    ]
    answers = [c for c in payload.get("choices") or [] if not c.get("nav")]
    for i, c in enumerate(answers[:buttons]):
        components.append({"type": "button", "sub_type": "quick_reply", "index": str(i),
                           "parameters": [{"type": "payload",
                                           "payload": reply_id(payload.get("q"), str(c["id"]))}]})
    return {"type": "template",
            "template": {"name": name, "language": {"code": language}, "components": components}}


# ---------------------------------------------------------------------- errors


class GraphError(Exception):
    """An error answer from the Graph API."""

    def __init__(self, http_status: int, code: int | None, message: str, details: str | None = None) -> None:
        super().__init__(f"{code}: {message}" + (f" ({details})" if details else ""))
        self.http_status = http_status
        self.code = code
        self.message = message
        self.details = details


def classify(code: int | None, http_status: int, reason: str) -> SendError:
    """Map a Graph API error onto the outbox's rules."""
    if code == THROUGHPUT:
        return SendError(reason, retry_after=2.0)  # pause the whole number a little
    if code in WINDOW_CODES:
        return SendError(reason, wait_for_contact=True)
    if code in RETRY_CODES or code in AUTH_CODES:
        if code in AUTH_CODES:
            log.error("WhatsApp refused our credentials (%s); check WHATSAPP_TOKEN", reason)
        return SendError(reason)  # exponential backoff (131056: only this recipient waits)
    if code is None and (http_status >= 500 or http_status == 429):
        return SendError(reason)
    return SendError(reason, permanent=True)


# ---------------------------------------------------------------------- Graph API client


class GraphClient:
    """The two Cloud API calls we need: send a message, upload a file."""

    def __init__(self, token: str, phone_number_id: str, api_base: str, timeout: float = 30.0) -> None:
        self.token = token
        self.phone_number_id = phone_number_id
        self.api_base = api_base.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self.timeout, headers={"Authorization": f"Bearer {self.token}"})
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(self, path: str, **kwargs: Any) -> dict[str, Any]:
        url = f"{self.api_base}/{self.phone_number_id}/{path}"
        async with self.session.post(url, **kwargs) as resp:
            try:
                data = await resp.json(content_type=None)
            except (ValueError, aiohttp.ContentTypeError):
                data = None
            if resp.status >= 400 or not isinstance(data, dict) or "error" in data:
                err = (data or {}).get("error") if isinstance(data, dict) else None
                if not isinstance(err, dict):
                    raise GraphError(resp.status, None, f"HTTP {resp.status}")
                raise GraphError(resp.status, _int(err.get("code")), str(err.get("message") or ""),
                                 (err.get("error_data") or {}).get("details"))
            return data

    async def send(self, to: str, message: dict[str, Any]) -> str:
        data = await self._call("messages", json={"messaging_product": "whatsapp",
                                                  "recipient_type": "individual",
                                                  **address(to), **message})
        try:
            return str(data["messages"][0]["id"])
        except (KeyError, IndexError, TypeError):
            raise GraphError(200, None, "no message id in the answer") from None

    async def download(self, media_id: str, limit: int = 16 * 1024 * 1024) -> tuple[bytes, str | None]:
        """A resident's media: look up its short-lived URL, then fetch it (with the token)."""
        url = f"{self.api_base}/{media_id}"
        async with self.session.get(url) as resp:
            info = await resp.json(content_type=None)
            if resp.status >= 400 or not isinstance(info, dict) or not info.get("url"):
                raise GraphError(resp.status, None, f"media {media_id} not available")
        if int(info.get("file_size") or 0) > limit:
            raise GraphError(413, None, f"media {media_id} too large ({info.get('file_size')} bytes)")
        async with self.session.get(str(info["url"])) as resp:
            if resp.status >= 400:
                raise GraphError(resp.status, None, f"media {media_id}: HTTP {resp.status}")
            data = await resp.content.read(limit + 1)
        if len(data) > limit:
            raise GraphError(413, None, f"media {media_id} too large")
        return data, info.get("mime_type")

    async def upload(self, path: str) -> str:
        mime = mimetypes.guess_type(path)[0] or "application/octet-stream"
        form = aiohttp.FormData()
        form.add_field("messaging_product", "whatsapp")
        form.add_field("type", mime)
        form.add_field("file", Path(path).read_bytes(), filename=Path(path).name, content_type=mime)
        data = await self._call("media", data=form)
        return str(data["id"])


# ---------------------------------------------------------------------- sender


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


def contact_info(factory: sessionmaker[Session], chat_id: str) -> tuple[str | None, datetime | None]:
    """(language, last inbound message time) of the resident behind a WhatsApp chat."""
    with factory() as db:
        row = db.execute(
            select(Contact.language, Contact.last_inbound_at)
            .where(Contact.channel == CHANNEL, Contact.external_id == chat_id)
        ).first()
    return (row[0], row[1]) if row else (None, None)


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

    async def send(self, chat_id: str, payload: dict[str, Any]) -> str | None:
        lang: str | None
        last: datetime | None
        if payload.get("erasure"):
            # The answer to the message that erased the resident (bot/privacy.py): their row
            # is gone, but they wrote a moment ago, so the window is open.
            lang, last = self.default_language, self.clock()
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
            raise SendError(f"{type(exc).__name__}: {exc}") from exc
        except (TimeoutError, aiohttp.ClientError) as exc:  # it may have arrived
            raise SendError(f"{type(exc).__name__}: {exc}", unknown=True) from exc
        except (OSError, ValueError) as exc:  # a file went missing, an id too long
            raise SendError(f"{type(exc).__name__}: {exc}", permanent=True) from exc

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


# ---------------------------------------------------------------------- storage


def store_webhook(factory: sessionmaker[Session], body: dict[str, Any], now: datetime) -> int:
    with factory() as db, db.begin():
        row = WhatsAppWebhook(body=body, received_at=now, attempts=0)
        db.add(row)
        db.flush()
        return row.id


def load_webhook(factory: sessionmaker[Session], row_id: int) -> tuple[dict[str, Any], int] | None:
    """(body, attempts so far) of a stored webhook, or None when it was already processed."""
    with factory() as db:
        row = db.get(WhatsAppWebhook, row_id)
        return (dict(row.body), row.attempts) if row is not None else None


def finish_webhook(factory: sessionmaker[Session], row_id: int, error: str | None) -> None:
    """Done: forget the body (it holds personal data). Failed: keep it for the next try."""
    with factory() as db, db.begin():
        if error is None:
            db.execute(delete(WhatsAppWebhook).where(WhatsAppWebhook.id == row_id))
        else:
            db.execute(update(WhatsAppWebhook).where(WhatsAppWebhook.id == row_id)
                       .values(attempts=WhatsAppWebhook.attempts + 1, last_error=error[:2000]))


def stored_webhooks(factory: sessionmaker[Session], before: datetime) -> list[int]:
    with factory() as db:
        return list(db.scalars(
            select(WhatsAppWebhook.id)
            .where(WhatsAppWebhook.received_at <= before, WhatsAppWebhook.attempts < MAX_WEBHOOK_ATTEMPTS)
            .order_by(WhatsAppWebhook.id)
        ))


def resolve_identity(factory: sessionmaker[Session], wa_id: str | None, user_id: str | None,
                     now: datetime) -> str:
    """The resident's key: their ``wa_id``; a BSUID seen with it maps to it, else stands alone."""
    with factory() as db, db.begin():
        if wa_id and user_id:
            known = db.get(WhatsAppIdentity, user_id)
            if known is None:
                db.add(WhatsAppIdentity(user_id=user_id, wa_id=wa_id, seen_at=now))
            else:
                known.wa_id, known.seen_at = wa_id, now
            return wa_id
        if wa_id:
            return wa_id
        assert user_id
        known = db.get(WhatsAppIdentity, user_id)
        return known.wa_id if known is not None else user_id


def event_key(message_id: str | None) -> str | None:
    """The de-duplication key of a delivery: a hash, because a ``wamid`` is the sender's phone
    number in base64 and the key outlives an erasure."""
    if not message_id:
        return None
    return "h:" + hashlib.sha256(message_id.encode()).hexdigest()


def photo_wanted(factory: sessionmaker[Session], wa_id: str | None, user_id: str | None,
                 now: datetime, timeout: timedelta) -> bool:
    """Whether the resident's conversation is at a question that takes a photo (a complaint's
    evidence). Anything else (a photo at the menu, before consent) is never downloaded."""
    with factory() as db:
        key = wa_id
        if not key and user_id:
            known = db.get(WhatsAppIdentity, user_id)
            key = known.wa_id if known is not None else user_id
        row = db.execute(
            select(Contact.consent_at, ConversationSession.state)
            .join(ConversationSession, ConversationSession.contact_id == Contact.id)
            .where(Contact.channel == CHANNEL, Contact.external_id == key)
        ).first()
    if row is None or row[0] is None:
        return False
    state = row[1] or {}
    try:
        fresh = now - datetime.fromisoformat(str(state.get("at"))) <= timeout
    except ValueError:
        fresh = False
    return fresh and (state.get("flow"), state.get("step")) in PHOTO_STEPS


def change_number(factory: sessionmaker[Session], incoming: Incoming, now: datetime) -> bool:
    """The resident has a new number (or business-scoped id): move the contact's key, so the
    same person keeps consent, conversation and history; unsent messages follow them.

    Returns False when there was nobody to move (unknown, or the new key is already someone).
    """
    change = incoming.changed
    assert change is not None
    with factory() as db, db.begin():
        old = incoming.wa_id
        if not old and incoming.user_id:
            known = db.get(WhatsAppIdentity, incoming.user_id)
            old = known.wa_id if known is not None else incoming.user_id
        new = change.wa_id or (change.user_id if old == incoming.user_id else None) or old
        number = change.wa_id or (old if old and is_phone(old) else None)
        if change.user_id and number:  # the new business-scoped id belongs to this number
            known = db.get(WhatsAppIdentity, change.user_id)
            if known is None:
                db.add(WhatsAppIdentity(user_id=change.user_id, wa_id=number, seen_at=now))
            else:
                known.wa_id, known.seen_at = number, now
        if not old or not new or new == old:
            return False
        contact = db.scalars(select(Contact).where(Contact.channel == CHANNEL, Contact.external_id == old)
                             .with_for_update()).first()
        taken = db.scalar(select(Contact.id).where(Contact.channel == CHANNEL, Contact.external_id == new))
        if contact is None or taken is not None:
            return False
        contact.external_id = new
        db.execute(update(OutboxMessage)
                   .where(OutboxMessage.channel == CHANNEL, OutboxMessage.chat_id == old,
                          OutboxMessage.status.in_(("pending", "waiting")))
                   .values(chat_id=new))
        db.execute(update(Case).where(Case.channel == CHANNEL, Case.chat_id == old).values(chat_id=new))
        db.execute(update(WhatsAppIdentity).where(WhatsAppIdentity.wa_id == old).values(wa_id=new))
        return True


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)


def release_waiting(factory: sessionmaker[Session], chat_id: str, now: datetime) -> int:
    """The resident wrote: messages parked outside the 24-hour window are due now."""
    with factory() as db, db.begin():
        res = db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.channel == CHANNEL, OutboxMessage.chat_id == chat_id,
                   OutboxMessage.status == "waiting")
            .values(status="pending", due_at=now, claimed_at=None)
        )
        return int(res.rowcount)  # type: ignore[attr-defined]


def record_statuses(factory: sessionmaker[Session], statuses: list[Status], now: datetime,
                    template: bool = False) -> list[Status]:
    """Write delivery statuses on their outbox rows; returns failures whose row was not found."""
    missing: list[Status] = []
    with factory() as db, db.begin():
        for st in statuses:
            row = db.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.channel == CHANNEL, OutboxMessage.provider_message_id == st.message_id)
                .with_for_update()
            ).first()
            if row is None:
                if st.status == "failed":
                    missing.append(st)
                continue
            when = st.at or now
            if st.status in STATUS_RANK:
                if row.delivery_status != "failed" and (
                    STATUS_RANK[st.status] > STATUS_RANK.get(row.delivery_status or "", 0)
                ):
                    row.delivery_status = st.status
                if st.status in ("delivered", "read") and (
                    row.delivered_at is None or (st.status == "delivered" and when < row.delivered_at)
                ):
                    row.delivered_at = when  # "read" implies delivered; the real time wins
                if st.status == "read" and row.read_at is None:
                    row.read_at = when
            elif st.status == "failed":
                _record_failed(db, row, st, now, template)
    return missing


def _record_failed(db: Session, row: OutboxMessage, st: Status, now: datetime, template: bool) -> None:
    row.delivery_status = "failed"
    row.error_code = str(st.error_code) if st.error_code is not None else None
    reason = f"{st.error_code}: {st.error or 'failed'}"
    error = classify(st.error_code, 200, reason)
    if error.wait_for_contact and template and not row.payload.get("wa_template"):
        row.payload = {**row.payload, "wa_template": True}  # resend it as the template
        error = SendError(reason, retry_after=0.0)
    if row.status != "sent":
        return  # already retried or failed by someone else
    apply_failure(db, row, error, now)


# ---------------------------------------------------------------------- the channel


class StatusNotYetKnown(LookupError):
    """A failure status for a message id not recorded yet (the send may still be committing)."""



class WhatsAppChannel:
    """Webhook routes, webhook processing and the send-after-commit path for replies."""

    def __init__(
        self,
        runtime: Runtime,
        sender: WhatsAppSender,
        *,
        app_secret: str,
        verify_token: str,
        phone_number_id: str | None = None,
        media_dir: Path | None = None,
        workers: int | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.runtime = runtime
        self.factory = runtime.factory
        self.sender = sender
        self.app_secret = app_secret
        self.verify_token = verify_token
        self.phone_number_id = phone_number_id
        self.media_dir = media_dir
        threads = workers or (4 if runtime.postgres else 1)  # SQLite has one writer
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="prima-wa")
        # Storing a body gets its own thread: the 200 never queues behind message processing.
        self.intake = ThreadPoolExecutor(1, thread_name_prefix="prima-wa-in")
        self._locks = KeyedLocks()
        self.pacer = Pacer(CHANNEL, limiter)
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight: set[int] = set()
        self._tails: dict[str, asyncio.Future[None]] = {}  # per resident: their last body's end

    @classmethod
    def from_app(cls, app: App, limiter: RateLimiter | None = None) -> WhatsAppChannel:
        s = app.settings
        missing = whatsapp_missing(s)
        if missing:
            raise ConfigError(f"Configuration error: {missing[0]}: required for WhatsApp "
                              f"(missing: {', '.join(missing)})")
        client = GraphClient(s.whatsapp_token or "", s.whatsapp_phone_number_id or "", s.whatsapp_graph_url)
        sender = WhatsAppSender(client, app.factory, app.runtime.clock, app.texts,
                                Templates.from_settings(s), s.default_language)
        return cls(app.runtime, sender, app_secret=s.whatsapp_app_secret or "",
                   verify_token=s.whatsapp_verify_token or "", phone_number_id=s.whatsapp_phone_number_id,
                   media_dir=s.whatsapp_media_dir, limiter=limiter)

    def add_routes(self, web_app: web.Application, path: str = WEBHOOK_PATH) -> None:
        """Serve the webhook on ``path`` of the shared aiohttp app (next to /healthz)."""
        web_app.router.add_get(path, self.verify)
        web_app.router.add_post(path, self.webhook)

    async def close(self) -> None:
        """Finish what was accepted, then stop."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.sender.client.close()
        self.executor.shutdown(wait=True)
        self.intake.shutdown(wait=True)

    async def idle(self) -> None:
        """Wait until every accepted webhook has been processed (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    # -------------------------------------------------------------- HTTP

    async def verify(self, request: web.Request) -> web.Response:
        """Meta's subscription handshake: echo the challenge for the right token only."""
        q = request.query
        token = q.get("hub.verify_token", "")
        if q.get("hub.mode") == "subscribe" and hmac.compare_digest(token.encode(), self.verify_token.encode()):
            return web.Response(text=q.get("hub.challenge", ""))
        return web.Response(status=403, text="forbidden")

    async def webhook(self, request: web.Request) -> web.Response:
        """Check the signature, store the body, answer 200; the work happens after."""
        raw = await request.clone(client_max_size=MAX_WEBHOOK_BODY).read()
        if not valid_signature(self.app_secret, raw, request.headers.get(SIGNATURE_HEADER)):
            log.warning("WhatsApp webhook with a missing or wrong signature refused")
            return web.json_response({"error": "invalid signature"}, status=403)
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply to store
            log.warning("signed WhatsApp webhook body refused (%s): not usable JSON", type(exc).__name__)
            return web.json_response({"error": "not JSON"}, status=400)
        if not isinstance(body, dict) or body.get("object") != "whatsapp_business_account":
            return web.json_response({"ok": True, "ignored": True})
        keys = self.resident_keys(body)
        # One intake thread: bodies are stored, and spawned below, in the order they came in.
        row_id = await asyncio.get_running_loop().run_in_executor(
            self.intake, store_webhook, self.factory, body, self.runtime.clock())
        self._spawn(row_id, keys)
        return web.json_response({"ok": True})

    def resident_keys(self, body: dict[str, Any]) -> set[str]:
        """The residents a body is about: its processing waits for their earlier bodies."""
        return {m.key for m in parse_webhook(body, self.phone_number_id).messages}

    def _spawn(self, row_id: int, keys: set[str] | None = None) -> None:
        """Start processing a stored body after the earlier bodies of the same residents.

        Called in storage order; each body waits for the previous one of each of its
        residents, so one resident's messages are handled in the order they were stored
        while other residents' bodies go side by side.
        """
        if row_id in self._in_flight:
            return
        self._in_flight.add(row_id)
        before = {self._tails[k] for k in keys or () if k in self._tails}
        finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for k in keys or ():
            self._tails[k] = finished
        task = asyncio.create_task(self.process(row_id, before))
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self._in_flight.discard(row_id)
            finished.set_result(None)
            for k in keys or ():
                if self._tails.get(k) is finished:
                    del self._tails[k]

        task.add_done_callback(done)

    async def retry_stored(self, older_than: timedelta = timedelta(minutes=1)) -> int:
        """Process stored bodies left by a failure or a crash; returns how many were started."""
        ids = await self._db(stored_webhooks, self.factory, self.runtime.clock() - older_than)
        started = [i for i in ids if i not in self._in_flight]
        for row_id in started:  # in storage order, each after its residents' earlier bodies
            stored = await self._db(load_webhook, self.factory, row_id)
            if stored is not None and row_id not in self._in_flight:
                self._spawn(row_id, self.resident_keys(stored[0]))
        await self.idle()
        return len(started)

    # -------------------------------------------------------------- processing

    async def process(self, row_id: int, after: set[asyncio.Future[None]] | None = None) -> None:
        """Messages in order (one resident at a time), then statuses; keep the body on failure.

        ``after``: the processing of the same residents' earlier bodies, awaited first.
        """
        if after:
            await asyncio.wait(after)
        try:
            stored = await self._db(load_webhook, self.factory, row_id)
            if stored is None:
                return
            body, attempts = stored
            parsed = parse_webhook(body, self.phone_number_id)
            for incoming in parsed.messages:
                await self.handle(incoming)
            if parsed.statuses:
                missing = await self._db(record_statuses, self.factory, parsed.statuses,
                                         self.runtime.clock(), bool(self.sender.templates.name))
                ids = [s.message_id for s in missing]
                if missing and attempts < STATUS_RETRIES:  # it may arrive before we recorded the id
                    raise StatusNotYetKnown(f"failure status for unknown message(s) {ids}")
                if missing:  # not ours (another tool on the same number?) or long gone
                    log.warning("failure status for unknown WhatsApp message(s) %s: %s", ids,
                                "; ".join(f"{s.error_code} {s.error}" for s in missing))
        except StatusNotYetKnown as exc:  # expected now and then: looked at again, no traceback
            log.debug("WhatsApp webhook %s kept: %s", row_id, exc)
            await self._db(finish_webhook, self.factory, row_id, str(exc))
            return
        except Exception as exc:
            log.exception("WhatsApp webhook %s not processed; kept for a retry", row_id)
            await self._db(finish_webhook, self.factory, row_id, f"{type(exc).__name__}: {exc}")
            return
        await self._db(finish_webhook, self.factory, row_id, None)

    def _handle_sync(self, incoming: Incoming) -> list[OutboxMessage]:
        assert incoming.event is not None
        now = self.runtime.clock()
        key = resolve_identity(self.factory, incoming.wa_id, incoming.user_id, now)
        rows = self.runtime.handle(Inbound(CHANNEL, key, key, incoming.event,
                                           event_key=event_key(incoming.message_id),
                                           display_name=incoming.name))
        release_waiting(self.factory, key, self.runtime.clock())
        return rows

    async def handle(self, incoming: Incoming) -> None:
        if incoming.changed is not None:
            moved = await self._db(change_number, self.factory, incoming, self.runtime.clock())
            log.info("WhatsApp resident changed number: contact %s", "moved" if moved else "not found")
            return
        if incoming.event is None:
            return
        key = incoming.key

        async def work() -> None:
            rows = await self._db(self._handle_sync, await self.keep_media(incoming))
            await self.deliver(rows)

        await self._locks.run(key, work)

    async def keep_media(self, incoming: Incoming) -> Incoming:
        """Save a photo before Meta deletes it; on failure keep the media id and go on."""
        event = incoming.event
        media = event.media if event is not None else None
        if event is None or self.media_dir is None or not media or not media.get("media_id"):
            return incoming
        media_id = str(media["media_id"])
        if not await self._db(photo_wanted, self.factory, incoming.wa_id, incoming.user_id,
                              self.runtime.clock(), self.runtime.session_timeout):
            return incoming  # nobody asked for it: not downloaded, not stored
        try:
            data, mime = await self.sender.client.download(media_id)
            name = re.sub(r"[^A-Za-z0-9_.-]", "_", media_id)[:100]
            ext = mimetypes.guess_extension(mime or media.get("mime_type") or "") or ".bin"
            path = self.media_dir / f"{name}{ext}"
            await self._db(_write_file, path, data)
        except (GraphError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("WhatsApp media %s not saved (%s); keeping its id only", media_id, exc)
            return incoming
        saved = {**media, "path": str(path), "size": len(data),
                 "sha256_local": hashlib.sha256(data).hexdigest()}
        return replace(incoming, event=replace(event, media=saved))

    async def deliver(self, rows: list[OutboxMessage]) -> None:
        """Send committed replies in order; after a failure the rest wait behind it.

        A send whose outcome is unknown (timeout, dropped connection) follows
        ``OUTBOX_RESEND_UNKNOWN`` like any outbox send: the dispatcher resends it (counted as
        a possible duplicate), so the reply carrying a ticket number is not lost.
        """
        sent: list[tuple[int, str | None]] = []
        failed: list[tuple[int, SendError, list[int]]] = []
        behind: list[int] | None = None
        timeout = self.runtime.send_policy.send_timeout
        for row in rows:
            if behind is not None:
                behind.append(row.id)
                continue
            await self.pacer.wait(row.chat_id)
            try:
                sent.append((row.id, await send_within(self.sender, row.chat_id, row.payload, timeout)))
            except SendError as err:
                untried: list[int] = []
                failed.append((row.id, err, untried))
                if err.retry_after is not None:
                    self.pacer.penalise(row.chat_id, err.retry_after)
                behind = untried
        if sent or failed:
            await self._db(self._record, sent, failed)

    def _record(self, sent: list[tuple[int, str | None]],
                failed: list[tuple[int, SendError, list[int]]]) -> None:
        now = self.runtime.clock()
        policy = self.runtime.send_policy
        mark_sent(self.factory, sent, now)
        self.runtime.settle_erasures(r for r, _ in sent)  # erasure confirmations: deleted once sent
        for row_id, err, untried in failed:
            status = record_failure(self.factory, row_id, err, now, max_attempts=policy.max_attempts,
                                    resend_unknown=policy.resend_unknown, untried=untried)
            log.warning("outbox %s not sent (%s): %s", row_id, status, err.reason)


# ---------------------------------------------------------------------- running


REQUIRED = ("whatsapp_token", "whatsapp_phone_number_id", "whatsapp_app_secret", "whatsapp_verify_token")


def whatsapp_missing(settings: Settings) -> list[str]:
    """Names of the WhatsApp settings still missing (all four are needed)."""
    return [name.upper() for name in REQUIRED if not getattr(settings, name)]


def whatsapp_requested(settings: Settings) -> bool:
    """Any of the four set: the operator wants WhatsApp (a missing one is then an error)."""
    return any(getattr(settings, name) for name in REQUIRED)


async def serve(app: App, stop: asyncio.Event | None = None, retry_every: float = 60.0,
                started: asyncio.Event | None = None) -> None:
    """WhatsApp (and Telegram when configured) in one process, one aiohttp server, one scheduler.

    ``started`` is set once the server listens; ``stop`` ends it (default: run until killed).
    """
    from bot.scheduler import start_background
    from bot.web.server import build_web_app, database_check, start_site

    settings = app.settings
    from bot.scheduler import shared_limiter

    channel = WhatsAppChannel.from_app(app, limiter=shared_limiter(app))
    web_app = build_web_app(checks={"database": database_check(app, channel.executor)})
    channel.add_routes(web_app)
    senders: dict[str, Any] = {CHANNEL: channel.sender}
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


async def _start_telegram(app: App, web_app: web.Application, senders: dict[str, Any],
                          cleanup: list[Callable[[], Awaitable[Any]]]) -> asyncio.Task[Any]:
    """Telegram next to WhatsApp: its webhook on the same server, or long polling in a task."""
    import secrets

    from bot.channels import telegram as tg

    s = app.settings
    bot = tg.make_bot(s.telegram_bot_token or "", s.telegram_api_base)
    from bot.scheduler import shared_limiter

    channel = tg.TelegramChannel(app.runtime, bot, app.texts, limiter=shared_limiter(app))
    dp = channel.dispatcher()
    await tg._setup_until_reachable(channel, tg.POLLING_BACKOFF)  # a refused token stops here
    from bot.channels.telegram.staffroom import with_cases  # case rows go to their topics

    senders[tg.CHANNEL] = with_cases(channel.sender, app.factory)

    async def close() -> None:
        channel.close()
        await bot.session.close()

    cleanup.append(close)
    if s.telegram_webhook_url:
        secret = s.telegram_webhook_secret or secrets.token_urlsafe(32)
        tg.add_telegram_webhook(web_app, dp, bot, secret)
        await bot.set_webhook(s.telegram_webhook_url, secret_token=secret,
                              allowed_updates=dp.resolve_used_update_types())
        return asyncio.create_task(asyncio.Event().wait())
    await bot.delete_webhook(drop_pending_updates=False)
    return asyncio.create_task(dp.start_polling(bot, handle_signals=False, close_bot_session=False,
                                                backoff_config=tg.POLLING_BACKOFF))


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
