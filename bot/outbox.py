"""Outbox bookkeeping shared by every sender."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from bot.models import OutboxMessage


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
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.permanent = permanent
        self.unknown = unknown
        self.unreachable = unreachable  # the resident blocked the bot: stop sending to them


class Sender(Protocol):
    """Renders one outbox payload for a channel and sends it. Raises :class:`SendError`."""

    channel: str

    async def send(self, chat_id: str, payload: dict[str, Any]) -> str | None:
        """Send and return the platform's message id (if any)."""
        ...
