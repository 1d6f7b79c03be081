"""Web chat tickets: the secret asked with a ticket, and moving a complaint to another chat.

A resident on the web chat has no chat id, only an anonymous cookie. So a complaint filed
there gets a short secret, shown once beside the ticket (only its SHA-256 is stored): with the
ticket it shows the status from any browser. To carry on in Telegram or WhatsApp, the page mints
a one-time claim code (valid :data:`CLAIM_VALID`, stored hashed) put in a ``/start`` link;
when a chat starts the bot with it, :func:`claim_web` moves the complaint, its case and the
follow-ups still to come to that chat, so staff replies and follow-ups reach the resident there.
The secret itself never goes into a link a resident might forward.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.runtime.types import local_time
from bot.storage.models import Agency, Case, Complaint, OutboxMessage, Service
from flows.helpers.tickets import normalise_ticket
from flows.steps.status import CLAIM_PREFIX

if TYPE_CHECKING:
    from bot.runtime.turn import Turn

WEB = "web"
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L: read off a screen, typed back
SECRET_LEN = 6
CLAIM_LEN = 10
CLAIM_VALID = timedelta(hours=24)


def new_code(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def digest(code: str) -> str:
    """The stored form of a secret or claim code (typed back forgivingly: case, spaces, dashes)."""
    clean = "".join(ch for ch in code.upper() if ch.isalnum())
    return hashlib.sha256(clean.encode()).hexdigest()


def issue_secrets(db: Session, contact_id: int) -> list[tuple[str, str]]:
    """Give each web complaint of this contact that has no secret yet one; [(ticket, secret)].

    Run right after the turn that filed it commits (and on any later request, so a crash in
    between leaves no complaint without a secret). The plain secret is returned once, never stored.
    """
    found = db.scalars(select(Complaint).where(Complaint.contact_id == contact_id,
                                               Complaint.channel == WEB,
                                               Complaint.web_secret_hash.is_(None))
                       .order_by(Complaint.id)).all()
    issued = []
    for complaint in found:
        secret = new_code(SECRET_LEN)
        complaint.web_secret_hash = digest(secret)
        issued.append((complaint.ticket, secret))
    return issued


def status_by_secret(db: Session, ticket_text: str, secret: str) -> dict[str, Any] | None:
    """A web complaint's status for its ticket and secret; None for anything else (an unknown
    ticket and a wrong secret look the same)."""
    ticket = normalise_ticket(ticket_text or "")
    if ticket is None or not secret:
        return None
    row = db.execute(
        select(Complaint, Service.code, Agency.timezone)
        .join(Service, Complaint.service_id == Service.id)
        .join(Agency, Complaint.agency_id == Agency.id)
        .where(Complaint.ticket == ticket)).first()
    if row is None or not row[0].web_secret_hash:
        hmac.compare_digest(digest(secret), "0" * 64)  # about the same time either way
        return None
    complaint, code, tz = row
    if not hmac.compare_digest(complaint.web_secret_hash or "", digest(secret)):
        return None
    return {"ticket": complaint.ticket, "service": code, "status": complaint.status,
            "created": local_time(complaint.created_at, tz), "updated": local_time(complaint.updated_at, tz)}


def web_tickets(db: Session, contact_id: int) -> list[str]:
    """This browser's tickets still on the web (newest first): each may be continued in a chat."""
    return list(db.scalars(select(Complaint.ticket).where(Complaint.contact_id == contact_id,
                                                          Complaint.channel == WEB)
                           .order_by(Complaint.id.desc()).limit(5)))


def mint_claim(db: Session, contact_id: int, ticket: str, now: datetime) -> str | None:
    """A fresh one-time claim payload (``klaim_<ticket>_<code>``) for a ticket of this contact,
    replacing any earlier one; None when the ticket is not theirs."""
    complaint = db.scalars(select(Complaint).where(Complaint.contact_id == contact_id,
                                                   Complaint.ticket == ticket)).first()
    if complaint is None:
        return None
    code = new_code(CLAIM_LEN)
    complaint.web_claim_hash = digest(code)
    complaint.web_claim_until = now + CLAIM_VALID
    return f"{CLAIM_PREFIX}{complaint.ticket}_{code}"


def claim_web(turn: Turn, payload: str) -> dict[str, Any]:
    """The engine's call for ``/start klaim_<ticket>_<code>``: move the complaint to this chat.

    The code is spent whatever happens next; a wrong, used or expired one changes nothing.
    """
    assert turn.contact is not None
    db, now = turn.db, turn.now
    _, _, rest = payload.partition(CLAIM_PREFIX)
    ticket_text, _, code = rest.rpartition("_")
    ticket = normalise_ticket(ticket_text)
    if ticket is None or not code:
        return {"claimed": False}
    complaint = db.scalars(select(Complaint).where(Complaint.ticket == ticket,
                                                   Complaint.web_claim_hash == digest(code))).first()
    if complaint is None or complaint.web_claim_until is None or complaint.web_claim_until < now:
        return {"claimed": False}
    old = complaint.contact_id
    new, channel, chat_id = turn.contact.id, turn.inbound.channel, turn.inbound.chat_id
    complaint.web_claim_hash, complaint.web_claim_until = None, None
    complaint.contact_id = new
    cases = list(db.scalars(select(Case).where(Case.complaint_id == complaint.id)))
    for case in cases:
        case.contact_id, case.channel, case.chat_id = new, channel, chat_id
    refs = [f"complaint:{complaint.id}", *(f"case:{c.id}" for c in cases)]
    if old is not None and old != new:  # follow-ups still to come now go to this chat
        db.execute(update(OutboxMessage)
                   .where(OutboxMessage.contact_id == old, OutboxMessage.channel == WEB,
                          OutboxMessage.status == "pending", OutboxMessage.ref.in_(refs))
                   .values(contact_id=new, channel=channel, chat_id=chat_id))
    return {"claimed": True, "ticket": complaint.ticket}
