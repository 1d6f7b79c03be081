"""Outbox rows left ``claimed`` with no outcome recorded, and the operator's view of the queue.

A process that dies between claim and record leaves its rows ``claimed``: the dispatcher
settles them here (:func:`recover_stale`, each tick at most once a minute), and the operator
lists and resends them (``python bot.py outbox report|requeue``: :func:`stuck_rows`,
:func:`status_counts`, :func:`requeue`). Plain SQL over the outbox table, no sending; kept apart
from the dispatcher's tick loop (bot/outbox/dispatcher.py), which holds in-process state.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.outbox.store import MAX_UNCERTAIN
from bot.storage.models import OutboxMessage


def recover_stale(
    factory: sessionmaker[Session], now: datetime, older_than: timedelta, resend_unknown: bool,
    postgres: bool = False, channels: list[str] | None = None, limit: int = 1000,
) -> tuple[list[int], list[int]]:
    """Rows claimed before ``now - older_than`` whose process never recorded an outcome.

    The message may be on the resident's phone or not: an unknowable outcome, so the same
    policy as a timeout applies. With ``resend_unknown`` they become ``pending`` again at
    their old place (``due_at`` kept) and ``uncertain`` counts the possible duplicate (at
    most :data:`bot.outbox.store.MAX_UNCERTAIN` times); otherwise they are marked ``unknown``.
    ``attempts`` is left alone: whether the send was tried is not known. Only ``channels``
    (those this dispatcher sends on; all when None). Returns (resent, unknown).
    """
    with factory() as db, db.begin():
        q = (select(OutboxMessage.id, OutboxMessage.uncertain)
             .where(OutboxMessage.status == "claimed", OutboxMessage.claimed_at < now - older_than)
             .order_by(OutboxMessage.id).limit(limit))
        if channels is not None:
            q = q.where(OutboxMessage.channel.in_(channels))
        if postgres:
            q = q.with_for_update(skip_locked=True)
        rows = db.execute(q).all()
        resend = [r.id for r in rows if resend_unknown and (r.uncertain or 0) < MAX_UNCERTAIN]
        report = [r.id for r in rows if r.id not in set(resend)]
        note = f"claimed more than {older_than} before {now:%Y-%m-%d %H:%M} UTC, never confirmed"
        if resend:
            db.execute(update(OutboxMessage).where(OutboxMessage.id.in_(resend))
                       .values(status="pending", claimed_at=None,
                               uncertain=OutboxMessage.uncertain + 1,
                               last_error=f"{note}; resent, may duplicate"))
        if report:
            db.execute(update(OutboxMessage).where(OutboxMessage.id.in_(report))
                       .values(status="unknown", claimed_at=None,
                               last_error=f"{note}; outcome unknown"))
        return resend, report


def stuck_rows(
    factory: sessionmaker[Session], now: datetime, older_than: timedelta, limit: int = 1000
) -> list[OutboxMessage]:
    """Rows claimed before ``now - older_than`` with no outcome recorded: maybe sent, maybe not."""
    with factory() as db:
        return list(
            db.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.status == "claimed", OutboxMessage.claimed_at < now - older_than)
                .order_by(OutboxMessage.claimed_at, OutboxMessage.id)
                .limit(limit)
            )
        )


def status_counts(factory: sessionmaker[Session]) -> dict[str, int]:
    with factory() as db:
        return {
            s: n for s, n in db.execute(
                select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
            )
        }


def requeue(factory: sessionmaker[Session], ids: list[int], now: datetime) -> int:
    """Operator decision: send these stuck/unknown/failed rows again (may duplicate)."""
    with factory() as db, db.begin():
        res = db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids),
                   OutboxMessage.status.in_(("claimed", "unknown", "failed")),
                   OutboxMessage.chat_id != "")  # retention removed its text and chat: nothing to send
            .values(status="pending", claimed_at=None, due_at=now, attempts=0)
        )
        return int(res.rowcount)  # type: ignore[attr-defined]
