"""Outbox bookkeeping shared by every sender.

Payload schema (JSON, one row = one message)::

    {"text": str,                                   # plain text, never markup
     "choices": [{"id": str, "label": str, "nav": bool}, ...],
     "q": int | None,                               # question number for button validation
     "photo": {"path": str, "caption": str},        # optional: send a picture instead
     "document": {"path": str, "filename": str, "caption": str}}   # optional: a file

Row status: pending -> claimed -> sent | failed | unknown (outcome unknowable; reported,
never resent) | cancelled | waiting (may only be sent after the resident writes again, e.g.
outside WhatsApp's 24-hour window; the channel sets it back to pending when they do).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from bot.models import Contact, OutboxMessage

log = logging.getLogger(__name__)


def mark_sent(
    factory: sessionmaker[Session],
    sent: Iterable[tuple[int, str | None]],
    now: datetime,
) -> None:
    """Record delivered rows: (outbox id, provider message id)."""
    rows = list(sent)
    if not rows:
        return
    with factory() as db, db.begin():
        for row_id, provider_id in rows:
            db.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row_id)
                .values(status="sent", sent_at=now, provider_message_id=provider_id,
                        attempts=OutboxMessage.attempts + 1)
            )


def mark_failed(factory: sessionmaker[Session], row_id: int, reason: str, now: datetime) -> None:
    with factory() as db, db.begin():
        db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id)
            .values(status="failed", last_error=reason[:2000], attempts=OutboxMessage.attempts + 1)
        )


class SendError(Exception):
    """A failed send, classified so the dispatcher knows what to do next.

    ``retry_after``: the platform asked us to wait (429); ``permanent``: never retry
    (blocked, chat not found, bad request); ``unknown``: the request may have arrived
    (timeout after sending), so a retry could duplicate the message.
    """

    def __init__(
        self,
        reason: str,
        *,
        retry_after: float | None = None,
        permanent: bool = False,
        unknown: bool = False,
        unreachable: bool = False,
        wait_for_contact: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.permanent = permanent
        self.unknown = unknown
        self.unreachable = unreachable  # the resident blocked the bot: stop sending to them
        self.wait_for_contact = wait_for_contact  # allowed only after the resident writes again


class Sender(Protocol):
    """Renders one outbox payload for a channel and sends it. Raises :class:`SendError`."""

    channel: str

    async def send(self, chat_id: str, payload: dict[str, Any]) -> str | None:
        """Send and return the platform's message id (if any)."""
        ...


BACKOFF_BASE = 2.0
BACKOFF_CAP = 600.0
MAX_ATTEMPTS = 8


def backoff_seconds(attempts: int, jitter: float) -> float:
    """Exponential backoff with jitter in [0, 1): 2, 4, 8 ... seconds, capped at 10 minutes."""
    return min(BACKOFF_CAP, BACKOFF_BASE ** max(1, attempts)) * (0.5 + jitter / 2)


def apply_failure(
    db: Session,
    row: OutboxMessage,
    error: SendError,
    now: datetime,
    jitter: float = 0.5,
    *,
    max_attempts: int = MAX_ATTEMPTS,
    resend_unknown: bool = False,
) -> str:
    """The failure policy, on a row locked in ``db``'s transaction; returns the new status.

    429 waits ``retry_after``; 5xx and network errors back off exponentially until
    ``max_attempts``; permanent errors fail at once. An unknowable outcome (timeout after the
    request left) is either reported as ``unknown`` or, with ``resend_unknown``, retried and
    counted in ``uncertain`` (a possible duplicate). A resident who blocked the bot is marked
    unreachable and their other pending messages are cancelled.
    """
    row.attempts += 1
    row.last_error = error.reason[:2000]
    if error.unreachable and row.contact_id is not None:
        db.execute(
            update(Contact).where(Contact.id == row.contact_id, Contact.unreachable_at.is_(None))
            .values(unreachable_at=now)
        )
        db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.contact_id == row.contact_id, OutboxMessage.status == "pending",
                   OutboxMessage.id != row.id)
            .values(status="cancelled", last_error="resident unreachable")
        )
    if error.wait_for_contact:  # not a failure: parked until the resident writes (not counted)
        row.attempts -= 1
        row.status = "waiting"
        row.claimed_at = None
    elif error.unknown and not resend_unknown:
        row.status = "unknown"
    elif error.permanent or error.unreachable or row.attempts >= max_attempts:
        row.status = "failed"
    else:
        if error.unknown:
            row.uncertain = (row.uncertain or 0) + 1
            log.warning("outbox %s: outcome unknown (%s); resending, may duplicate", row.id, error.reason)
        wait = error.retry_after if error.retry_after is not None else backoff_seconds(row.attempts, jitter)
        row.status = "pending"
        row.claimed_at = None
        row.due_at = now + timedelta(seconds=wait)
    return row.status


def record_failure(
    factory: sessionmaker[Session],
    row_id: int,
    error: SendError,
    now: datetime,
    jitter: float = 0.5,
    *,
    max_attempts: int = MAX_ATTEMPTS,
    resend_unknown: bool = False,
) -> str:
    """Decide what happens to a row after a failed send; returns the new status."""
    with factory() as db, db.begin():
        row = db.get(OutboxMessage, row_id, with_for_update=True)
        if row is None:
            return "missing"
        return apply_failure(
            db, row, error, now, jitter, max_attempts=max_attempts, resend_unknown=resend_unknown
        )
