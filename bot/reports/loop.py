"""Closing the loop with residents: when a follow-up-plan action is done, the residents who rated
its element low get one short message saying they were heard and what changed.

Who: residents whose questionnaire (``SurveyAnswer.counted_at``) rated the action's element 1 or
2 for the action's service (or any service of the agency when ``service_id`` is NULL), in the
period the action addresses. A PlanAction holds no period of its own, so that period is decided
from ``created_at``: from the start of the quarter before the one it was created in (agency
time; the quarter whose report the head was reading) up to its creation. Only residents who
consented (``consent_at``), are reachable and not erased (an erased contact's responses have no
contact any more). At most one such message per resident per week; the dedupe key
``loop:<action>:<contact>`` means marking the action done again never sends twice.

The message quotes only the action's own text (``done_text``, else ``what``), never a resident's
words, and links to ``{PUBLIC_BASE_URL}/a/<agency slug>`` when a base URL is known. It is an
outbox row like the other follow-ups (quiet hours, WhatsApp's 24-hour window by the dispatcher).
Selection is two queries (the low raters, the ones already told), not one per resident.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case as sql_case
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.catalog import agency_zone, service_title
from bot.i18n import TEXTS
from bot.outbox.followups import agency_quiet, scheduled_values
from bot.reports.periodic.period import period_of
from bot.storage.models import (
    Agency,
    Case,
    Complaint,
    Contact,
    OutboxMessage,
    PlanAction,
    Service,
    SurveyAnswer,
    SurveyResponse,
)

KIND_LOOP = "loop"
LOW = (1, 2)
WEEK = timedelta(days=7)
TEXT_MAX = 300


def addressed_period(action: PlanAction, tz: str) -> tuple[datetime, datetime]:
    """[start of the quarter before the action's creation quarter, its creation)."""
    start, _ = period_of(action.created_at, tz, "Q").previous().bounds(tz)
    return start, action.created_at


def loop_key(action_id: int, contact_id: int) -> str:
    return f"loop:{action_id}:{contact_id}"


def close_loop(db: Session, action: PlanAction, now: datetime, public_base_url: str | None = None) -> int:
    """Schedule the "you were heard" messages for a done action; returns how many."""
    if action.status != "done":
        return 0
    agency = db.get(Agency, action.agency_id)
    assert agency is not None
    start, end = addressed_period(action, agency_zone(agency))
    cond = [SurveyAnswer.agency_id == action.agency_id, SurveyAnswer.element == action.element,
            SurveyAnswer.score.in_(LOW), SurveyAnswer.counted_at >= start, SurveyAnswer.counted_at < end,
            Contact.consent_at.is_not(None), Contact.unreachable_at.is_(None)]
    if action.service_id is not None:
        cond.append(SurveyAnswer.service_id == action.service_id)
    rows = db.execute(
        select(Contact.id, Contact.language, Contact.channel, Contact.external_id,
               func.min(SurveyAnswer.service_id))
        .select_from(SurveyAnswer)
        .join(SurveyResponse, SurveyResponse.id == SurveyAnswer.response_id)
        .join(Contact, Contact.id == SurveyResponse.contact_id)
        .where(*cond)
        .group_by(Contact.id, Contact.language, Contact.channel, Contact.external_id)
    ).all()
    if not rows:
        return 0
    ids = [r[0] for r in rows]
    told = set(db.scalars(
        select(OutboxMessage.contact_id).where(
            OutboxMessage.contact_id.in_(ids), OutboxMessage.kind == KIND_LOOP,
            (OutboxMessage.created_at >= now - WEEK)
            | OutboxMessage.dedupe_key.in_([loop_key(action.id, i) for i in ids]))
    ))
    services = {s.id: s for s in db.scalars(select(Service).where(Service.id.in_({r[4] for r in rows})))}
    change = (action.done_text or action.what).strip()
    if len(change) > TEXT_MAX:
        change = change[:TEXT_MAX - 1].rstrip() + "…"
    link = f"{public_base_url.rstrip('/')}/a/{agency.slug}" if public_base_url else None
    due = agency_quiet(agency, now)
    new = []
    for cid, lang, channel, external_id, service_id in rows:
        if cid in told:
            continue
        text = TEXTS(lang, "loop.heard", service=service_title(services[service_id], lang), change=change)
        if link:
            text += "\n" + TEXTS(lang, "loop.link", url=link)
        new.append(OutboxMessage(**scheduled_values(
            contact_id=cid, channel=channel, chat_id=external_id, kind=KIND_LOOP,
            payload={"text": text, "choices": [], "q": None}, due_at=due,
            dedupe_key=loop_key(action.id, cid), agency_id=agency.id, ref=f"plan:{action.id}", now=now,
        )))
    db.add_all(new)
    return len(new)


def resolved_counts(
    db: Session, agency_ids: tuple[int, ...] | list[int], start: datetime, end: datetime,
) -> dict[int, tuple[int, int]]:
    """Per agency: (complaints resolved in [start, end), of which within their case's deadline).

    A complaint without a case (or a case without a resolution deadline) counts as resolved but
    not as within deadline. Nobody is named: only counts."""
    within = func.sum(sql_case((Complaint.resolved_at <= Case.resolution_due, 1), else_=0))
    rows = db.execute(
        select(Complaint.agency_id, func.count(Complaint.id), within)
        .select_from(Complaint)
        .join(Case, Case.complaint_id == Complaint.id, isouter=True)
        .where(Complaint.agency_id.in_(list(agency_ids)), Complaint.resolved_at >= start,
               Complaint.resolved_at < end, Complaint.status.in_(("resolved", "closed")))
        .group_by(Complaint.agency_id)
    ).all()
    out = {a: (0, 0) for a in agency_ids}
    for agency_id, n, ok in rows:
        out[agency_id] = (int(n), int(ok or 0))
    return out

