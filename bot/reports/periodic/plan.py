"""The follow-up plan (rencana tindak lanjut): improvement actions per SKM element and service.

Heads and admins add and update actions from the bot (/rencana, bot.runtime); the periodic
report and the digest read them here. An action's status as at a period's end is derived from
its ``done_at``, so an old report reads the same when rebuilt later.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from fractions import Fraction

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.reports.periodic.model import PlanLine
from bot.storage.models import PlanAction, Service

STATUSES = ("planned", "in_progress", "done")
OPEN = ("planned", "in_progress")
WHAT_MAX = 500
WHO_MAX = 200
DONE_MAX = 1000


def add_action(
    db: Session, agency_id: int, element: int, service_id: int | None, what: str, who: str,
    due_on: date, staff_id: int | None, now: datetime,
) -> PlanAction:
    if not 1 <= element <= 9:
        raise ValueError(f"element must be 1..9, got {element}")
    action = PlanAction(
        agency_id=agency_id, element=element, service_id=service_id, what=what.strip()[:WHAT_MAX],
        who=who.strip()[:WHO_MAX], due_on=due_on, status="planned", created_by=staff_id,
        created_at=now, updated_at=now,
    )
    db.add(action)
    db.flush()
    return action


def open_actions(db: Session, agency_id: int) -> list[PlanAction]:
    return list(db.scalars(
        select(PlanAction).where(PlanAction.agency_id == agency_id, PlanAction.status.in_(OPEN))
        .order_by(PlanAction.due_on, PlanAction.id)
    ))


def update_status(
    db: Session, agency_id: int, action_id: int, status: str, now: datetime, done_text: str | None = None,
) -> PlanAction | None:
    """Move an action of this agency to ``status``; None if it is not this agency's."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}")
    action = db.get(PlanAction, action_id)
    if action is None or action.agency_id != agency_id:
        return None
    action.status = status
    if done_text:
        action.done_text = done_text.strip()[:DONE_MAX]
    action.done_at = now if status == "done" else None
    action.updated_at = now
    return action


def status_at(action: PlanAction, end: datetime) -> str:
    """The action's status at ``end``: done only if it was done before then."""
    if action.done_at is not None and action.done_at < end:
        return "done"
    if action.created_at >= end:
        return "planned"
    return "in_progress" if action.status in ("in_progress", "done") else "planned"


def plan_lines(
    db: Session, agency_ids: tuple[int, ...], start: datetime, end: datetime, since: datetime,
    nrr_between: Callable[[int, int | None, datetime, datetime], Fraction | None] | None = None,
) -> list[PlanLine]:
    """The actions that concern the period: created before its end and not done before ``since``
    (the previous period's start, so an action done last period is still shown with whether its
    element's NRR moved). ``nrr_between(element, service_id, lo, hi)`` gives an NRR for that."""
    rows = db.execute(
        select(PlanAction, Service.name)
        .join(Service, PlanAction.service_id == Service.id, isouter=True)
        .where(PlanAction.agency_id.in_(agency_ids), PlanAction.created_at < end,
               (PlanAction.done_at.is_(None)) | (PlanAction.done_at >= since))
        .order_by(PlanAction.element, PlanAction.due_on, PlanAction.id)
    ).all()
    out = []
    for action, service in rows:
        line = PlanLine(action.id, action.element, service, action.what, action.who, action.due_on,
                        status_at(action, end), action.done_text,
                        action.done_at if action.done_at is not None and action.done_at < end else None)
        if nrr_between is not None and action.done_at is not None and action.done_at < start:
            line.nrr_before = nrr_between(action.element, action.service_id, since, start)
            line.nrr_after = nrr_between(action.element, action.service_id, start, end)
        out.append(line)
    return out
