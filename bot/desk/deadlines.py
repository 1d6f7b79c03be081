"""Checking case deadlines: the scheduler's SLA tick, and the overdue count for the digest.

The working-time arithmetic is in bot/worktime.py (pure); this module applies it to stored
cases. A breach is flagged once per case and limit, in the case's topic and to the agency's
heads (all of one tick's breaches of an agency in one message to each head); a passed resolution limit is also told honestly to the resident (one message, quiet
hours respected). The flags are stored, so a restart never repeats them.

The case's resolution limit is the one complaint limit: the digest counts overdue complaints
from it (:func:`overdue_complaints`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from bot.catalog import agency_zone
from bot.desk.cases import policy, record_event
from bot.desk.outgoing import local_time, outbox_row, resident_lang, texts, to_resident, to_room
from bot.desk.staff import heads
from bot.desk.states import ACTIVE
from bot.storage.models import Agency, Case, Complaint, as_utc
from bot.text import split_text

ALERT_LIMIT = 4000  # characters per message to a head (Telegram allows 4096)
KIND_LATE = "case_late"  # the outbox kind of the resident's "sorry, it is late" message


def sla_tick(db: Session, now: datetime) -> int:
    """Flag cases whose limits passed, once each: in their topic and to the agency's heads; a
    passed resolution limit is also told to the resident.

    Rows are left pending for the outbox dispatcher. Returns how many breaches were flagged.
    """
    flagged = 0
    for_heads: dict[int, list[tuple[int, str]]] = {}
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
            for_heads.setdefault(case.agency_id, []).append((case.id, text))
            if kind == "resolution":
                late_notice(db, case, agency, bool(heads(db, case.agency_id)), now)
            flagged += 1
    for agency_id, breaches in for_heads.items():
        alert_heads(db, agency_id, breaches, now)
    return flagged


def alert_heads(db: Session, agency_id: int, breaches: list[tuple[int, str]], now: datetime) -> None:
    """One message per head for all of an agency's breaches found in one tick (a busy morning
    can pass many limits at once), instead of one message per case."""
    if len(breaches) == 1:
        case_id, text = breaches[0]
        ref: str | None = f"case:{case_id}"
        chunks = [text]
    else:
        ref = None
        lines = [texts("case.overdue.many", count=len(breaches))] + [text for _, text in breaches]
        chunks = split_text("\n".join(lines), ALERT_LIMIT)
    for head in heads(db, agency_id):
        for chunk in chunks:
            outbox_row(db, channel=head.channel, chat_id=head.chat_id,
                       payload={"text": chunk, "choices": [], "q": None}, now=now,
                       contact_id=head.contact_id, agency_id=agency_id, ref=ref, immediate=False)


def late_notice(db: Session, case: Case, agency: Agency, heads_told: bool, now: datetime) -> None:
    """Tell the resident honestly that their case passed its resolution limit (once: the
    caller's flag); through the outbox, out of the agency's quiet hours."""
    lang = resident_lang(db, case)
    text = texts("case.resident.late", lang, ticket=case.ticket, agency=agency.short_name,
                 due=local_time(case.resolution_due, agency_zone(agency)))
    if heads_told:
        text += "\n" + texts("case.resident.late_heads", lang, agency=agency.short_name)
    to_resident(db, case, text, now, immediate=False, kind=KIND_LATE)


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
            # as things stood at ``at``, so a past week's figure does not change later
            or_(Case.resolved_at.is_(None), Case.resolved_at >= at),
            or_(Case.closed_at.is_(None), Case.closed_at >= at),
            or_(Case.resolution_due < at,
                (or_(Case.first_response_at.is_(None), Case.first_response_at >= at)
                 & (Case.first_response_due < at))),
        )
    ) or 0


def overdue_complaints(db: Session, agency: Agency, at: datetime) -> int:
    """Complaints of an agency still unresolved at ``at`` past their case's resolution limit
    (the one complaint limit; for the digest's "overdue complaints").

    A complaint filed before every complaint opened a case has no case: its limit is computed
    the same way (the agency's and its category's resolution limit from when it was filed)."""
    unresolved = (Complaint.agency_id == agency.id) & (Complaint.created_at < at) & or_(
        Complaint.resolved_at.is_(None), Complaint.resolved_at >= at)
    with_case = db.scalar(
        select(func.count()).select_from(Complaint).join(Case, Case.complaint_id == Complaint.id)
        .where(unresolved, Case.resolution_due < at)
    ) or 0
    caseless = db.execute(
        select(Complaint.created_at, Complaint.category).outerjoin(Case, Case.complaint_id == Complaint.id)
        .where(unresolved, Case.id.is_(None))
    ).all()
    limits = {c: policy(agency, c) for c in {category for _, category in caseless}}
    return with_case + sum(1 for created, category in caseless
                           if limits[category].resolution_due(as_utc(created)) < at)
