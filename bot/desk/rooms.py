"""Linking a group as an agency's staff room (``/ruangstaf``), and what queued before it.

Cases open even while an agency has no staff room; they queue. Linking a room (or moving to
another one) posts the card of every active case into it, with what the resident wrote
meanwhile.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bot.desk.access import memberships
from bot.desk.cards import post_card
from bot.desk.outgoing import staff_room, texts, to_room
from bot.desk.states import ACTIVE
from bot.storage.models import Case, CaseEvent, OutboxMessage, StaffRoom


def link_room(db: Session, channel: str, user_id: str, chat_id: str, slug: str | None,
              now: datetime, problem: str | None = None) -> tuple[bool, str, list[OutboxMessage]]:
    """``/ruangstaf``: link this group as an agency's staff room (staff/admins of it only).

    ``problem`` is what the channel found wrong with the group (no Topics, the bot not an
    admin allowed to manage topics: bot/channels/telegram/roomcheck.py), as the text key of
    the instructions; a registered member is shown them and nothing is linked."""
    mine = memberships(db, channel, user_id)
    if slug:
        mine = [(m, a) for m, a in mine if a.slug == slug.strip().lower()]
    if not mine:
        return False, texts("case.room.refused"), []
    if len(mine) > 1:
        names = ", ".join(a.slug for _, a in mine)
        return False, texts("case.room.which", agencies=names), []
    if problem is not None:
        return False, texts(problem), []
    member, agency = mine[0]
    other = db.scalars(select(StaffRoom).where(StaffRoom.chat_id == chat_id)).first()
    if other is not None and other.agency_id != agency.id:
        return False, texts("case.room.taken"), []
    room = staff_room(db, agency.id)
    if room is None:
        room = StaffRoom(agency_id=agency.id, channel=channel, chat_id=chat_id,
                         linked_by=member.contact_id, linked_at=now)
        db.add(room)
    else:
        room.chat_id, room.channel, room.linked_by, room.linked_at = chat_id, channel, member.contact_id, now
    db.flush()
    rows: list[OutboxMessage] = []
    queued = db.scalars(
        select(Case).where(Case.agency_id == agency.id, Case.status.in_(ACTIVE),
                           or_(Case.room_chat_id.is_(None), Case.room_chat_id != chat_id))
        .order_by(Case.id)
    ).all()
    for case in queued:
        case.topic_id = None
        case.card_message_id = None
        rows += post_card(db, case, now)
        name = texts("case.card.confidential") if case.confidential else (case.reporter_name or "-")
        for ev in resident_messages(db, case.id):  # what the resident wrote while it queued
            row = to_room(db, case, texts("case.room.from_resident", name=name, text=ev.reason or "-"), now)
            rows += [row] if row else []
    return True, texts("case.room.linked", agency=agency.name, queued=len(queued)), rows


def resident_messages(db: Session, case_id: int, limit: int = 20) -> list[CaseEvent]:
    """The resident's latest messages on a case, oldest first."""
    rows = db.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id,
                                              CaseEvent.kind == "from_resident")
                      .order_by(CaseEvent.id.desc()).limit(limit)).all()
    return list(reversed(rows))
