"""Cases in human review: opening them and the state machine that staff and residents drive.

Everything in bot/desk runs inside the caller's database transaction and returns outbox rows;
no network calls. A case is opened once per source (``source_key``: ``complaint:12``,
``survey:7``, ``person:3:<event>``): a retried delivery or a second trigger on the same
complaint finds the existing case instead of opening another (why a case opens:
bot/desk/intake.py).

States and actions are in bot/desk/states.py. Every change is a :class:`CaseEvent` row (who,
when, from, to, why), and a case that belongs to a complaint keeps the complaint's status in
step through :func:`bot.outbox.followups.notify_status_change`, which tells the resident.
Staff press buttons on the case's card (:func:`act`); the resident rates the handling
(:func:`rate`), which closes a resolved case.

The rest of the desk: cards.py (the card), access.py (who may act), relay.py (messages between
staff and resident), rooms.py (linking a staff room), queue.py (``/kasus``), deadlines.py (SLA
ticks), outgoing.py (the rows everything sends).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.catalog import agency_zone
from bot.desk.access import actor_of, authorise
from bot.desk.cards import card_payload, post_card
from bot.desk.outgoing import (
    KIND_CASE_RATING,
    STAFF_LANG,
    outbox_row,
    resident_lang,
    texts,
    to_resident,
    to_room,
)
from bot.desk.staff import heads
from bot.desk.states import TRANSITIONS, callback, parse_callback
from bot.i18n import TEXTS
from bot.outbox import followups
from bot.storage import tickets
from bot.storage.models import (
    ID_LEN,
    Agency,
    Case,
    CaseEvent,
    Complaint,
    Contact,
    OutboxMessage,
    SurveyResponse,
)
from bot.worktime import SlaPolicy, policy_from_settings

log = logging.getLogger(__name__)


def policy(agency: Agency) -> SlaPolicy:
    """The agency's SLA; a broken setting falls back to the defaults (and is logged)."""
    try:
        return policy_from_settings(agency_zone(agency), agency.settings)
    except (ValueError, TypeError, AttributeError) as exc:
        log.error("agency %s: bad SLA settings (%s); using the defaults", agency.slug, exc)
        return policy_from_settings(agency_zone(agency), {})


@dataclass
class Opened:
    case: Case
    created: bool
    rows: list[OutboxMessage] = field(default_factory=list)


def record_event(db: Session, case: Case, kind: str, actor: str, now: datetime, *,
                 from_status: str | None = None, to_status: str | None = None,
                 reason: str | None = None) -> CaseEvent:
    ev = CaseEvent(case_id=case.id, kind=kind, actor=actor[:100], from_status=from_status,
                   to_status=to_status, reason=reason, at=now)
    db.add(ev)
    return ev


def new_ticket(db: Session) -> str:
    for _ in range(20):
        ticket = tickets.unique_ticket(db)
        if db.scalar(select(Case.id).where(Case.ticket == ticket)) is None:
            return ticket
    raise RuntimeError("could not find a free ticket number")


def open_case(
    db: Session, *, agency: Agency, source_key: str, trigger: str, reasons: list[str],
    summary: str, now: datetime, actor: str, contact: Contact | None = None,
    chat_id: str | None = None, channel: str | None = None, complaint: Complaint | None = None,
    survey: SurveyResponse | None = None, service_id: int | None = None,
    confidential: bool = False, relay: bool = False, immediate: bool = True,
) -> Opened:
    """Open the case for ``source_key`` unless it exists; post its card to the staff room."""
    existing = db.scalars(select(Case).where(Case.source_key == source_key).with_for_update()).first()
    if existing is not None:
        return Opened(existing, False)
    sla = policy(agency)
    case = Case(
        source_key=source_key[:ID_LEN],
        ticket=complaint.ticket if complaint else new_ticket(db),
        agency_id=agency.id,
        service_id=service_id if service_id is not None else (complaint.service_id if complaint else None),
        complaint_id=complaint.id if complaint else None,
        survey_response_id=survey.id if survey else None,
        contact_id=contact.id if contact else None,
        channel=channel or (contact.channel if contact else "telegram"),
        chat_id=chat_id or (contact.external_id if contact else None),
        trigger=trigger,
        reasons={"reasons": reasons},
        summary=summary[:4000],
        confidential=confidential,
        reporter_name=None if confidential else (contact.display_name if contact else None),
        status="new",
        level="staff",
        relay=relay,
        created_at=now,
        updated_at=now,
        last_resident_at=now,
        first_response_due=sla.first_response_due(now),
        resolution_due=sla.resolution_due(now),
    )
    db.add(case)
    db.flush()
    record_event(db, case, "status", actor, now, to_status="new", reason=", ".join(reasons) or trigger)
    return Opened(case, True, post_card(db, case, now, immediate=immediate))


@dataclass
class Outcome:
    """What a staff action did: ``ok`` False means nothing changed; ``notice`` explains."""

    ok: bool
    notice: str
    rows: list[OutboxMessage] = field(default_factory=list)
    case: Case | None = None
    card: dict[str, Any] | None = None  # the refreshed card for editing it in place


def sync_complaint(db: Session, case: Case, new_status: str, actor: str, reason: str | None,
                   now: datetime) -> bool:
    """Keep the complaint's status with the case's; True when the resident was told.

    The complaints of cases marked duplicates of this one follow it (their residents are told).
    """
    for dup in db.scalars(select(Case).where(Case.duplicate_of == case.id)):
        if dup.complaint_id is not None:
            other = db.get(Complaint, dup.complaint_id, with_for_update=True)
            if other is not None and other.status != new_status:
                followups.notify_status_change(db, other, new_status, actor, reason, now)
    if case.complaint_id is None:
        return False
    complaint = db.get(Complaint, case.complaint_id, with_for_update=True)
    if complaint is None or complaint.status == new_status:
        return False
    return followups.notify_status_change(db, complaint, new_status, actor, reason, now) is not None


def set_status(db: Session, case: Case, new_status: str, actor: str, reason: str | None,
               now: datetime) -> None:
    old = case.status
    case.status = new_status
    case.updated_at = now
    if new_status == "open" and case.first_response_at is None:
        case.first_response_at = now
    if new_status == "resolved":
        case.resolved_at = now
        case.relay = False
    if new_status == "closed":
        case.closed_at = now
        case.relay = False
    record_event(db, case, "status", actor, now, from_status=old, to_status=new_status, reason=reason)


def act(
    db: Session, case_id: int, action: str, *, channel: str, user_id: str, chat_id: str,
    now: datetime, private: bool = False, note: str | None = None,
) -> Outcome:
    """A button on a case card (or a command). Checked against agency and role; a forged or
    stale press changes nothing and says why."""
    auth = authorise(db, case_id, channel, user_id, chat_id, private)
    if isinstance(auth, str):
        return Outcome(False, texts(auth))
    case, member = auth
    allowed, new_status = TRANSITIONS.get(action, ((), None))
    if case.status not in allowed or (action == "head" and case.level == "head"):
        return Outcome(False, texts("case.refused.stale", status=texts(f"case.status.{case.status}")),
                       case=case, card=card_payload(db, case))
    actor = actor_of(member)
    rows: list[OutboxMessage] = []
    lang = resident_lang(db, case)
    agency = db.get(Agency, case.agency_id)
    assert agency is not None
    if action == "note":
        if not note:
            return Outcome(False, texts("case.note_how"), case=case)
        record_event(db, case, "note", actor, now, reason=note[:4000])
        return Outcome(True, texts("case.noted"), case=case)
    if action == "head":
        old_level = case.level
        case.level = "head"
        case.updated_at = now
        record_event(db, case, "escalate", actor, now, from_status=case.status, to_status=case.status,
                     reason=f"level {old_level} -> head")
        text = texts("case.head_alert", ticket=case.ticket, agency=agency.short_name)
        for head in heads(db, case.agency_id):
            rows.append(outbox_row(db, channel=head.channel, chat_id=head.chat_id,
                                   payload={"text": text, "choices": [], "q": None}, now=now,
                                   contact_id=head.contact_id, agency_id=case.agency_id,
                                   ref=f"case:{case.id}"))
        row = to_room(db, case, texts("case.room.escalated", ticket=case.ticket), now)
        rows += [row] if row else []
        return Outcome(True, texts("case.done.head"), rows, case, card_payload(db, case))
    assert new_status is not None
    set_status(db, case, new_status, actor, None, now)
    if action == "take":
        case.assignee_id = member.id
        case.relay = True
        sync_complaint(db, case, "open", "staff", None, now)
        row = to_resident(db, case, TEXTS(lang, "case.resident.taken", ticket=case.ticket), now)
        rows += [row] if row else []
    elif action == "pending":
        told = sync_complaint(db, case, "pending", "staff", None, now)
        if not told:
            row = to_resident(db, case, TEXTS(lang, "case.resident.pending", ticket=case.ticket), now)
            rows += [row] if row else []
    elif action == "resolve":
        if case.assignee_id is None:
            case.assignee_id = member.id
        if case.first_response_at is None:
            case.first_response_at = now
        sync_complaint(db, case, "resolved", "staff", None, now)
        if case.complaint_id is None:
            to_resident(db, case, TEXTS(lang, "case.resident.resolved", ticket=case.ticket), now,
                        immediate=False)
        choices = [{"id": callback("rate", case.id, str(n)), "label": TEXTS(lang, f"followup.rating.{n}"),
                    "nav": False} for n in (5, 4, 3, 2, 1)]
        to_resident(db, case, TEXTS(lang, "case.resident.rate", ticket=case.ticket), now,
                    choices=choices, immediate=False, kind=KIND_CASE_RATING)
    return Outcome(True, texts(f"case.done.{action}"), rows, case, card_payload(db, case))


def rate_choice(db: Session, contact: Contact, choice: str, now: datetime) -> str:
    """A rating button that came through the runtime (channels without their own handler)."""
    parsed = parse_callback(choice)
    if parsed is None or parsed[0] != "rate":
        return TEXTS(contact.language, "stale_button")
    return rate(db, parsed[1], parsed[2], contact.channel, contact.external_id, now)


def rate(db: Session, case_id: int, score: str, channel: str, user_id: str, now: datetime) -> str:
    """The resident rates how their case was handled (1-5); only the case's own resident."""
    case = db.get(Case, case_id, with_for_update=True)
    contact = db.scalars(select(Contact).where(Contact.channel == channel,
                                               Contact.external_id == user_id)).first()
    lang = contact.language if contact else STAFF_LANG
    if case is None or contact is None or case.contact_id != contact.id or score not in "12345" \
            or len(score) != 1:
        return TEXTS(lang, "stale_button")
    if case.rating is not None:
        return TEXTS(lang, "followup.rating_thanks")
    case.rating = int(score)
    record_event(db, case, "rating", "resident", now, reason=score)
    if case.status == "resolved":
        set_status(db, case, "closed", "resident", f"rated {score}", now)
        if case.complaint_id is not None:
            complaint = db.get(Complaint, case.complaint_id)
            if complaint is not None and complaint.status != "closed":
                followups.set_status(db, complaint, "closed", "resident", f"rated {score}", now)
    return TEXTS(lang, "followup.rating_thanks")
