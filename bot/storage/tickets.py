"""Ticket generation (random, so it lives outside the pure engine)."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.storage.models import Complaint
from flows.helpers.tickets import ALPHABET, LENGTH, format_ticket


def new_ticket() -> str:
    return format_ticket("".join(secrets.choice(ALPHABET) for _ in range(LENGTH)))


def unique_ticket(db: Session, attempts: int = 20) -> str:
    """A ticket not used yet. With 32^8 values a collision is rare; the unique index is the backstop."""
    for _ in range(attempts):
        ticket = new_ticket()
        if db.scalar(select(Complaint.id).where(Complaint.ticket == ticket)) is None:
            return ticket
    raise RuntimeError("could not find a free ticket number")
