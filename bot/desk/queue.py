"""``/kasus``: the active cases a staff member can work on, urgent first, then soonest deadline.

It works in a private chat, so staff can answer residents (``/balas``) even before their
agency links a staff room.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case as when_then
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.catalog import agency_zone
from bot.desk.access import memberships
from bot.desk.outgoing import local_time, texts
from bot.desk.rooms import resident_messages
from bot.desk.states import ACTIVE, URGENT, callback
from bot.storage.models import Case

MAX_QUEUE = 20
# urgent cases (serious complaints, raised by staff) before normal ones, whatever their deadline
PRIORITY_ORDER = when_then((Case.priority == URGENT, 0), else_=1)


def queue(db: Session, channel: str, user_id: str, now: datetime) -> tuple[str, list[dict[str, Any]]]:
    """``/kasus``: the open cases of the agencies this person is staff of: urgent ones first,
    then the soonest deadline."""
    mine = memberships(db, channel, user_id)
    if not mine:
        return texts("case.refused.not_staff"), []
    lines: list[str] = []
    choices: list[dict[str, Any]] = []
    for _member, agency in mine:
        cases = db.scalars(
            select(Case).where(Case.agency_id == agency.id, Case.status.in_(ACTIVE))
            .order_by(PRIORITY_ORDER, Case.resolution_due, Case.id).limit(MAX_QUEUE)
        ).all()
        lines.append(texts("case.queue.agency", agency=agency.short_name, n=len(cases)))
        for case in cases:
            late = case.resolution_due < now or (case.first_response_at is None
                                                 and case.first_response_due < now)
            lines.append(texts(
                "case.queue.line", mark="🔴" if case.priority == URGENT else "•", ticket=case.ticket, status=texts(f"case.status.{case.status}"),
                trigger=texts(f"case.trigger.{case.trigger}"),
                due=local_time(case.first_response_due if case.first_response_at is None
                               else case.resolution_due, agency_zone(agency)),
                late=" ⏰" if late else "",
            ))
            latest = resident_messages(db, case.id, 1)
            if latest:
                lines.append(texts("case.queue.latest", text=(latest[0].reason or "")[:200]))
            if case.status in ("new", "reopened") and len(choices) < 10:
                choices.append({"id": callback("take", case.id),
                                "label": texts("case.queue.take", ticket=case.ticket), "nav": False})
    lines.append(texts("case.queue.reply_help"))
    return "\n".join(lines), choices
