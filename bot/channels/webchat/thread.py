"""The web chat's conversation as stored, and its "sender".

A web resident is not pushed to: what the bot says to them is an outbox row of channel ``web``
like any other reply (committed before it is shown), and the page reads the thread from those
rows. So "sending" a web row only marks it delivered to the thread: :class:`WebSender` does
that for the outbox dispatcher (follow-ups, staff replies), and the page shows them at the
resident's next visit. Nothing is lost if the browser is closed: the rows stay until retention.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from bot.channels.common import choice_label
from bot.channels.whatsapp.store import PHOTO_STEPS
from bot.i18n import TEXTS
from bot.runtime.webtickets import WEB, issue_secrets, web_tickets
from bot.storage.models import Contact, ConversationSession, OutboxMessage

CHANNEL = WEB
SHOWN = 40  # the last messages shown; older ones stay stored
KIND_SAID = "web_said"  # the resident's own message, kept so the thread shows both sides
MAX_SAID = 4096
TOOL_BUTTONS = {"/menu": "webchat.menu", "/bahasa": "webchat.language"}  # chat.html's tool bar: command, label
Said = str | tuple[int | None, str] | None  # typed words, or (question, choice id) pressed
LOCATION_STEPS = {("complaint", "location_done")}


class WebSender:
    """The dispatcher's sender for channel ``web``: the row is now part of the thread."""

    channel = CHANNEL

    async def send(self, chat_id: str, payload: dict[str, Any]) -> str | None:
        return None


@dataclass
class View:
    """What the chat page shows for one cookie contact."""

    known: bool = False
    language: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    tickets: list[str] = field(default_factory=list)
    wants_photo: bool = False
    wants_location: bool = False
    survey: str | None = None  # the service code of the survey under way, if any

    @property
    def last(self) -> dict[str, Any] | None:
        """The bot's last message (its buttons are the ones to show)."""
        return next((m for m in reversed(self.messages) if not m.get("me")), None)


def load_view(db: Session, cid: str, now: datetime, timeout: timedelta) -> View:
    """The contact's language, the end of their thread, and what the current question takes."""
    contact = db.execute(select(Contact.id, Contact.language)
                         .where(Contact.channel == CHANNEL, Contact.external_id == cid)).first()
    if contact is None:
        return View()
    rows = db.execute(
        select(OutboxMessage.id, OutboxMessage.payload)
        .where(OutboxMessage.contact_id == contact.id, OutboxMessage.channel == CHANNEL,
               or_(OutboxMessage.status.in_(("sent", "claimed")),
                   and_(OutboxMessage.status == "pending", OutboxMessage.due_at <= now)))
        .order_by(OutboxMessage.id.desc()).limit(SHOWN)).all()
    # the resident's own words stand before the replies they got (stored just after them)
    shown = sorted(rows, key=lambda r: (r.payload.get("before", r.id), 0 if r.payload.get("me") else 1, r.id))
    state = db.scalar(select(ConversationSession.state)
                      .where(ConversationSession.contact_id == contact.id)) or {}
    where = (state.get("flow"), state.get("step"))
    try:
        fresh = now - datetime.fromisoformat(str(state.get("at"))) <= timeout
    except ValueError:
        fresh = False
    return View(known=True, language=contact.language, messages=[dict(r.payload) for r in shown],
                tickets=web_tickets(db, contact.id),
                wants_photo=fresh and where in PHOTO_STEPS,
                wants_location=fresh and where in LOCATION_STEPS,
                survey=str((state.get("data") or {}).get("service") or "") or None
                if fresh and where[0] == "survey" else None)


def settle(db: Session, rows: list[tuple[int, int | None]], cid: str, now: datetime,
           said: Said = None) -> list[tuple[str, str]]:
    """After a turn: its replies (``(id, contact id)``) are part of the thread now (sent), what
    the resident sent (``said``: their words, or the pressed choice's id) stands before them,
    and a complaint it filed gets its secret (returned once: [(ticket, secret)])."""
    if rows:
        db.execute(update(OutboxMessage).where(OutboxMessage.id.in_([r for r, _ in rows]))
                   .values(status="sent", sent_at=now, attempts=OutboxMessage.attempts + 1))
        contact_id = next((c for _, c in rows if c is not None), None)
        words = _words(db, contact_id, min(r for r, _ in rows), said)
        if words and contact_id is not None:
            db.add(OutboxMessage(channel=CHANNEL, chat_id=cid, contact_id=contact_id, kind=KIND_SAID,
                                 payload={"text": words[:MAX_SAID], "me": True, "before": min(r for r, _ in rows)},
                                 status="sent", due_at=now, created_at=now, sent_at=now, attempts=1))
    key = next((c for _, c in rows if c is not None), None)
    if key is None:  # a turn without replies (a duplicate): look the contact up
        key = db.scalar(select(Contact.id).where(Contact.channel == CHANNEL, Contact.external_id == cid))
    return issue_secrets(db, key) if key is not None else []


def _words(db: Session, contact_id: int | None, first_reply: int, said: Said) -> str | None:
    """What the resident's message was, as they saw it: their text, or the label of the button
    they pressed on the bot's message before this turn's replies (the page's Menu and Bahasa
    buttons send a command, shown as the button read)."""
    if said is None or isinstance(said, str):
        if said is None or said.startswith("/start"):  # "Mulai", a QR code's link
            return None
        tool = TOOL_BUTTONS.get(said.strip().lower())
        if tool is not None:
            lang = db.scalar(select(Contact.language).where(Contact.id == contact_id)) or "id"
            return TEXTS(lang, tool)
        return said
    q, choice = said
    last = db.scalar(select(OutboxMessage.payload).where(
        OutboxMessage.contact_id == contact_id, OutboxMessage.channel == CHANNEL,
        OutboxMessage.id < first_reply, OutboxMessage.kind != KIND_SAID, OutboxMessage.status == "sent")
        .order_by(OutboxMessage.id.desc()).limit(1))  # shown to them: not a reminder still to come
    if (last or {}).get("q") not in (None, q):  # a button of an older question (another tab): not this one's
        return None
    for c in (last or {}).get("choices") or []:
        if c.get("id") == choice:
            return choice_label(c)  # as the button read: "4. Sangat sesuai"
    return None


def photo_wanted(db: Session, cid: str, now: datetime, timeout: timedelta) -> bool:
    """Only a complaint's photo question keeps an upload (as on WhatsApp): none is stored otherwise."""
    view = load_view(db, cid, now, timeout)
    return view.wants_photo
