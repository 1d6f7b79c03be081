"""The resident's data (UU 27/2022): what we hold, erasure, and a declined consent, through
bot.privacy; after erasure this turn's replies still go out, as rows deleted once sent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from bot.privacy import erasure as privacy_erasure
from bot.privacy import purge
from bot.runtime.types import local_time
from bot.storage.models import (
    Agency,
    Case,
    CaseEvent,
    Complaint,
    OutboxMessage,
    StaffMember,
    SurveyResponse,
)
from flows.helpers.profile import FIELD_NAMES

if TYPE_CHECKING:
    from bot.runtime.turn import Turn


def my_data(turn: Turn) -> dict[str, Any]:
    assert turn.contact is not None
    c = turn.contact
    surveys = turn.db.scalar(
        select(func.count()).select_from(SurveyResponse).where(SurveyResponse.contact_id == c.id)
    )
    tickets_ = turn.db.scalars(
        select(Complaint.ticket).where(Complaint.contact_id == c.id).order_by(Complaint.id)
    ).all()
    return {
        "channel": c.channel,
        "name": c.display_name,
        "consent": local_time(c.consent_at, "Asia/Jakarta"),
        "surveys": surveys or 0,
        "complaints": len(tickets_),
        "tickets": list(tickets_)[-10:],
        "profile": {f: getattr(c, f"profile_{f}") for f in FIELD_NAMES},
        "requests": requests(turn, c.id),
        # staff registrations of this chat: deleting the data removes them too, so say so
        "staff": [{"agency": name, "role": role} for name, role in turn.db.execute(
            select(Agency.short_name, StaffMember.role).join(Agency, StaffMember.agency_id == Agency.id)
            .where(StaffMember.contact_id == c.id, StaffMember.active.is_(True)).order_by(Agency.id))],
    }


def requests(turn: Turn, contact_id: int) -> list[dict[str, Any]]:
    """The resident's "talk to a person" requests (cases without a complaint), newest five,
    with how many messages went each way: they are kept too, so "Data saya" shows them."""
    cases = turn.db.execute(
        select(Case.id, Case.ticket, Case.status, Agency.short_name)
        .join(Agency, Case.agency_id == Agency.id)
        .where(Case.contact_id == contact_id, Case.complaint_id.is_(None))
        .order_by(Case.id.desc()).limit(5)
    ).all()
    counts: dict[tuple[int, str], int] = {
        (case_id, kind): int(n) for case_id, kind, n in turn.db.execute(
            select(CaseEvent.case_id, CaseEvent.kind, func.count())
            .where(CaseEvent.case_id.in_([row.id for row in cases]),
                   CaseEvent.kind.in_(("from_resident", "to_resident")))
            .group_by(CaseEvent.case_id, CaseEvent.kind))
    } if cases else {}
    return [{"ticket": row.ticket, "agency": row.short_name, "status": row.status,
             "sent": counts.get((row.id, "from_resident"), 0),
             "replies": counts.get((row.id, "to_resident"), 0)} for row in cases]


def delete_my_data(turn: Turn) -> dict[str, Any]:
    """UU 27/2022 erasure (bot/privacy/erasure.py): complaints, cases and survey scores stay for the
    agency, anonymised and scrubbed; everything else about the person goes."""
    assert turn.contact is not None
    erased = privacy_erasure.erase_contact(
        turn.db, turn.contact, turn.now, names=channel_names(turn),
        files=turn.rt.data_dirs,
    )
    forgotten(turn)
    return {"complaints_kept": erased.complaints}


def decline_consent(turn: Turn) -> dict[str, Any]:
    """The resident said no before giving anything: nothing of them is kept, not even the
    contact row. Their next message starts over with the consent question."""
    assert turn.contact is not None
    privacy_erasure.forget_unconsented(turn.db, turn.contact)
    forgotten(turn)
    return {}


def channel_names(turn: Turn) -> list[str]:
    """What the channel calls the resident (profile name, username): scrubbed as names."""
    return [n for n in (turn.inbound.display_name, turn.inbound.username) if n]


def forgotten(turn: Turn) -> None:
    """After erasure: this turn's replies still go out, as rows deleted once sent."""
    turn.erased = True
    for row in turn.outbox:
        erasure_row(row)
    turn.db.flush()
    turn.contact = None


def erasure_row(row: OutboxMessage) -> None:
    row.contact_id = None
    row.kind = purge.ERASURE_KIND
    row.ref = purge.ERASURE_REF
    row.payload = {**row.payload, "erasure": True}
