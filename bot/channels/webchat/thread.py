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

from bot.channels.whatsapp.store import PHOTO_STEPS
from bot.runtime.webtickets import WEB, issue_secrets, web_tickets
from bot.storage.models import Contact, ConversationSession, OutboxMessage

CHANNEL = WEB
SHOWN = 40  # the last messages shown; older ones stay stored
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

    @property
    def last(self) -> dict[str, Any] | None:
        return self.messages[-1] if self.messages else None


def load_view(db: Session, cid: str, now: datetime, timeout: timedelta) -> View:
    """The contact's language, the end of their thread, and what the current question takes."""
    contact = db.execute(select(Contact.id, Contact.language)
                         .where(Contact.channel == CHANNEL, Contact.external_id == cid)).first()
    if contact is None:
        return View()
    rows = db.scalars(
        select(OutboxMessage.payload)
        .where(OutboxMessage.contact_id == contact.id, OutboxMessage.channel == CHANNEL,
               or_(OutboxMessage.status.in_(("sent", "claimed")),
                   and_(OutboxMessage.status == "pending", OutboxMessage.due_at <= now)))
        .order_by(OutboxMessage.id.desc()).limit(SHOWN)).all()
    state = db.scalar(select(ConversationSession.state)
                      .where(ConversationSession.contact_id == contact.id)) or {}
    where = (state.get("flow"), state.get("step"))
    try:
        fresh = now - datetime.fromisoformat(str(state.get("at"))) <= timeout
    except ValueError:
        fresh = False
    return View(known=True, language=contact.language, messages=[dict(p) for p in reversed(rows)],
                tickets=web_tickets(db, contact.id),
                wants_photo=fresh and where in PHOTO_STEPS,
                wants_location=fresh and where in LOCATION_STEPS)


def settle(db: Session, rows: list[tuple[int, int | None]], cid: str, now: datetime) -> list[tuple[str, str]]:
    """After a turn: its replies (``(id, contact id)``) are part of the thread now (sent), and a
    complaint it filed gets its secret (returned once: [(ticket, secret)])."""
    if rows:
        db.execute(update(OutboxMessage).where(OutboxMessage.id.in_([r for r, _ in rows]))
                   .values(status="sent", sent_at=now, attempts=OutboxMessage.attempts + 1))
    key = next((c for _, c in rows if c is not None), None)
    if key is None:  # a turn without replies (a duplicate): look the contact up
        key = db.scalar(select(Contact.id).where(Contact.channel == CHANNEL, Contact.external_id == cid))
    return issue_secrets(db, key) if key is not None else []


def photo_wanted(db: Session, cid: str, now: datetime, timeout: timedelta) -> bool:
    """Only a complaint's photo question keeps an upload (as on WhatsApp): none is stored otherwise."""
    view = load_view(db, cid, now, timeout)
    return view.wants_photo
