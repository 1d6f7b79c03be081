"""The engine's status calls: the resident's recent tickets and one ticket's status, of a
complaint or of a case without one (same number form)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bot.runtime.types import local_time
from bot.storage.models import Agency, Case, Complaint, Service

if TYPE_CHECKING:
    from bot.runtime.turn import Turn


def my_tickets(turn: Turn) -> dict[str, Any]:
    assert turn.contact is not None
    rows = turn.db.scalars(
        select(Complaint.ticket)
        .where(Complaint.contact_id == turn.contact.id)
        .order_by(Complaint.created_at.desc(), Complaint.id.desc())
        .limit(5)
    ).all()
    return {"tickets": list(rows)}


def lookup_ticket(turn: Turn, ticket: str) -> dict[str, Any]:
    assert turn.contact is not None
    row = turn.db.execute(
        select(Complaint, Service.code, Agency.timezone)
        .join(Service, Complaint.service_id == Service.id)
        .join(Agency, Complaint.agency_id == Agency.id)
        .where(Complaint.ticket == ticket, Complaint.contact_id == turn.contact.id)
    ).first()
    if row is None:
        return _lookup_case(turn, ticket)
    complaint, code, tz = row
    return {
        "found": True,
        "ticket": complaint.ticket,
        "service": code,
        "status": complaint.status,
        "created": local_time(complaint.created_at, tz),
        "updated": local_time(complaint.updated_at, tz),
    }


def _lookup_case(turn: Turn, ticket: str) -> dict[str, Any]:
    """A case without a complaint ("Bicara dengan petugas", a low survey) was given a number
    in the same form: the resident can check it like a ticket."""
    assert turn.contact is not None
    row = turn.db.execute(
        select(Case, Agency.timezone, Agency.slug)
        .join(Agency, Case.agency_id == Agency.id)
        .where(Case.ticket == ticket, Case.contact_id == turn.contact.id)
        .order_by(Case.id.desc())
    ).first()
    if row is None:  # unknown and someone else's look the same
        return {"found": False, "ticket": ticket}
    case, tz, slug = row
    code = turn.db.scalar(select(Service.code).where(Service.id == case.service_id)) or ""
    return {
        "found": True,
        "ticket": case.ticket,
        "service": code,
        "agency": slug,  # shown when the case is about no one service ("Bicara dengan petugas")
        "status": case.status,
        "created": local_time(case.created_at, tz),
        "updated": local_time(case.updated_at, tz),
    }
