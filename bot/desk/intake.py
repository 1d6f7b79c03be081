"""Why a case opens: the triggers that bring a complaint, a survey or a resident to staff.

A serious complaint (category or bribery words) and a very low survey (the agency's rule)
open a case at once; a resident may ask for a person; a follow-up answered "not resolved"
reopens the complaint's case; staff may take a ticket into review by hand (``/eskalasi``).
The rules themselves are pure (flows/triggers.py); this module turns them into cases with
:func:`bot.desk.cases.open_case`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.catalog import agency_zone
from bot.desk.access import actor_of, staff_member
from bot.desk.cards import card_buttons
from bot.desk.cases import Opened, open_case, policy, record_event
from bot.desk.outgoing import local_time, texts, to_room
from bot.desk.states import ACTIVE
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
    """A new complaint in a serious category or with bribery words goes to staff at once."""
    service = db.get(Service, complaint.service_id)
    reasons = triggers.is_serious(complaint.category, complaint.description,
                                  bool(service and service.free_by_law))
    if not reasons:
        return None
    agency = db.get(Agency, complaint.agency_id)
    assert agency is not None
    return open_case(
        db, agency=agency, source_key=f"complaint:{complaint.id}", trigger="serious",
        reasons=reasons, summary=_complaint_summary(complaint), now=now, actor="system",
        contact=contact, chat_id=chat_id, channel=channel, complaint=complaint,
        confidential=complaint.confidential,
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
    rows: list[OutboxMessage] = []
    if case.status != "reopened":
        old = case.status
        case.status = "reopened"
        case.updated_at = now
        case.resolved_at = None
        case.closed_at = None
        case.first_response_at = None
        case.first_overdue_at = None
        case.first_response_due = policy(agency).first_response_due(now)
        record_event(db, case, "status", "resident", now, from_status=old, to_status="reopened",
                     reason="resident says it is not resolved")
        row = to_room(db, case, texts("case.room.reopened", ticket=case.ticket), now,
                      choices=card_buttons(case))
        rows += [row] if row else []
    return Opened(case, False, rows)


def escalate_complaint(db: Session, channel: str, user_id: str, ticket: str,
                       now: datetime) -> tuple[str, list[OutboxMessage]]:
    """``/eskalasi <ticket>``: staff take a complaint into human review by hand."""
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
    return texts("case.escalated_manual" if opened.created else "case.exists", ticket=ticket), opened.rows
