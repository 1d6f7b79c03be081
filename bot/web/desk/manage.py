"""The desk's own pages: an agency's canned replies (staff add and edit them) and, for admins,
the staff list with a button that deactivates a member (their sessions end at once).
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.desk import moves, signin
from bot.storage.models import Agency, CannedReply, Contact, StaffMember
from bot.web.desk.base import APP, current, current_viewer, run_db
from bot.web.desk.render import page
from bot.web.desk.viewer import Viewer


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/desk/canned", canned_page)
    r.add_post("/desk/canned", canned_save)
    r.add_get("/desk/staff", staff_page)
    r.add_post("/desk/staff/{id:\\d+}/deactivate", deactivate)


async def canned_page(request: web.Request) -> web.Response:
    viewer: Viewer = current_viewer()

    def load(db: Session) -> list[tuple[StaffMember, Agency, list[CannedReply]]]:
        return [(m, viewer.agencies[m.agency_id], moves.canned(db, m.agency_id)) for m in viewer.members
                if m.agency_id in viewer.agencies]

    groups = await run_db(request, load)
    return page(request, "canned.html", groups=groups, edit=request.query.get("edit", ""))


async def canned_save(request: web.Request) -> web.Response:
    viewer: Viewer = current_viewer()
    form = current().form
    now = request.app[APP].runtime.clock()
    agency = str(form.get("agency", ""))
    member = viewer.member_for(int(agency)) if agency.isdigit() else None
    if member is None:
        return page(request, "message.html", status=403, title_key="desk.forbidden.title",
                    body_key="desk.forbidden.body")
    reply_id = str(form.get("id", ""))

    def save(db: Session) -> bool:
        return moves.save_canned(db, member, str(form.get("title", "")), str(form.get("body", "")), now,
                                 int(reply_id) if reply_id.isdigit() else None) is not None

    await run_db(request, save)
    raise web.HTTPSeeOther("/desk/canned")


def staff_rows(db: Session, viewer: Viewer) -> list[tuple[StaffMember, Agency, Contact]]:
    return [(m, a, c) for m, a, c in db.execute(
        select(StaffMember, Agency, Contact).join(Agency, StaffMember.agency_id == Agency.id)
        .join(Contact, StaffMember.contact_id == Contact.id)
        .where(StaffMember.agency_id.in_(list(viewer.agencies)))
        .order_by(Agency.short_name, StaffMember.role, Contact.display_name))]


async def staff_page(request: web.Request) -> web.Response:
    viewer: Viewer = current_viewer()
    rows = await run_db(request, lambda db: staff_rows(db, viewer))
    return page(request, "staff.html", rows=rows)


async def deactivate(request: web.Request) -> web.Response:
    viewer: Viewer = current_viewer()
    now = request.app[APP].runtime.clock()
    member_id = int(request.match_info["id"])

    def work(db: Session) -> bool:
        target = db.get(StaffMember, member_id)
        if not viewer.admin or target is None or not viewer.may_see(target.agency_id):
            return False
        signin.deactivate(db, member_id, now)
        return True

    if not await run_db(request, work):
        return page(request, "message.html", status=403, title_key="desk.forbidden.title",
                    body_key="desk.forbidden.body")
    raise web.HTTPSeeOther("/desk/staff")
