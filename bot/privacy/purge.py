"""Erasure confirmations: marked so they are deleted once sent, and the job that deletes them.

The reply that confirms an erasure holds the person's chat id, the last trace of them; it is
kept only until its send is settled. The runtime deletes it right after the send; the
scheduler's job here is the safety net for rows sent by another process.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from bot.storage.models import OutboxMessage

ERASURE_KIND = "erasure"  # the reply confirming an erasure: deleted once sent (see purge_sent)
ERASURE_REF = "erasure"  # ``ref`` is indexed: the purge finds these rows without a scan


def purge_sent(db: Session) -> int:
    """Erasure confirmations are deleted once their send is settled (sent, failed, cancelled):
    until then the row holds the only trace of the person, their chat id, to reach them."""
    res = db.execute(
        delete(OutboxMessage)
        .where(OutboxMessage.ref == ERASURE_REF,
               OutboxMessage.status.in_(("sent", "failed", "cancelled", "unknown")))
        .execution_options(synchronize_session=False)
    )
    return int(res.rowcount)  # type: ignore[attr-defined]


PURGE_JOB = "privacy_purge"


def run_purge(factory: sessionmaker[Session]) -> int:
    """The scheduler's safety net for confirmations sent by the dispatcher or another process."""
    with factory() as db, db.begin():
        return purge_sent(db)


def register_purge_job(scheduler: Any, factory: sessionmaker[Session], every_seconds: float = 60.0) -> None:
    from apscheduler.triggers.interval import IntervalTrigger

    scheduler.add_job(run_purge, IntervalTrigger(seconds=every_seconds), args=[factory], id=PURGE_JOB,
                      name="erasure confirmations purge", max_instances=1, coalesce=True,
                      replace_existing=True)
