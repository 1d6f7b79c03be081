"""Signing staff in to the web desk without passwords, and signing them out.

A registered staff member, head or admin sends ``/masuk`` to the bot and gets a one-time link
(:func:`issue_link`): single use, valid :data:`LINK_TTL`, and only a SHA-256 of it is stored,
so a copy of the database holds no usable link. Redeeming it (:func:`redeem`) opens a browser
session whose cookie is likewise stored only as a hash, with a per-session CSRF token; the
session ends after idle time, on logout, or when the person is deactivated (:func:`deactivate`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from bot.desk.access import STAFF_ROLES
from bot.storage.models import Contact, DeskLoginToken, DeskSession, StaffMember

LINK_TTL = timedelta(minutes=10)
KEEP_SESSIONS = timedelta(days=30)  # ended or idle sessions are deleted after this
LOGIN_PATH = "/desk/login/"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def staff_roles(db: Session, contact_id: int) -> list[StaffMember]:
    """The person's active memberships (one per agency)."""
    return list(db.scalars(
        select(StaffMember).where(StaffMember.contact_id == contact_id, StaffMember.active,
                                  StaffMember.role.in_(STAFF_ROLES)).order_by(StaffMember.id)
    ))


def issue_link(db: Session, contact: Contact, now: datetime, base_url: str) -> str | None:
    """A fresh one-time sign-in link for a registered member; None for anyone else."""
    if not staff_roles(db, contact.id):
        return None
    tidy(db, contact.id, now)
    token = secrets.token_urlsafe(32)
    db.add(DeskLoginToken(token_hash=digest(token), contact_id=contact.id, created_at=now,
                          expires_at=now + LINK_TTL))
    return f"{base_url.rstrip('/')}{LOGIN_PATH}{token}"


def tidy(db: Session, contact_id: int, now: datetime) -> None:
    """Forget the person's spent links and long-ended sessions (done on each new link, so the
    tables stay the size of their active users without a job of their own)."""
    db.execute(delete(DeskLoginToken).where(DeskLoginToken.contact_id == contact_id,
                                            DeskLoginToken.expires_at < now - timedelta(days=1)))
    db.execute(delete(DeskSession).where(DeskSession.contact_id == contact_id,
                                         DeskSession.seen_at < now - KEEP_SESSIONS))


@dataclass(frozen=True)
class Opened:
    """A new browser session: the cookie value (shown once) and its CSRF token."""

    cookie: str
    csrf: str
    contact_id: int


def redeem(db: Session, token: str, now: datetime, language: str = "id") -> Opened | str:
    """Trade a link for a session; else the reason: unknown | used | expired | inactive."""
    row = db.scalars(select(DeskLoginToken).where(DeskLoginToken.token_hash == digest(token))
                     .with_for_update()).first()
    if row is None:
        return "unknown"
    if row.used_at is not None:
        return "used"
    if row.expires_at <= now:
        return "expired"
    claimed = db.execute(
        update(DeskLoginToken).where(DeskLoginToken.id == row.id, DeskLoginToken.used_at.is_(None))
        .values(used_at=now)
    ).rowcount  # type: ignore[attr-defined]
    if not claimed:
        return "used"
    if not staff_roles(db, row.contact_id):
        return "inactive"
    cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    db.add(DeskSession(session_hash=digest(cookie), contact_id=row.contact_id, csrf=csrf,
                       language=language, created_at=now, seen_at=now))
    return Opened(cookie, csrf, row.contact_id)


def current(db: Session, cookie: str | None, now: datetime, idle: timedelta) -> DeskSession | None:
    """The live session for this cookie (its idle clock restarted), or None. The caller checks
    that the person is still active staff (:func:`staff_roles`) and ends it if not
    (:func:`deactivate` ends every session at once; this covers a role removed another way)."""
    if not cookie:
        return None
    row = db.scalars(select(DeskSession).where(DeskSession.session_hash == digest(cookie))).first()
    if row is None or row.ended_at is not None:
        return None
    if now - row.seen_at > idle:
        row.ended_at = now
        return None
    if now - row.seen_at > timedelta(seconds=30):  # spare a write on every click
        row.seen_at = now
    return row


def csrf_ok(session: DeskSession, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(session.csrf.encode(), (given or "").encode())


def end(db: Session, session: DeskSession, now: datetime) -> None:
    session.ended_at = now


def deactivate(db: Session, member_id: int, now: datetime) -> StaffMember | None:
    """Deactivate one membership; a person with no active membership left loses every session
    and every unused link."""
    member = db.get(StaffMember, member_id)
    if member is None:
        return None
    member.active = False
    db.flush()
    if not staff_roles(db, member.contact_id):
        db.execute(update(DeskSession).where(DeskSession.contact_id == member.contact_id,
                                             DeskSession.ended_at.is_(None)).values(ended_at=now))
        db.execute(update(DeskLoginToken).where(DeskLoginToken.contact_id == member.contact_id,
                                                DeskLoginToken.used_at.is_(None)).values(used_at=now))
    return member
