"""The follow-up plan's calls from the engine (flows/steps/plan.py): who may plan, listing,
saving and updating actions (bot.reports.periodic.plan stores them).

Only an active head or admin of an agency may use /rencana; anyone else hears a refusal and
nothing about the agency. A member of several agencies plans for the first one registered.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.catalog import agency_zone
from bot.reports import loop
from bot.reports.periodic import plan as store
from bot.storage.models import Agency, Service, StaffMember

if TYPE_CHECKING:
    from bot.runtime.turn import Turn

ROLES = ("head", "admin")


def _member(turn: Turn) -> StaffMember | None:
    assert turn.contact is not None
    return turn.db.scalars(
        select(StaffMember).where(StaffMember.contact_id == turn.contact.id, StaffMember.active,
                                  StaffMember.role.in_(ROLES)).order_by(StaffMember.id)
    ).first()


def plan_open(turn: Turn) -> dict[str, Any]:
    """The open actions (as button labels) and the agency's services, or a refusal."""
    member = _member(turn)
    if member is None:
        return {"ok": False}
    db = turn.db
    actions = []
    for a in store.open_actions(db, member.agency_id):
        state = turn.rt.texts(turn.language, f"plan.status.{a.status}")
        what = a.what if len(a.what) <= 24 else a.what[:23].rstrip() + "…"
        actions.append({"id": a.id, "label": f"U{a.element} {what} · {a.due_on:%d-%m-%Y} · {state}"})
    services = [{"id": s.id, "name": s.name} for s in db.scalars(
        select(Service).where(Service.agency_id == member.agency_id, Service.active).order_by(Service.id))]
    return {"ok": True, "actions": actions, "services": services[:12]}


def plan_save(turn: Turn, element: int, service: int | None, what: str, who: str, due: str) -> dict[str, Any]:
    member = _member(turn)
    if member is None:
        return {"ok": False, "reason": "role"}
    agency = turn.db.get(Agency, member.agency_id)
    assert agency is not None
    today = turn.now.astimezone(ZoneInfo(agency_zone(agency))).date()
    due_on = date.fromisoformat(due)
    if due_on < today:
        return {"ok": False, "reason": "past"}
    if service is not None:
        svc = turn.db.get(Service, service)
        if svc is None or svc.agency_id != member.agency_id:
            return {"ok": False, "reason": "role"}
    action = store.add_action(turn.db, member.agency_id, element, service, what, who, due_on, member.id, turn.now)
    return {"ok": True, "id": action.id}


def plan_update(turn: Turn, id: int, status: str, text: str) -> dict[str, Any]:
    member = _member(turn)
    if member is None or status not in store.STATUSES:
        return {"ok": False}
    action = store.update_status(turn.db, member.agency_id, int(id), status, turn.now, text or None)
    if action is not None and status == "done":  # tell the residents who rated it low (once)
        turn.db.flush()
        loop.close_loop(turn.db, action, turn.now, turn.rt.public_base_url)
    return {"ok": action is not None}
