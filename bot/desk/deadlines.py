"""Checking case deadlines: the scheduler's SLA tick, and the overdue count for the digest.

The working-time arithmetic is in bot/worktime.py (pure); this module applies it to stored
cases. A breach is flagged once per case and limit, in the case's topic and to the agency's
heads; the flags are stored, so a restart never repeats them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from bot.catalog import agency_zone
from bot.desk.cases import record_event
from bot.desk.outgoing import local_time, outbox_row, texts, to_room
from bot.desk.staff import heads
from bot.desk.states import ACTIVE
from bot.storage.models import Agency, Case


def sla_tick(db: Session, now: datetime) -> int:
    """Flag cases whose limits passed, once each: in their topic and to the agency's heads.

    Rows are left pending for the outbox dispatcher. Returns how many breaches were flagged.
    """
    flagged = 0
    first = db.scalars(
        select(Case).where(Case.status.in_(("new", "reopened")), Case.first_response_at.is_(None),
                           Case.first_overdue_at.is_(None), Case.first_response_due < now)
        .with_for_update()
    ).all()
    late = db.scalars(
        select(Case).where(Case.status.in_(ACTIVE), Case.resolution_overdue_at.is_(None),
                           Case.resolution_due < now)
        .with_for_update()
    ).all()
    for kind, cases in (("first", first), ("resolution", late)):
        for case in cases:
            agency = db.get(Agency, case.agency_id)
            assert agency is not None
            due = case.first_response_due if kind == "first" else case.resolution_due
            if kind == "first":
                case.first_overdue_at = now
            else:
                case.resolution_overdue_at = now
            record_event(db, case, "overdue", "system", now, from_status=case.status, to_status=case.status,
                         reason=f"{kind} limit {due.isoformat()} passed")
            text = texts(f"case.overdue.{kind}", ticket=case.ticket,
                         due=local_time(due, agency_zone(agency)), agency=agency.short_name)
            to_room(db, case, text, now, immediate=False)
            for head in heads(db, case.agency_id):
                outbox_row(db, channel=head.channel, chat_id=head.chat_id,
                           payload={"text": text, "choices": [], "q": None}, now=now,
                           contact_id=head.contact_id, agency_id=case.agency_id, ref=f"case:{case.id}",
                           immediate=False)
            flagged += 1
    return flagged


SLA_JOB = "case-sla"
SLA_EVERY_MINUTES = 5


def run_sla_tick(factory: sessionmaker[Session], clock: Callable[[], datetime]) -> int:
    """One scheduler tick: flag breaches in one transaction (the dispatcher sends the flags)."""
    with factory() as db, db.begin():
        return sla_tick(db, clock())


def register_sla_job(scheduler: Any, factory: sessionmaker[Session], clock: Callable[[], datetime],
                     minutes: float = SLA_EVERY_MINUTES) -> None:
    """Check deadlines every few minutes; flags are stored, so a restart never repeats them."""
    from apscheduler.triggers.interval import IntervalTrigger

    scheduler.add_job(run_sla_tick, IntervalTrigger(minutes=minutes), args=[factory, clock],
                      id=SLA_JOB, name="case SLA check", max_instances=1, coalesce=True,
                      replace_existing=True)


def overdue_count(db: Session, agency_id: int, at: datetime) -> int:
    """Cases of an agency still open past a deadline at ``at`` (for the weekly digest)."""
    return db.scalar(
        select(func.count()).select_from(Case).where(
            Case.agency_id == agency_id,
            Case.created_at < at,
            or_(Case.resolved_at.is_(None), Case.resolved_at >= at),
            Case.status != "closed",
            or_(Case.resolution_due < at,
                (Case.first_response_at.is_(None) & (Case.first_response_due < at))),
        )
    ) or 0
