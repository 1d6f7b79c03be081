"""The engine's complaint calls: file a complaint (with its case in the agency's queue, urgent
when serious) and answer a follow-up button (check-in, rating, survey reminder).

The resident's check-in follows the case (bot/desk/cases.py asks when staff resolve it,
bot/desk/deadlines.py says when it is late); the blind "is it solved?" timer is kept only for
a complaint that got no case.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bot.desk import intake
from bot.desk.states import URGENT
from bot.outbox import followups
from bot.storage import tickets
from bot.storage.models import Complaint, Service, StatusChange

if TYPE_CHECKING:
    from bot.runtime.turn import Turn


def create_complaint(turn: Turn, key: str, service: str, **data: Any) -> dict[str, Any]:
    assert turn.contact is not None
    db, now = turn.db, turn.now
    source_key = f"{turn.contact.id}:{key}"
    existing = db.scalars(select(Complaint).where(Complaint.source_key == source_key)).first()
    if existing is not None:  # the same confirmation pressed twice
        return {"ticket": existing.ticket}
    svc = db.scalars(select(Service).where(Service.code == service)).one()
    ticket = tickets.unique_ticket(db)
    location = data.get("location")
    complaint = Complaint(
        ticket=ticket,
        contact_id=turn.contact.id,
        agency_id=svc.agency_id,
        service_id=svc.id,
        channel=turn.inbound.channel,
        description=data["description"],
        category=data["category"],
        occurred=data.get("occurred"),
        # location_public: the resident agreed to show the point on the public map (Open311)
        attachments={"photos": data.get("photos") or [],
                     **({"location_public": bool(data.get("location_public"))} if location else {})},
        latitude=location[0] if location else None,
        longitude=location[1] if location else None,
        location_text=data.get("location_text"),
        confidential=bool(data.get("confidential")),
        contact_consent=bool(data.get("contact_ok")),
        reporter_name=turn.contact.display_name,
        status="new",
        created_at=now,
        updated_at=now,
        source_key=source_key,
    )
    db.add(complaint)
    db.flush()
    db.add(
        StatusChange(
            complaint_id=complaint.id, from_status=None, to_status="new",
            actor="resident", reason="filed", at=now,
        )
    )
    opened = intake.on_complaint(db, complaint, turn.contact, now,
                                chat_id=turn.inbound.chat_id, channel=turn.inbound.channel)
    if opened is None:  # no case (its agency is gone): the blind check-in is all there is
        followups.schedule_checkin(
            db, complaint, turn.contact, now,
            chat_id=turn.inbound.chat_id, channel=turn.inbound.channel,
        )
        return {"ticket": ticket}
    turn.later.extend(opened.rows)
    if opened.case.priority == URGENT:  # serious category or bribery words: said so
        return {"ticket": ticket, "escalated": True}
    return {"ticket": ticket}


def followup(turn: Turn, kind: str, id: int, answer: str) -> dict[str, Any]:
    """A follow-up button (check-in, rating, survey reminder): bot/outbox/followups.py checks ownership."""
    assert turn.contact is not None
    result = followups.answer(
        turn.db, turn.contact, turn.now, kind, id, answer,
        chat_id=turn.inbound.chat_id, channel=turn.inbound.channel,
    )
    if result.get("ok") and kind == "c" and answer == "no":  # not resolved: back to staff
        complaint = turn.db.get(Complaint, id)
        if complaint is not None:
            turn.later.extend(intake.on_not_resolved(turn.db, complaint, turn.contact, turn.now).rows)
    return result
