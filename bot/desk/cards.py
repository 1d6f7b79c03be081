"""A case's card: what staff see first in its topic, and the buttons its state allows.

The card is posted when a case opens (or when a staff room is linked while it queued) and
edited in place after every staff action, so its text and buttons are built in one place. A
change from outside the staff room (the resident's rating) edits it through the outbox
(:func:`refresh_card`).
The reporter's name is shown only when the complaint is not confidential.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot.catalog import agency_zone
from bot.desk.outgoing import local_time, staff_room, texts, to_room
from bot.desk.states import ACTIONS, allowed, callback
from bot.storage.models import (
    Agency,
    Case,
    Complaint,
    Contact,
    OutboxMessage,
    Service,
    StaffMember,
)
from flows.helpers.skm import ELEMENTS


def card_text(db: Session, case: Case) -> str:
    """What staff see first in the topic. The reporter's name only when not confidential."""
    agency = db.get(Agency, case.agency_id)
    assert agency is not None
    tz = agency_zone(agency)
    service = db.get(Service, case.service_id) if case.service_id else None
    complaint = db.get(Complaint, case.complaint_id) if case.complaint_id else None
    reporter = texts("case.card.confidential") if case.confidential else (
        case.reporter_name or texts("case.card.no_name"))
    category = texts(f"cat.{complaint.category}") if complaint else "-"
    photos = len((complaint.attachments or {}).get("photos", [])) if complaint else 0
    location = texts("case.card.no_location")
    if complaint and complaint.latitude is not None and complaint.longitude is not None:
        location = f"{complaint.latitude:.5f}, {complaint.longitude:.5f}"
    elif complaint and complaint.location_text:
        location = complaint.location_text
    assignee = texts("case.card.unassigned")
    if case.assignee_id:
        member = db.get(StaffMember, case.assignee_id)
        contact = db.get(Contact, member.contact_id) if member else None
        assignee = (contact.display_name if contact else None) or texts("case.card.no_name")
    # no reasons (a resident asked for a person, staff escalated by hand): the trigger says it all
    reasons = ", ".join(reason_label(r) for r in (case.reasons or {}).get("reasons", []))
    urgent = texts("case.card.urgent") + "\n" if case.priority == "urgent" else ""  # first thing seen
    return urgent + texts(
        "case.card",
        ticket=case.ticket,
        status=texts(f"case.status.{case.status}"),
        level=texts(f"case.level.{case.level}"),
        agency=agency.short_name,
        service=service.name if service else "-",
        category=category,
        trigger=texts(f"case.trigger.{case.trigger}"),
        reasons=f" ({reasons})" if reasons else "",
        reporter=reporter,
        first_due=local_time(case.first_response_due, tz),
        resolution_due=local_time(case.resolution_due, tz),
        assignee=assignee,
        photos=photos,
        location=location,
        text=case.summary or "-",
    )


def reason_label(reason: str) -> str:
    """A stored reason code (``category:pungli``, ``followup:no``) in words staff read."""
    kind, _, value = reason.partition(":")
    if reason == "followup:no":
        return texts("case.reason.followup_no")
    if kind == "category":
        return texts(f"cat.{value}")
    if kind == "element" and value.isdigit() and 1 <= int(value) <= len(ELEMENTS):
        return texts("case.reason.element", element=texts(f"skm.{ELEMENTS[int(value) - 1]}.name"))
    if kind == "ikm":
        return texts("case.reason.ikm", value=value)
    if kind == "term":
        return f"“{value}”"
    return reason


def card_buttons(case: Case) -> list[dict[str, Any]]:
    return [{"id": callback(a, case.id), "label": texts(f"case.button.{a}"), "nav": False}
            for a in ACTIONS if allowed(a, case.status, case.level, case.assignee_id is not None)]


def card_payload(db: Session, case: Case) -> dict[str, Any]:
    return {"text": card_text(db, case), "choices": card_buttons(case), "q": None}


def post_card(db: Session, case: Case, now: datetime, immediate: bool = True) -> list[OutboxMessage]:
    """The card, then the complaint's photos, into the case's topic (nothing without a room)."""
    rows: list[OutboxMessage] = []
    card = to_room(db, case, card_text(db, case), now, choices=card_buttons(case),
                   immediate=immediate, card=True)
    if card is None:
        return rows
    rows.append(card)
    complaint = db.get(Complaint, case.complaint_id) if case.complaint_id else None
    if complaint is not None and complaint.channel == "telegram":
        for n, photo in enumerate((complaint.attachments or {}).get("photos", []), 1):
            if photo.get("file_id"):
                text = texts("case.photo", n=n, caption=photo.get("caption") or "")
                row = to_room(db, case, text, now, photo=str(photo["file_id"]), immediate=immediate)
                if row is not None:
                    rows.append(row)
    return rows


def refresh_card(db: Session, case: Case, now: datetime) -> OutboxMessage | None:
    """An outbox row that edits the case's card in place (``payload["case"]["edit"]``), for a
    change made outside the staff room; None when the card is not in the current room."""
    room = staff_room(db, case.agency_id)
    if room is None or not case.card_message_id or case.room_chat_id != room.chat_id:
        return None
    row = to_room(db, case, card_text(db, case), now, choices=card_buttons(case))
    if row is not None:
        row.payload = {**row.payload, "case": {**row.payload["case"], "edit": case.card_message_id}}
    return row
