"""Staff actions beyond the card's buttons, offered by the web desk: assign to a colleague,
close, reopen, mark as a duplicate; and the agency's canned replies.

Like the rest of bot/desk they run in the caller's transaction, go through
:func:`bot.desk.cases.set_status` (one audit row per change, the complaint kept in step, the
resident told) and return the refreshed card so the Telegram topic shows the same state.
A duplicate is closed and points at the surviving case; from then on the survivor's messages
and status changes reach the duplicate's resident too (bot/desk/outgoing.py,
bot/desk/cases.py ``sync_complaint``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.desk.access import actor_of
from bot.desk.cards import card_payload
from bot.desk.cases import Outcome, record_event, refused, set_status, sync_complaint
from bot.desk.cases import reopen as reopen_case
from bot.desk.outgoing import resident_lang, texts, to_resident
from bot.desk.states import ACTIVE
from bot.i18n import TEXTS
from bot.storage.models import CannedReply, Case, Contact, OutboxMessage, StaffMember


def assign(db: Session, case: Case, member: StaffMember, assignee_id: int, now: datetime) -> Outcome:
    """Give the case to a colleague of the same agency (or take it: ``assignee_id`` = own id)."""
    colleague = db.get(StaffMember, assignee_id)
    if colleague is None or colleague.agency_id != case.agency_id or not colleague.active:
        return refused("desk.refused.assignee", case)
    if case.status not in ACTIVE:
        return refused("case.refused.stale", case, case.status)
    contact = db.get(Contact, colleague.contact_id)
    case.assignee_id = colleague.id
    case.updated_at = now
    record_event(db, case, "assign", actor_of(member), now,
                 reason=f"staff:{colleague.id} {(contact.display_name if contact else '') or ''}".strip())
    return Outcome(True, texts("desk.done.assign"), [], case, card_payload(db, case))


def close(db: Session, case: Case, member: StaffMember, now: datetime) -> Outcome:
    if case.status == "closed":
        return refused("case.refused.stale", case, "closed")
    actor = actor_of(member)
    set_status(db, case, "closed", actor, "closed by staff", now)
    sync_complaint(db, case, "closed", "staff", None, now)
    return Outcome(True, texts("desk.done.close"), [], case, card_payload(db, case))


def reopen(db: Session, case: Case, member: StaffMember, now: datetime) -> Outcome:
    if case.status not in ("resolved", "closed"):
        return refused("case.refused.stale", case, case.status)
    reopen_case(db, case, actor_of(member), "reopened by staff", now, tell_room=False)
    sync_complaint(db, case, "reopened", "staff", None, now)
    return Outcome(True, texts("desk.done.reopen"), [], case, card_payload(db, case))


def mark_duplicate(db: Session, case: Case, member: StaffMember, ticket: str, now: datetime) -> Outcome:
    """Close ``case`` as a duplicate of the agency's case ``ticket``; its resident is told and
    follows the surviving case from now on."""
    wanted = ticket.strip().upper()
    survivor = db.scalars(select(Case).where(Case.ticket == wanted, Case.agency_id == case.agency_id)
                          .order_by(Case.id.desc())).first()
    if survivor is None or survivor.id == case.id:
        return refused("desk.refused.duplicate", case)
    while survivor.duplicate_of is not None:  # point at the end of a chain, never in a circle
        nxt = db.get(Case, survivor.duplicate_of)
        if nxt is None or nxt.id == case.id:
            break
        survivor = nxt
    if survivor.id == case.id:
        return refused("desk.refused.duplicate", case)
    actor = actor_of(member)
    rows: list[OutboxMessage] = []
    case.duplicate_of = survivor.id
    record_event(db, case, "duplicate", actor, now, reason=f"duplicate of {survivor.ticket}")
    record_event(db, survivor, "duplicate", actor, now, reason=f"{case.ticket} merged here")
    lang = resident_lang(db, case)
    row = to_resident(db, case, TEXTS(lang, "desk.resident.duplicate", ticket=case.ticket,
                                      survivor=survivor.ticket), now, fan_out=False)
    rows += [row] if row else []
    if case.status != "closed":
        set_status(db, case, "closed", actor, f"duplicate of {survivor.ticket}", now)
        case.relay = False
    return Outcome(True, texts("desk.done.duplicate", ticket=survivor.ticket), rows, case,
                   card_payload(db, case))


def canned(db: Session, agency_id: int) -> list[CannedReply]:
    return list(db.scalars(select(CannedReply).where(CannedReply.agency_id == agency_id)
                           .order_by(CannedReply.title)))


def save_canned(db: Session, member: StaffMember, title: str, body: str, now: datetime,
                reply_id: int | None = None) -> CannedReply | None:
    """Add a canned reply to the member's agency, or edit one of it; None if not theirs."""
    title, body = title.strip()[:120], body.strip()[:3500]
    if not title or not body:
        return None
    if reply_id is None:
        reply = CannedReply(agency_id=member.agency_id, title=title, body=body, updated_by=member.id,
                            updated_at=now)
        db.add(reply)
        return reply
    found = db.get(CannedReply, reply_id)
    if found is None or found.agency_id != member.agency_id:
        return None
    found.title, found.body, found.updated_by, found.updated_at = title, body, member.id, now
    return found
