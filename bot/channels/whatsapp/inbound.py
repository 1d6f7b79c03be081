"""Webhook bodies in: the signature check and the parsing of Cloud API payloads.

A webhook is checked (``X-Hub-Signature-256``, HMAC-SHA256 of the raw body with the app
secret, compared in constant time) before anything else. Parsing is pure: a body becomes
the residents' messages (each with its engine :class:`flows.machine.types.Event`, or a changed
number) and the delivery statuses (sent, delivered, read, failed), for our number only.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.channels.whatsapp.ids import parse_reply_id
from flows.machine.types import Event

SIGNATURE_HEADER = "X-Hub-Signature-256"
CHANGE_TYPES = ("user_changed_number", "user_changed_user_id")


def sign(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def valid_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Constant-time check of the header against the HMAC of the raw body."""
    if not header or not secret:
        return False
    return hmac.compare_digest(header.strip().encode(), sign(secret, body).encode())


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
