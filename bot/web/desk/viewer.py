"""Who is looking at the desk, and which agencies' cases they may see and work on.

Checked on every request, server-side: staff and heads see their own agencies' cases; an
admin sees every agency's (and acts where they are registered). A request for another
agency's case is refused with 403 and recorded on the case as a ``refused`` event, so an
agency can see who tried.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.desk.signin import staff_roles
from bot.storage.models import Agency, Case, CaseEvent, Contact, DeskSession, StaffMember


@dataclass
class Viewer:
    """A signed-in person and their active memberships."""

    contact: Contact
    session_id: int
    csrf: str
    members: list[StaffMember] = field(default_factory=list)
    agencies: dict[int, Agency] = field(default_factory=dict)  # every agency they may see

    @property
    def admin(self) -> bool:
        return any(m.role == "admin" for m in self.members)

    @property
    def head(self) -> bool:
        return any(m.role == "head" for m in self.members)

    @property
    def name(self) -> str:
        return self.contact.display_name or "-"

    @property
    def roles(self) -> str:
        return ", ".join(sorted({m.role for m in self.members}))

    def member_for(self, agency_id: int) -> StaffMember | None:
        """The membership that lets them act on this agency's cases (None: look only, or not at all)."""
        return next((m for m in self.members if m.agency_id == agency_id), None)

    def may_see(self, agency_id: int) -> bool:
        return agency_id in self.agencies

    @property
    def actor(self) -> str:
        return f"web:contact:{self.contact.id}"


def load_viewer(db: Session, session: DeskSession) -> Viewer | None:
    contact = db.get(Contact, session.contact_id)
    members = staff_roles(db, session.contact_id)
    if contact is None or not members:
        return None
    viewer = Viewer(contact, session.id, session.csrf, members)
    if viewer.admin:
        query = select(Agency).order_by(Agency.short_name)
    else:
        query = select(Agency).where(Agency.id.in_([m.agency_id for m in members])) \
            .order_by(Agency.short_name)
    viewer.agencies = {a.id: a for a in db.scalars(query)}
    return viewer


def refuse(db: Session, viewer: Viewer, case: Case | None, what: str, now: datetime) -> None:
    """Audit a refused request on the case it aimed at (a row other staff can see)."""
    if case is None:
        return
    db.add(CaseEvent(case_id=case.id, kind="refused", actor=viewer.actor[:100],
                     reason=f"web: {what}"[:4000], at=now))
