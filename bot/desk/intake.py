"""Why a case opens: every complaint, and the triggers that bring a survey or a resident to staff.

Every submitted complaint opens a case in its agency's queue at once; a serious one (category
or bribery words) opens it as ``urgent``, so it stays first in every view. A very low survey
(the agency's rule) opens a case; a resident may ask for a person; a follow-up answered "not
resolved" reopens the complaint's case; staff may raise a complaint's case to urgent by hand
(``/eskalasi``). The rules themselves are pure (flows/helpers/triggers.py); this module turns
them into cases with :func:`bot.desk.cases.open_case`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.catalog import agency_zone
from bot.desk.access import actor_of, staff_member
from bot.desk.cases import Opened, open_case, record_event, reopen
from bot.desk.outgoing import local_time, texts, to_room
from bot.desk.states import ACTIVE, URGENT
from bot.storage.models import (
    Agency,
    Case,
    Complaint,
    Contact,
    OutboxMessage,
    Service,
    SurveyResponse,
)
from flows.helpers import triggers
from flows.helpers.skm import ELEMENTS


def _complaint_summary(complaint: Complaint) -> str:
    parts = [complaint.description]
    if complaint.occurred:
        parts.append(texts("case.card.occurred", occurred=complaint.occurred))
    return "\n".join(parts)


def on_complaint(
    db: Session, complaint: Complaint, contact: Contact, now: datetime,
    chat_id: str | None = None, channel: str | None = None,
) -> Opened | None:
    """Every new complaint opens its case at once; a serious category or bribery words make it
    urgent (trigger ``serious``), any other is a normal one (trigger ``complaint``).

    Returns None only when the complaint's agency is gone (the caller then keeps the blind
    check-in as the only follow-up)."""
    service = db.get(Service, complaint.service_id)
    reasons = triggers.is_serious(complaint.category, complaint.description,
                                  bool(service and service.free_by_law))
    agency = db.get(Agency, complaint.agency_id)
    if agency is None:
        return None
    return open_case(
        db, agency=agency, source_key=f"complaint:{complaint.id}",
        trigger="serious" if reasons else "complaint", reasons=reasons,
        summary=_complaint_summary(complaint), now=now, actor="system",
        contact=contact, chat_id=chat_id, channel=channel, complaint=complaint,
        confidential=complaint.confidential, priority=URGENT if reasons else "normal",
    )


def survey_rule(agency: Agency) -> str:
    rule = str((agency.settings or {}).get("escalate_survey", "both"))
    return rule if rule in triggers.SURVEY_RULES else "both"


def on_survey(
    db: Session, response: SurveyResponse, contact: Contact, now: datetime,
    chat_id: str | None = None, channel: str | None = None,
) -> Opened | None:
    """A finished survey with a very low result (the agency's rule) goes to staff."""
    if response.status != "complete":
        return None
    agency = db.get(Agency, response.agency_id)
    assert agency is not None
    answers = {a.element: a.score for a in response.answers}
    reasons = triggers.low_survey(answers, survey_rule(agency))
    if not reasons:
        return None
    lines = [
        f"{texts(f'skm.{ELEMENTS[e - 1]}.name')}: "
        + (texts(f"skm.{ELEMENTS[e - 1]}.{s}") + f" ({s})" if s else texts("survey.skip"))
        for e, s in sorted(answers.items()) if 1 <= e <= len(ELEMENTS)
    ]
    if response.suggestion:
        lines.append(texts("case.card.suggestion", suggestion=response.suggestion))
    return open_case(
        db, agency=agency, source_key=f"survey:{response.id}", trigger="low_survey",
        reasons=reasons, summary="\n".join(lines), now=now, actor="system", contact=contact,
        chat_id=chat_id, channel=channel, survey=response, service_id=response.service_id,
    )


def request_person(
    db: Session, contact: Contact, agency_slug: str, now: datetime, event_id: str,
    chat_id: str | None = None, channel: str | None = None,
) -> tuple[dict[str, Any], list[OutboxMessage]]:
    """The resident asked for a person: one open request per resident and agency.

    Returns the answer for the engine and the staff-room rows (the card of a new case).
    """
    agency = db.scalars(select(Agency).where(Agency.slug == agency_slug)).first()
    if agency is None:
        return {"ok": False}, []
    active = db.scalars(
        select(Case).where(Case.contact_id == contact.id, Case.agency_id == agency.id,
                           Case.status.in_(ACTIVE)).order_by(Case.id.desc())
    ).first()
    already = active is not None
    rows: list[OutboxMessage] = []
    if active is None:
        opened = open_case(
            db, agency=agency, source_key=f"person:{contact.id}:{event_id}", trigger="person",
            reasons=[], summary=texts("case.person_summary"), now=now, actor="resident",
            contact=contact, chat_id=chat_id, channel=channel, relay=True,
        )
        active, rows = opened.case, opened.rows
    else:
        active.relay = True
    return {"ok": True, "already": already, "ticket": active.ticket, "agency": agency.short_name,
            "due": local_time(active.first_response_due, agency_zone(agency))}, rows


def on_not_resolved(db: Session, complaint: Complaint, contact: Contact, now: datetime) -> Opened:
    """A follow-up answered "No, not resolved": reopen the complaint's case, or open one."""
    agency = db.get(Agency, complaint.agency_id)
    assert agency is not None
    case = db.scalars(
        select(Case).where(Case.source_key == f"complaint:{complaint.id}").with_for_update()
    ).first()
    if case is None:
        return open_case(
            db, agency=agency, source_key=f"complaint:{complaint.id}", trigger="not_resolved",
            reasons=["followup:no"], summary=_complaint_summary(complaint), now=now,
            actor="resident", contact=contact, complaint=complaint,
            confidential=complaint.confidential,
        )
    rows = reopen(db, case, "resident", "resident says it is not resolved", now)
    return Opened(case, False, rows)


def escalate_complaint(db: Session, channel: str, user_id: str, ticket: str,
                       now: datetime) -> tuple[str, list[OutboxMessage]]:
    """``/eskalasi <ticket>``: staff make a complaint's case urgent by hand (a complaint filed
    before every complaint opened a case gets its case now)."""
    complaint = db.scalars(select(Complaint).where(Complaint.ticket == ticket)).first()
    member = staff_member(db, channel, user_id, complaint.agency_id) if complaint else None
    if complaint is None or member is None:  # another agency's ticket looks like an unknown one
        return texts("case.refused.unknown"), []
    agency = db.get(Agency, complaint.agency_id)
    assert agency is not None
    contact = db.get(Contact, complaint.contact_id) if complaint.contact_id else None
    opened = open_case(
        db, agency=agency, source_key=f"complaint:{complaint.id}", trigger="manual",
        reasons=[], summary=_complaint_summary(complaint), now=now, actor=actor_of(member),
        contact=contact, channel=complaint.channel, complaint=complaint,
        confidential=complaint.confidential,
    )
    if opened.created:
        opened.case.priority = URGENT
        return texts("case.escalated_manual", ticket=ticket), opened.rows
    case = opened.case  # locked by open_case
    if case.priority == URGENT:
        return texts("case.exists", ticket=ticket), []
    case.priority = URGENT
    case.updated_at = now
    record_event(db, case, "priority", actor_of(member), now, from_status=case.status,
                 to_status=case.status, reason="normal -> urgent")
    row = to_room(db, case, texts("case.room.urgent", ticket=ticket), now, rename=True)
    return texts("case.prioritised", ticket=ticket), [row] if row else []
