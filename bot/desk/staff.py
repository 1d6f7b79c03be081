"""Staff invites and registration.

An operator creates a one-time code for an agency and a role; the person who sends
``/daftar <code>`` becomes a member of that agency. Only a SHA-256 of the code is stored, so
a leaked database does not leak usable codes. Codes expire and work once; failed attempts are
stored and limited per contact, so codes cannot be guessed by brute force through the bot.

Registration does not wait for the resident consent flow: a head or staff member processes
data as part of their job, not as a data subject giving consent. They still see a privacy
notice for staff in the reply, and if they later use the bot as a resident they go through the
normal consent like everyone else.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.storage.models import Agency, Contact, StaffInvite, StaffInviteAttempt, StaffMember

ROLES = ("head", "staff", "admin")
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud and typed on phones
CODE_LENGTH = 10
DEFAULT_DAYS = 7
MAX_FAILED_PER_HOUR = 5


class StaffError(Exception):
    """An operator error, with a one-line explanation."""


@dataclass(frozen=True)
class Registration:
    """The outcome of one /daftar attempt, as the reply needs it."""

    ok: bool
    reason: str  # registered | already | invalid | expired | used | too_many | empty
    agency: str | None = None
    role: str | None = None


def normalise_code(code: str) -> str:
    """Codes are typed by hand: ignore case, spaces and dashes."""
    return "".join(ch for ch in code.upper() if ch.isalnum())


def hash_code(code: str) -> str:
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()


def format_code(raw: str) -> str:
    return f"{raw[:5]}-{raw[5:]}"


def create_invite(db: Session, agency_slug: str, role: str, now: datetime, days: int = DEFAULT_DAYS) -> str:
    """Store a new invite and return the code to hand over (shown once, never stored)."""
    if role not in ROLES:
        raise StaffError(f"Unknown role {role!r}: use one of {', '.join(ROLES)}.")
    if not 1 <= days <= 90:
        raise StaffError("--days must be between 1 and 90.")
    agency = db.scalars(select(Agency).where(Agency.slug == agency_slug)).first()
    if agency is None:
        known = ", ".join(db.scalars(select(Agency.slug).order_by(Agency.slug)))
        raise StaffError(f"Unknown agency {agency_slug!r}. Known agencies: {known or '(none)'}.")
    code = format_code("".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH)))
    db.add(
        StaffInvite(
            code_hash=hash_code(code), agency_id=agency.id, role=role,
            created_at=now, expires_at=now + timedelta(days=days),
        )
    )
    return code


def register(db: Session, contact: Contact, chat_id: str, code: str, now: datetime) -> Registration:
    """Redeem ``code`` for ``contact``. Runs inside the caller's transaction (contact row locked)."""
    failed = db.scalar(
        select(func.count())
        .select_from(StaffInviteAttempt)
        .where(StaffInviteAttempt.contact_id == contact.id, StaffInviteAttempt.at > now - timedelta(hours=1))
    ) or 0
    if failed >= MAX_FAILED_PER_HOUR:
        return Registration(False, "too_many")
    wanted = normalise_code(code)
    if not wanted:
        return Registration(False, "empty")
    invite = db.scalars(
        select(StaffInvite).where(StaffInvite.code_hash == hash_code(wanted)).with_for_update()
    ).first()
    reason = None
    if invite is None:
        reason = "invalid"
    elif invite.used_at is not None:
        if invite.used_by == contact.id:  # the same person sends their code again
            member = db.scalars(select(StaffMember).where(
                StaffMember.agency_id == invite.agency_id, StaffMember.contact_id == contact.id,
                StaffMember.active.is_(True))).first()
            if member is not None:
                agency = db.get(Agency, invite.agency_id)
                return Registration(True, "already", agency=agency.name if agency else None,
                                    role=member.role)
        reason = "used"
    elif invite.expires_at <= now:
        reason = "expired"
    if reason is not None or invite is None:
        db.add(StaffInviteAttempt(contact_id=contact.id, at=now))
        return Registration(False, reason or "invalid")
    # Claim the code first: the conditional update makes a race between two chats a single winner.
    claimed = db.execute(
        update(StaffInvite)
        .where(StaffInvite.id == invite.id, StaffInvite.used_at.is_(None))
        .values(used_at=now, used_by=contact.id)
    ).rowcount  # type: ignore[attr-defined]
    if not claimed:
        db.add(StaffInviteAttempt(contact_id=contact.id, at=now))
        return Registration(False, "used")
    agency = db.get(Agency, invite.agency_id)
    assert agency is not None
    member = db.scalars(
        select(StaffMember).where(StaffMember.agency_id == agency.id, StaffMember.contact_id == contact.id)
    ).first()
    outcome = "registered"
    if member is None:
        db.add(
            StaffMember(
                agency_id=agency.id, contact_id=contact.id, role=invite.role,
                channel=contact.channel, chat_id=chat_id, active=True, created_at=now,
            )
        )
    else:  # a new code for someone already registered updates role and chat
        outcome = "already" if member.role == invite.role and member.active else "registered"
        member.role = invite.role
        member.chat_id = chat_id
        member.active = True
    return Registration(True, outcome, agency=agency.name, role=invite.role)


def heads(db: Session, agency_id: int) -> list[StaffMember]:
    """Active heads of an agency, oldest first (the order digests are queued in)."""
    return list(
        db.scalars(
            select(StaffMember)
            .where(StaffMember.agency_id == agency_id, StaffMember.role == "head", StaffMember.active)
            .order_by(StaffMember.id)
        )
    )


def members(db: Session, agency_slug: str | None = None) -> list[tuple[StaffMember, Agency, Contact]]:
    """Everyone registered, for the operator's list."""
    stmt = (
        select(StaffMember, Agency, Contact)
        .join(Agency, StaffMember.agency_id == Agency.id)
        .join(Contact, StaffMember.contact_id == Contact.id)
        .order_by(Agency.slug, StaffMember.role, StaffMember.id)
    )
    if agency_slug:
        stmt = stmt.where(Agency.slug == agency_slug)
    return [(m, a, c) for m, a, c in db.execute(stmt)]
