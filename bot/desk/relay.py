"""Messages between staff and a resident while a human handles their case.

A staff member's message in the case's topic (or ``/balas <ticket>``) goes to the resident as
the bot, never from the staff member's own account; the resident's messages go to the topic
while the case relays, with a reminder now and then that a person reads them.

The first answer to a new or reopened case counts as its first response (status "open"), but
does not make the writer responsible: nobody is assigned silently. The writer is told that
the case has no one responsible yet and how to take it ("Ambil kasus"). A ``/balas`` from a
private chat is copied into the case's topic as a staff reply, so colleagues see it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.desk.access import actor_of, authorise
from bot.desk.cards import card_payload
from bot.desk.cases import Outcome, record_event, refused, set_status, sync_complaint
from bot.desk.outgoing import resident_lang, texts, to_resident, to_room
from bot.desk.states import ACTIVE
from bot.i18n import TEXTS
from bot.storage.models import Agency, Case, Contact, OutboxMessage
from flows.machine.types import Event

NOTICE_EVERY = timedelta(minutes=30)  # remind the resident that a human reads their messages


def staff_message(
    db: Session, *, channel: str, user_id: str, room_chat_id: str, topic_id: int | None,
    text: str | None, photo: str | None, now: datetime, ticket: str | None = None,
    private: bool = False,
) -> Outcome | None:
    """A staff member wrote in a case topic (or ``/balas <ticket>``): relay it to the resident.

    Returns None when the message is not about a case (a topic we do not know): ignored.
    """
    if ticket is not None:
        case = db.scalars(select(Case).where(Case.ticket == ticket).order_by(Case.id.desc())).first()
    else:
        case = db.scalars(select(Case).where(Case.room_chat_id == room_chat_id,
                                             Case.topic_id == topic_id)).first()
    if case is None:
        return None if ticket is None else refused("case.refused.unknown")
    auth = authorise(db, case.id, channel, user_id, room_chat_id, private)
    if isinstance(auth, str):
        return refused(auth)
    case, member = auth
    if case.status not in ACTIVE:
        return refused("case.refused.closed", case, case.status)
    if case.contact_id is None:
        return refused("case.refused.no_resident", case)
    actor = actor_of(member)
    rows: list[OutboxMessage] = []
    card = None
    notice = ""
    if case.status in ("new", "reopened"):
        set_status(db, case, "open", actor, "staff answered", now)
        sync_complaint(db, case, "open", "staff", None, now)
        card = card_payload(db, case)
        if case.assignee_id is None:  # answered, not taken: say so instead of assigning
            notice = texts("case.sent_unassigned", ticket=case.ticket)
    case.relay = True
    lang = resident_lang(db, case)
    agency = db.get(Agency, case.agency_id)
    assert agency is not None
    body = TEXTS(lang, "case.resident.from_staff", agency=agency.short_name, ticket=case.ticket,
                 text=(text or "").strip()[:3500])
    row = to_resident(db, case, body, now)
    if row is not None and photo:
        row.payload = {**row.payload, "tg_photo": photo}
    if row is None:
        return refused("case.refused.unreachable", case)
    rows.append(row)
    record_event(db, case, "to_resident", actor, now, reason=(text or "")[:4000] or "[photo]",
                 media={"type": "photo", "file_id": photo, "channel": channel} if photo else None)
    if ticket is not None:  # /balas from a private chat: the topic shows what was answered
        writer = db.get(Contact, member.contact_id)
        name = (writer.display_name if writer else None) or texts("case.card.no_name")
        copy = to_room(db, case, texts("case.room.staff_reply", name=name,
                                       text=(text or "").strip()[:3500] or "-"), now, photo=photo)
        rows += [copy] if copy else []
    return Outcome(True, notice, rows, case, card)


@dataclass
class Relayed:
    notice: str | None
    rows: list[OutboxMessage]


def active_relay_case(db: Session, contact_id: int) -> Case | None:
    return db.scalars(
        select(Case).where(Case.contact_id == contact_id, Case.relay, Case.status.in_(ACTIVE))
        .order_by(Case.updated_at.desc(), Case.id.desc())
    ).first()


def relay_from_resident(
    db: Session, contact: Contact, event: Event, text: str, now: datetime,
) -> Relayed | None:
    """While a human handles a case, the resident's messages go to the case's topic.

    Returns None when the engine should answer instead (no such case, or a command/button).
    """
    if event.kind not in ("text", "photo", "location"):
        return None
    case = active_relay_case(db, contact.id)
    if case is None:
        return None
    rows: list[OutboxMessage] = []
    name = texts("case.card.confidential") if case.confidential else (contact.display_name or "-")
    media: dict[str, Any] | None = None
    if event.kind == "text":
        body, photo = text, None
    elif event.kind == "photo":
        media = {**(event.media or {}), "channel": contact.channel}  # the desk shows it
        body = str(media.get("caption") or "")
        # a Telegram file id can be re-sent into the room; other channels' media cannot
        photo = media.get("file_id") if contact.channel == "telegram" else None
        if photo is None:
            body = f"[{texts('case.photo_elsewhere')}] {body}".strip()
    else:
        lat, lon = event.location or (0.0, 0.0)
        body, photo = f"📍 {lat:.5f}, {lon:.5f}", None
    if case.status == "pending":
        set_status(db, case, "open", "resident", "resident replied", now)
        sync_complaint(db, case, "open", "resident", None, now)
    record_event(db, case, "from_resident", "resident", now, reason=body[:4000] or "[photo]", media=media)
    case.last_resident_at = now
    msg = texts("case.room.from_resident", name=name, text=body or "-")
    row = to_room(db, case, msg, now, photo=str(photo) if photo else None)
    rows += [row] if row else []
    notice = None
    if case.notice_at is None or now - case.notice_at >= NOTICE_EVERY:
        case.notice_at = now
        notice = TEXTS(contact.language, "case.resident.relayed", ticket=case.ticket)
    return Relayed(notice, rows)
