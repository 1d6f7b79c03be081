"""Outbox bookkeeping shared by every sender.

Payload schema (JSON, one row = one message)::

    {"text": str,                                   # plain text, never markup
     "choices": [{"id": str, "label": str, "nav": bool}, ...],
     "q": int | None,                               # question number for button validation
     "photo": {"path": str, "caption": str},        # optional: send a picture instead
     "document": {"path": str, "filename": str, "caption": str}}   # optional: a file

Row status: pending -> claimed -> sent | failed | unknown (outcome unknowable and not resent:
reported) | cancelled | waiting (may only be sent after the resident writes again, e.g.
outside WhatsApp's 24-hour window; the channel sets it back to pending when they do).

One failure policy serves immediate replies and dispatcher sends alike (:func:`apply_failure`):
a send whose outcome is unknowable (timeout, dropped connection after the request left) is
resent under ``OUTBOX_RESEND_UNKNOWN`` and counted in ``uncertain``; ``attempts`` counts only
sends really tried. Per-chat order: when a chat's oldest unsent row has to wait (backoff,
retry_after), the chat's other pending rows wait behind it (:func:`hold_chat`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from bot.storage.models import Contact, OutboxMessage

if TYPE_CHECKING:
    from bot.config import Settings

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
        code: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.permanent = permanent
        self.unknown = unknown
        self.unreachable = unreachable  # the resident blocked the bot: stop sending to them
        self.wait_for_contact = wait_for_contact  # allowed only after the resident writes again
        self.code = code  # the platform's error code (HTTP status, Graph code) or "timeout", "network"

    @property
    def outcome(self) -> str:
        """What the failure means, as counted in ``/metrics`` (``prima_sends_total{result}``)."""
        if self.wait_for_contact:
            return "waiting"
        if self.retry_after is not None:
            return "rate_limited"
        if self.permanent:
            return "permanent"
        return "unknown" if self.unknown else "retry"


class Sender(Protocol):
    """Renders one outbox payload for a channel and sends it. Raises :class:`SendError`."""

    channel: str

    async def send(self, chat_id: str, payload: dict[str, Any]) -> str | None:
        """Send and return the platform's message id (if any)."""
        ...


BACKOFF_BASE = 2.0
BACKOFF_CAP = 600.0
MAX_ATTEMPTS = 8
MAX_UNCERTAIN = 2  # resends after unknowable outcomes per row; one more unknown: report it
SEND_TIMEOUT = 10.0
HOLD_STEP = timedelta(milliseconds=1)  # rows held behind a chat's head go just after it


@dataclass(frozen=True)
class SendPolicy:
    """What happens after a failed send; the same for immediate replies and the dispatcher."""

    resend_unknown: bool = True
    max_attempts: int = MAX_ATTEMPTS
    send_timeout: float = SEND_TIMEOUT  # seconds one API call may take before its outcome is unknown

    @classmethod
    def from_settings(cls, s: Settings) -> SendPolicy:
        return cls(resend_unknown=s.outbox_resend_unknown, max_attempts=s.outbox_max_attempts,
                   send_timeout=s.outbox_send_timeout_seconds)


async def send_within(sender: Sender, chat_id: str, payload: dict[str, Any], timeout: float) -> str | None:
    """``sender.send`` that gives up after ``timeout`` seconds: a hung call never holds a worker.

    The request may have reached the platform, so the outcome is unknown (resent or reported
    by the policy).
    """
    try:
        async with asyncio.timeout(timeout):  # no extra task: the send runs in the caller's
            return await sender.send(chat_id, payload)
    except TimeoutError as exc:
        raise SendError(f"no answer within {timeout:g} s", unknown=True, code="timeout") from exc


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
    resend_unknown: bool = True,
) -> str:
    """The failure policy, on a row locked in ``db``'s transaction; returns the new status.

    429 waits ``retry_after``; 5xx and network errors back off exponentially until
    ``max_attempts``; permanent errors fail at once. An unknowable outcome (timeout after the
    request left) is either reported as ``unknown`` or, with ``resend_unknown``, retried and
    counted in ``uncertain`` (a possible duplicate), at most :data:`MAX_UNCERTAIN` times. A
    resident who blocked the bot is marked unreachable and their other pending messages are
    cancelled. A row that waits holds the rest of its chat behind it (order is kept).
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
    elif error.unknown and (not resend_unknown or (row.uncertain or 0) >= MAX_UNCERTAIN):
        row.status = "unknown"
        row.claimed_at = None
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
        hold_chat(db, row.channel, row.chat_id, row.id, row.due_at)
    return row.status


def hold_chat(db: Session, channel: str, chat_id: str, head_id: int, until: datetime) -> None:
    """The chat waits as a whole: its other pending rows due before ``until`` go just after the head.

    Without this a newer row of the chat, already due, would overtake the head that is backing off.
    """
    db.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == "pending", OutboxMessage.due_at < until + HOLD_STEP,
               OutboxMessage.channel == channel, OutboxMessage.chat_id == chat_id,
               OutboxMessage.id != head_id)
        .values(due_at=until + HOLD_STEP)
    )


def hand_back(db: Session, head: OutboxMessage, error: SendError, row_ids: list[int]) -> None:
    """Rows of a chat not tried because ``head`` failed before them: they share its fate
    without counting an attempt. They wait with it (backoff, or the resident's next message),
    are cancelled with it (resident unreachable), fail with it (a permanent error), or go on
    once its outcome is settled otherwise (sent or reported unknown)."""
    if not row_ids:
        return
    if error.unreachable:
        values: dict[str, Any] = {"status": "cancelled", "last_error": "resident unreachable"}
    elif error.permanent:  # the same verdict: a conversation must not go on with a gap
        values = {"status": "failed", "claimed_at": None,
                  "last_error": f"not sent after an earlier failure: {error.reason}"[:2000]}
    elif head.status == "waiting":
        values = {"status": "waiting", "claimed_at": None}
    elif head.status == "pending":
        values = {"status": "pending", "claimed_at": None, "due_at": head.due_at + HOLD_STEP}
    else:
        values = {"status": "pending", "claimed_at": None}
    db.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(row_ids), OutboxMessage.status == "claimed")
        .values(**values)
    )


def record_failure(
    factory: sessionmaker[Session],
    row_id: int,
    error: SendError,
    now: datetime,
    jitter: float = 0.5,
    *,
    max_attempts: int = MAX_ATTEMPTS,
    resend_unknown: bool = True,
    untried: list[int] | None = None,
) -> str:
    """Decide what happens to a row after a failed send (and to ``untried`` rows of its chat
    queued behind it); returns the new status."""
    with factory() as db, db.begin():
        row = db.get(OutboxMessage, row_id, with_for_update=True)
        if row is None:
            return "missing"
        status = apply_failure(
            db, row, error, now, jitter, max_attempts=max_attempts, resend_unknown=resend_unknown
        )
        hand_back(db, row, error, untried or [])
        return status
