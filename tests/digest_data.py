"""Helpers that store survey responses, complaints and heads the way the runtime does."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.app import App
from bot.storage.models import (
    Agency,
    Complaint,
    Contact,
    Service,
    StaffMember,
    SurveyAnswer,
    SurveyResponse,
)

_seq = itertools.count(1)


def add_response(
    app: App,
    service: str,
    at: datetime,
    scores: Sequence[int | None],
    suggestion: str | None = None,
    display_name: str | None = None,
    answered: Sequence[datetime] | None = None,
    profile: dict[str, str | None] | None = None,
) -> int:
    """One questionnaire; ``scores`` may be shorter than nine (an incomplete survey).

    ``display_name``: the resident's chat name (a contact is created for them).
    ``answered``: each answer's own time (a questionnaire finished later); all count at ``at``,
    the first answer, as the runtime stores them (``counted_at``).
    """
    with app.factory() as db, db.begin():
        svc = db.scalars(select(Service).where(Service.code == service)).one()
        contact_id = _contact(db, display_name, at) if display_name else None
        resp = SurveyResponse(
            response_key=f"seed:{next(_seq)}", agency_id=svc.agency_id, service_id=svc.id,
            contact_id=contact_id,
            channel="telegram", status="complete" if len(scores) == 9 else "partial",
            suggestion=suggestion, started_at=at, completed_at=at if len(scores) == 9 else None,
            updated_at=at, **{f"profile_{k}": v for k, v in (profile or {}).items()},
        )
        resp.answers = [
            SurveyAnswer(agency_id=svc.agency_id, service_id=svc.id, element=i + 1, score=s,
                         answered_at=answered[i] if answered else at, counted_at=at)
            for i, s in enumerate(scores)
        ]
        db.add(resp)
        db.flush()
        return resp.id


def add_complaint(
    app: App,
    service: str,
    at: datetime,
    description: str,
    category: str = "penundaan",
    resolved_at: datetime | None = None,
    *,
    reporter_name: str | None = None,
    display_name: str | None = None,
    confidential: bool = False,
) -> str:
    with app.factory() as db, db.begin():
        svc = db.scalars(select(Service).where(Service.code == service)).one()
        n = next(_seq)
        ticket = f"PRM-T{n:03d}"
        db.add(Complaint(
            ticket=ticket, agency_id=svc.agency_id, service_id=svc.id, channel="telegram",
            contact_id=_contact(db, display_name, at) if display_name else None,
            reporter_name=reporter_name, confidential=confidential,
            description=description, category=category, status="resolved" if resolved_at else "new",
            created_at=at, updated_at=resolved_at or at, resolved_at=resolved_at,
            source_key=f"seed:{n}",
        ))
        return ticket


def _contact(db: Session, display_name: str, at: datetime) -> int:
    contact = Contact(channel="telegram", external_id=f"resident-{next(_seq)}", language="id",
                      display_name=display_name, created_at=at)
    db.add(contact)
    db.flush()
    return contact.id


def add_head(app: App, agency: str, user_id: str, at: datetime, language: str = "id") -> int:
    with app.factory() as db, db.begin():
        ag = db.scalars(select(Agency).where(Agency.slug == agency)).one()
        contact = Contact(channel="telegram", external_id=user_id, language=language, created_at=at)
        db.add(contact)
        db.flush()
        db.add(StaffMember(agency_id=ag.id, contact_id=contact.id, role="head", channel="telegram",
                           chat_id=user_id, active=True, created_at=at))
        return contact.id
