"""Where the desk's messages go: outbox rows into a case's staff-room topic or to its resident.

Every module of the desk speaks through these, so the addressing rules live once: staff-room
messages carry ``payload["case"]`` (id and topic name), and the Telegram staff sender
(bot/channels/telegram/staffroom.py) creates the case's forum topic on first use and sends
into it; a resident is written to as the bot, never as the staff member, and not at all once
unreachable. Resident text is sent as plain text (no parse mode), so it is shown literally.
The staff room is shared, so its messages are in one language (:data:`STAFF_LANG`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.desk.states import callback
from bot.i18n import TEXTS
from bot.outbox import followups
from bot.storage.models import (
    Agency,
    Case,
    Contact,
    OutboxMessage,
    Service,
    StaffRoom,
)

STAFF_LANG = "id"  # the staff room is shared: one language for its messages
KIND_CASE_RATING = "case_rating"
KIND_STAFF = "case_staff"


def local_time(when: datetime | None, tz: str) -> str:
    """A UTC instant as the agency's wall clock, e.g. "30-11-2026 15:00 WIB"."""
    if when is None:
        return "-"
    local = when.astimezone(ZoneInfo(tz))
    return f"{local:%d-%m-%Y %H:%M} {local.tzname()}"


def texts(key: str, lang: str = STAFF_LANG, **params: Any) -> str:
    return TEXTS(lang, key, **params)


def outbox_row(
    db: Session, *, channel: str, chat_id: str, payload: dict[str, Any], now: datetime,
    contact_id: int | None = None, agency_id: int | None = None, ref: str | None = None,
    kind: str = KIND_STAFF, immediate: bool = True,
) -> OutboxMessage:
    """An outbox row: ``immediate`` ones are sent by the caller right after commit."""
    row = OutboxMessage(
        contact_id=contact_id, channel=channel, chat_id=chat_id, kind=kind, payload=payload,
        status="claimed" if immediate else "pending", due_at=now,
        claimed_at=now if immediate else None, created_at=now, attempts=0,
        agency_id=agency_id, urgent=True, ref=ref, uncertain=0,
    )
    db.add(row)
    return row


def staff_room(db: Session, agency_id: int) -> StaffRoom | None:
    return db.scalars(select(StaffRoom).where(StaffRoom.agency_id == agency_id)).first()


def topic_name(case: Case, db: Session) -> str:
    """The case's forum topic: an urgent case's name starts with a red mark (set when the topic
    is created, so the room shows which cases are urgent)."""
    service = db.get(Service, case.service_id) if case.service_id else None
    what = service.name if service else texts(f"case.trigger.{case.trigger}")
    mark = "🔴 " if case.priority == "urgent" else ""
    return f"{mark}{case.ticket} · {what}"[:128]


def to_room(
    db: Session, case: Case, text: str, now: datetime, *, choices: list[dict[str, Any]] | None = None,
    photo: str | None = None, immediate: bool = True, card: bool = False, rename: bool = False,
) -> OutboxMessage | None:
    """A message into the case's topic; None while the agency has no staff room (the case queues).

    ``rename``: the topic's name changed (the case became urgent), so the sender renames it."""
    room = staff_room(db, case.agency_id)
    if room is None:
        return None
    case.room_chat_id = room.chat_id
    payload: dict[str, Any] = {
        "text": text, "choices": choices or [], "q": None,
        "case": {"id": case.id, "topic": topic_name(case, db), "card": card},
    }
    if rename:
        payload["case"]["rename"] = True
    if photo:
        payload["tg_photo"] = photo
    return outbox_row(db, channel=room.channel, chat_id=room.chat_id, payload=payload, now=now,
                      agency_id=case.agency_id, ref=f"case:{case.id}", immediate=immediate)


def to_resident(
    db: Session, case: Case, text: str, now: datetime, *, choices: list[dict[str, Any]] | None = None,
    immediate: bool = True, kind: str = KIND_STAFF, fan_out: bool = True,
) -> OutboxMessage | None:
    """A message to the resident of a case, as the bot (never as the staff member).

    Residents whose cases were marked duplicates of this one get it too (queued for the
    outbox dispatcher), except a question with buttons, which only the case's own resident
    can answer.
    """
    if fan_out and not choices:
        for dup in db.scalars(select(Case).where(Case.duplicate_of == case.id)):
            to_duplicate(db, dup, text, now)
    if case.contact_id is None:
        return None
    contact = db.get(Contact, case.contact_id)
    if contact is None or contact.unreachable_at is not None:
        return None
    payload = {"text": text, "choices": choices or [], "q": None}
    if immediate:
        return outbox_row(db, channel=contact.channel, chat_id=case.chat_id or contact.external_id,
                          payload=payload, now=now, contact_id=contact.id, agency_id=case.agency_id,
                          ref=f"case:{case.id}", kind=kind)
    agency = db.get(Agency, case.agency_id)
    assert agency is not None
    return followups.schedule(
        db, contact=contact, agency=agency, kind=kind, payload=payload, due=now,
        dedupe_key=f"{kind}:{case.id}:{now.isoformat()}", ref=f"case:{case.id}", now=now,
        chat_id=case.chat_id, channel=contact.channel,
    )


def to_duplicate(db: Session, dup: Case, text: str, now: datetime) -> OutboxMessage | None:
    """A surviving case's message, passed on to the resident of a duplicate of it."""
    contact = db.get(Contact, dup.contact_id) if dup.contact_id else None
    if contact is None or contact.unreachable_at is not None:
        return None
    return outbox_row(db, channel=contact.channel, chat_id=dup.chat_id or contact.external_id,
                      payload={"text": text, "choices": [], "q": None}, now=now,
                      contact_id=contact.id, agency_id=dup.agency_id, ref=f"case:{dup.id}",
                      immediate=False)


def resident_lang(db: Session, case: Case) -> str:
    contact = db.get(Contact, case.contact_id) if case.contact_id else None
    return contact.language if contact else STAFF_LANG


CONFIRM_NO = "no"  # the "not solved yet" button among the ratings: ``cs:rate:<case>:no``


def ask_to_confirm(db: Session, case: Case, lang: str, now: datetime) -> OutboxMessage | None:
    """Staff resolved the case: ask the resident whether it is really solved, and to rate it.

    One message (quiet hours respected): the ratings 5..1 confirm and close the case
    (:func:`rate`), "not solved yet" reopens it for staff. This replaces the blind check-in
    timer of a complaint that has a case."""
    choices = [{"id": callback("rate", case.id, str(n)), "label": TEXTS(lang, f"followup.rating.{n}"),
                "nav": False} for n in (5, 4, 3, 2, 1)]
    choices.append({"id": callback("rate", case.id, CONFIRM_NO),
                    "label": TEXTS(lang, "case.resident.not_solved"), "nav": False})
    return to_resident(db, case, TEXTS(lang, "case.resident.confirm", ticket=case.ticket), now,
                       choices=choices, immediate=False, kind=KIND_CASE_RATING)
