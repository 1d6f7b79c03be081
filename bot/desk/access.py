"""Who may act on a case, and from where: staff of the case's agency, in its staff room.

Every button press and staff message is checked here against the case's agency and the
person's registration (bot/desk/staff.py); a member may also act from their own private chat
with the bot (``/kasus``, ``/balas``). A forged or stale press gets a refusal key, not a change.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.desk.outgoing import staff_room
from bot.storage.models import Agency, Case, Contact, StaffMember

STAFF_ROLES = ("staff", "admin", "head")


def staff_member(db: Session, channel: str, user_id: str, agency_id: int) -> StaffMember | None:
    return db.scalars(
        select(StaffMember).join(Contact, StaffMember.contact_id == Contact.id)
        .where(Contact.channel == channel, Contact.external_id == user_id,
               StaffMember.agency_id == agency_id, StaffMember.active,
               StaffMember.role.in_(STAFF_ROLES))
    ).first()


def memberships(db: Session, channel: str, user_id: str) -> list[tuple[StaffMember, Agency]]:
    return [
        (m, a) for m, a in db.execute(
            select(StaffMember, Agency).join(Contact, StaffMember.contact_id == Contact.id)
            .join(Agency, StaffMember.agency_id == Agency.id)
            .where(Contact.channel == channel, Contact.external_id == user_id, StaffMember.active,
                   StaffMember.role.in_(STAFF_ROLES))
            .order_by(Agency.slug)
        )
    ]


def actor_of(member: StaffMember) -> str:
    """How a staff member is named in the audit trail."""
    return f"staff:{member.id}:{member.role}"


def authorise(
    db: Session, case_id: int, channel: str, user_id: str, chat_id: str, private: bool,
) -> tuple[Case, StaffMember] | str:
    """The case, and the member allowed to act on it from this chat; else a refusal key."""
    case = db.get(Case, case_id, with_for_update=True)
    if case is None:
        return "case.refused.unknown"
    member = staff_member(db, channel, user_id, case.agency_id)
    if member is None:
        return "case.refused.not_staff"
    room = staff_room(db, case.agency_id)
    in_room = room is not None and room.chat_id == chat_id
    if not in_room and not (private and chat_id == member.chat_id):
        return "case.refused.wrong_room"
    return case, member
