"""The queue page: the cases a person may see, filtered, counted, newest resident message first.

One page of at most :data:`PAGE` rows. The filters become WHERE clauses on ``cases`` (category
through the complaint); ordering uses ``cases.last_resident_at`` with the index
``ix_cases_agency_last_resident`` so a large agency is not sorted in full for every page
(bench/bench_desk.py measures it against a bare count). Priority filters apply only when the
``cases.priority`` column exists (it comes with "every complaint is a case").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import and_, func, select
from sqlalchemy import case as when
from sqlalchemy.orm import Session

from bot.desk.states import ACTIVE
from bot.storage.models import Case, Complaint, Contact, Service, StaffMember
from bot.web.desk.base import APP, current, current_viewer, run_db
from bot.web.desk.render import local, page, time_left
from bot.web.desk.viewer import Viewer
from flows.helpers.skm import CATEGORIES

PAGE = 50
COUNT_CAP = 1000  # a filtered view counts its cases up to this many
STATUSES = ("new", "open", "pending", "reopened", "resolved", "closed")
CHANNELS = ("telegram", "whatsapp")
priority_col = getattr(Case, "priority", None)


def numeric_priority() -> bool:
    """Order by priority only when it is a number (higher first); a word would sort by spelling."""
    try:
        return priority_col is not None and priority_col.type.python_type is int
    except (AttributeError, NotImplementedError):
        return False


@dataclass
class Filters:
    status: str = "active"  # active | all | one of STATUSES
    agency: int | None = None
    overdue: bool = False
    category: str = ""
    service: int | None = None
    assignee: str = ""  # "" | "me" | "none" | a staff member id
    channel: str = ""
    priority: str = ""
    q: str = ""

    @classmethod
    def parse(cls, query: Any) -> Filters:
        def number(name: str) -> int | None:
            value = str(query.get(name, "")).strip()
            return int(value) if value.isdigit() else None

        status = str(query.get("status", "active"))
        return cls(
            status=status if status in (*STATUSES, "active", "all") else "active",
            agency=number("agency"),
            overdue=query.get("overdue") == "1",
            category=str(query.get("category", "")) if query.get("category") in CATEGORIES else "",
            service=number("service"),
            assignee=str(query.get("assignee", ""))[:12],
            channel=str(query.get("channel", "")) if query.get("channel") in CHANNELS else "",
            priority=str(query.get("priority", ""))[:16],
            q="".join(ch for ch in str(query.get("q", "")).upper() if ch.isalnum() or ch == "-")[:16],
        )


def next_due() -> Any:
    """The case's next deadline: the first response while unanswered (if earlier), else the
    resolution. One expression instead of an OR of two ranges, so the planner reads the agency's
    rows by their index instead of walking a deadline index over every agency."""
    return when((and_(Case.first_response_at.is_(None), Case.first_response_due < Case.resolution_due),
                 Case.first_response_due), else_=Case.resolution_due)


def overdue_clause(now: datetime) -> Any:
    return and_(Case.status.in_(ACTIVE), next_due() < now)


def where(viewer: Viewer, f: Filters, now: datetime, me: list[int],
          ticket_ids: list[int] | None = None) -> list[Any]:
    agencies = [f.agency] if f.agency and viewer.may_see(f.agency) else list(viewer.agencies)
    clauses: list[Any] = [Case.agency_id.in_(agencies) if len(agencies) != 1
                          else Case.agency_id == agencies[0]]
    if f.status == "active":
        clauses.append(Case.status.in_(ACTIVE))
    elif f.status in STATUSES:
        clauses.append(Case.status == f.status)
    if f.overdue:
        clauses.append(overdue_clause(now))
    if f.category:
        clauses.append(Case.complaint_id.in_(select(Complaint.id).where(Complaint.category == f.category)))
    if f.service:
        clauses.append(Case.service_id == f.service)
    if f.assignee == "me":
        clauses.append(Case.assignee_id.in_(me))
    elif f.assignee == "none":
        clauses.append(Case.assignee_id.is_(None))
    elif f.assignee.isdigit():
        clauses.append(Case.assignee_id == int(f.assignee))
    if f.channel:
        clauses.append(Case.channel == f.channel)
    if f.priority and priority_col is not None:
        wanted: Any = int(f.priority) if numeric_priority() and f.priority.lstrip("-").isdigit() else f.priority
        clauses.append(priority_col == wanted)
    if f.q:
        # the ids are looked up first (ticket index): given the ticket as a condition, the
        # planner preferred the agency's index and read every case of it
        clauses.append(Case.id.in_(ticket_ids or []))
    return clauses


def load(db: Session, viewer: Viewer, f: Filters, now: datetime) -> dict[str, Any]:
    """Everything the queue page shows, in a handful of indexed queries."""
    me = [m.id for m in viewer.members]
    ids = list(db.scalars(select(Case.id).where(Case.ticket.in_(sorted({f.q, f"{f.q[:4]}-{f.q[4:]}"})))
                          .limit(PAGE))) if f.q else None
    clauses = where(viewer, f, now, me, ids)
    order: list[Any] = [Case.last_resident_at.desc(), Case.id.desc()]
    if numeric_priority():
        order.insert(0, priority_col.desc())  # type: ignore[union-attr]
    rows = list(db.scalars(select(Case).where(*clauses).order_by(*order).limit(PAGE)))
    scope = where(viewer, Filters(status="all", agency=f.agency), now, me)
    counts: dict[str, int] = {}
    overdue = 0
    for status, n, late in db.execute(select(Case.status, func.count(), func.sum(when((next_due() < now, 1),
                                                                                   else_=0)))
                                      .where(*scope).group_by(Case.status)):
        counts[status] = n
        overdue += int(late or 0) if status in ACTIVE else 0
    narrowed = f.overdue or f.category or f.service or f.assignee or f.channel or f.priority or f.q
    if not narrowed:  # the counts already say it
        total = sum(n for st, n in counts.items() if f.status == "all" or st == f.status
                    or (f.status == "active" and st in ACTIVE))
    else:  # counted up to COUNT_CAP: "1000+" is as useful as the exact number, and bounded
        total = db.scalar(select(func.count()).select_from(
            select(Case.id).where(*clauses).limit(COUNT_CAP + 1).subquery())) or 0
    services = list(db.scalars(select(Service).where(Service.agency_id.in_(list(viewer.agencies)))
                               .order_by(Service.name)))
    staff = db.execute(select(StaffMember.id, Contact.display_name, StaffMember.agency_id)
                       .join(Contact, StaffMember.contact_id == Contact.id)
                       .where(StaffMember.agency_id.in_(list(viewer.agencies)), StaffMember.active)
                       .order_by(Contact.display_name)).all()
    names = {sid: name or "-" for sid, name, _ in staff}
    categories = dict(db.execute(select(Complaint.id, Complaint.category).where(
        Complaint.id.in_([c.complaint_id for c in rows if c.complaint_id]))).all()) if rows else {}
    priorities = sorted({str(p) for p in db.scalars(select(priority_col).where(*scope).distinct())
                         if p is not None}) if priority_col is not None else []
    return {"cases": rows, "priorities": priorities, "total": total, "counts": counts, "overdue": overdue,
            "services": services, "staff": staff, "names": names, "categories": categories}


async def queue_page(request: web.Request) -> web.Response:
    viewer: Viewer = current_viewer()
    f = Filters.parse(request.query)
    app = request.app[APP]
    now = app.runtime.clock()
    data = await run_db(request, lambda db: load(db, viewer, f, now))
    lang = current().lang
    items = []
    for case in data["cases"]:
        agency = viewer.agencies[case.agency_id]
        first = case.first_response_due if case.first_response_at is None else None
        due = first or case.resolution_due
        left, late = time_left(lang, due, now) if case.status in ACTIVE else ("-", False)
        items.append({
            "case": case, "agency": agency, "left": left, "late": late,
            "due": local(due, agency.timezone), "first": first is not None,
            "category": data["categories"].get(case.complaint_id, ""),
            "assignee": data["names"].get(case.assignee_id, "") if case.assignee_id else "",
            "last": local(case.last_resident_at, agency.timezone),
        })
    return page(request, "queue.html", f=f, items=items, total=min(data["total"], COUNT_CAP), counts=data["counts"],
                overdue=data["overdue"], services=data["services"], staff=data["staff"],
                statuses=STATUSES, categories=CATEGORIES, channels=CHANNELS, page_size=PAGE,
                capped=data["total"] > COUNT_CAP,
                agencies=list(viewer.agencies.values()), priorities=data["priorities"])
