"""The case page: the whole thread in time order, and the staff's actions on it.

Every handler first loads the case through :func:`fetch`, which refuses (403, audited on the
case) anyone who may not see its agency. Replies go through the same path as Telegram's
``/balas`` (bot/desk/relay.py ``staff_message``): to the resident on their channel, as
"Petugas <agency>", never naming the staff member. The card's actions go through
bot/desk/cases.py ``act`` and the desk's own through bot/desk/moves.py, so the Telegram topic's
card is refreshed with the same state.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.desk import cases, moves
from bot.desk import relay as desk_relay
from bot.desk.cards import reason_label
from bot.desk.cases import Outcome
from bot.desk.states import ACTIVE, TRANSITIONS
from bot.i18n import TEXTS
from bot.storage.models import Case, CaseEvent, Complaint, Contact, Service, StaffMember
from bot.web.desk.base import APP, HOOKS, current, current_viewer, refresh_card, run_db, send_rows
from bot.web.desk.render import known, local, page, time_left
from bot.web.desk.viewer import Viewer, refuse

WA_WINDOW = timedelta(hours=24)
CARD_ACTIONS = ("take", "pending", "resolve", "head")
DESK_ACTIONS = ("close", "reopen", "assign", "duplicate", "note", "reply")


def stored_file(media_dir: Path | None, media: dict[str, Any]) -> tuple[bytes, str] | None:
    """A photo the channel saved (WhatsApp media in WHATSAPP_MEDIA_DIR), never outside that folder."""
    if media_dir is None or not media.get("path"):
        return None
    base = Path(media_dir).resolve()
    path = Path(str(media["path"])).resolve()
    if not path.is_relative_to(base) or not path.is_file():
        return None
    return path.read_bytes(), str(media.get("mime_type") or "image/jpeg")


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/desk/case/{id:\\d+}", case_page)
    r.add_post("/desk/case/{id:\\d+}", case_post)
    r.add_get("/desk/case/{id:\\d+}/photo/{n:\\d+}", photo)
    r.add_get("/desk/case/{id:\\d+}/event/{ev:\\d+}/photo", event_photo)


def fetch(db: Session, viewer: Viewer, case_id: int, what: str, now: datetime,
          lock: bool = False) -> Case | str:
    """The case if this person may see it; else "missing" or "refused" (audited). ``lock``:
    the row is locked for the rest of the transaction (an action on it)."""
    case = db.get(Case, case_id, with_for_update=lock)
    if case is None:
        return "missing"
    if not viewer.may_see(case.agency_id):
        refuse(db, viewer, case, what, now)
        return "refused"
    return case


def refusal(request: web.Request, why: str) -> web.Response:
    if why == "missing":
        return page(request, "message.html", status=404, title_key="desk.missing.title",
                    body_key="desk.missing.body")
    return page(request, "message.html", status=403, title_key="desk.forbidden.title",
                body_key="desk.forbidden.body")


def staff_names(db: Session, agency_id: int) -> dict[int, str]:
    return {sid: name or "-" for sid, name in db.execute(
        select(StaffMember.id, Contact.display_name).join(Contact, StaffMember.contact_id == Contact.id)
        .where(StaffMember.agency_id == agency_id))}


def who(actor: str, names: dict[int, str]) -> str:
    kind, _, rest = actor.partition(":")
    if kind == "staff" and rest.split(":")[0].isdigit():
        return names.get(int(rest.split(":")[0]), actor)
    return actor


def thread(db: Session, case: Case, names: dict[int, str]) -> list[dict[str, Any]]:
    """The complaint, then every event, in time order."""
    items: list[dict[str, Any]] = []
    complaint = db.get(Complaint, case.complaint_id) if case.complaint_id else None
    if complaint is not None:
        photos = (complaint.attachments or {}).get("photos", [])
        location = None
        if complaint.latitude is not None and complaint.longitude is not None:
            location = (f"{complaint.latitude:.5f}, {complaint.longitude:.5f}",
                        f"https://www.openstreetmap.org/?mlat={complaint.latitude:.6f}"
                        f"&mlon={complaint.longitude:.6f}#map=18/{complaint.latitude:.6f}/{complaint.longitude:.6f}")
        items.append({"at": complaint.created_at, "kind": "complaint", "text": complaint.description,
                      "occurred": complaint.occurred, "photos": [
                          {"n": n, "caption": p.get("caption") or ""} for n, p in enumerate(photos)],
                      "location": location, "place": complaint.location_text, "who": "resident"})
    elif case.summary:
        items.append({"at": case.created_at, "kind": "summary", "text": case.summary, "who": "resident"})
    for ev in db.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.at, CaseEvent.id)):
        text = ev.reason or ""
        if ev.kind == "status" and ev.from_status is None:  # why it opened: "category:pungli, term:calo"
            text = ", ".join(reason_label(part.strip()) for part in text.split(",") if part.strip())
        photo = ev.id if ev.media and ev.kind in ("from_resident", "to_resident") else None
        items.append({"at": ev.at, "kind": ev.kind, "text": "" if photo and text == "[photo]" else text,
                      "who": who(ev.actor, names), "from": ev.from_status, "to": ev.to_status,
                      "event_photo": photo})
    return items


def load_case(db: Session, viewer: Viewer, case_id: int, now: datetime, whatsapp_template: bool) -> dict[str, Any] | str:
    case = fetch(db, viewer, case_id, "view", now)
    if isinstance(case, str):
        return case
    names = staff_names(db, case.agency_id)
    contact = db.get(Contact, case.contact_id) if case.contact_id else None
    window = None
    if case.channel == "whatsapp" and case.status in ACTIVE:
        last = contact.last_inbound_at if contact else None
        if last is None or now - last >= WA_WINDOW:
            window = "template" if whatsapp_template else "wait"
    complaint = db.get(Complaint, case.complaint_id) if case.complaint_id else None
    service = db.get(Service, case.service_id) if case.service_id else None
    survivor = db.get(Case, case.duplicate_of) if case.duplicate_of else None
    duplicates = list(db.scalars(select(Case).where(Case.duplicate_of == case.id)))
    member = viewer.member_for(case.agency_id)
    colleagues = db.execute(
        select(StaffMember.id, Contact.display_name).join(Contact, StaffMember.contact_id == Contact.id)
        .where(StaffMember.agency_id == case.agency_id, StaffMember.active)
        .order_by(Contact.display_name)).all()
    return {"case": case, "items": thread(db, case, names), "window": window,
            "category": complaint.category if complaint else "", "service": service,
            "assignee": names.get(case.assignee_id or 0, ""), "survivor": survivor,
            "duplicates": duplicates, "member": member, "colleagues": colleagues,
            "canned": moves.canned(db, case.agency_id), "unreachable": bool(contact and contact.unreachable_at),
            "no_resident": contact is None}


async def case_page(request: web.Request) -> web.Response:
    viewer: Viewer = current_viewer()
    app = request.app[APP]
    now = app.runtime.clock()
    template = bool(app.settings.whatsapp_template_followup)
    data = await run_db(request, lambda db: load_case(db, viewer, int(request.match_info["id"]), now, template))
    if isinstance(data, str):
        return refusal(request, data)
    case: Case = data["case"]
    agency = viewer.agencies[case.agency_id]
    lang = current().lang
    first = case.first_response_due if case.first_response_at is None else None
    allowed = [a for a in CARD_ACTIONS if case.status in TRANSITIONS[a][0]
               and not (a == "head" and case.level == "head")]
    if case.status in ACTIVE:
        allowed.append("close")
    if case.status in ("resolved", "closed"):
        allowed.append("reopen")
    left = {k: time_left(lang, d, now) for k, d in (("first", first), ("resolution", case.resolution_due))}
    return page(request, "case.html", agency=agency, tz=agency.timezone, local=local, left=left,
                first=first, allowed=allowed, active=case.status in ACTIVE,
                notice=request.query.get("n", "")[:300], ok=request.query.get("ok") == "1", **data)


def perform(db: Session, viewer: Viewer, case_id: int, form: dict[str, str], now: datetime) -> Outcome | str:
    """One staff action from the case page, in one transaction."""
    case = fetch(db, viewer, case_id, f"post {form.get('do', '')}"[:60], now, lock=True)
    if isinstance(case, str):
        return case
    member = viewer.member_for(case.agency_id)
    if member is None:  # an admin of another agency looks, but acts only where registered
        refuse(db, viewer, case, "act without membership", now)
        return "refused"
    do = form.get("do", "")
    contact = viewer.contact
    who_ = {"channel": contact.channel, "user_id": contact.external_id, "chat_id": member.chat_id,
            "now": now, "private": True}
    if do in CARD_ACTIONS:
        return cases.act(db, case.id, do, **who_)  # type: ignore[arg-type]
    if do == "note":
        return cases.act(db, case.id, "note", note=form.get("text", "").strip()[:4000] or None,
                         **who_)  # type: ignore[arg-type]
    if do == "reply":
        text = form.get("text", "").strip()
        if not text and form.get("canned", "").isdigit():
            picked = next((c for c in moves.canned(db, case.agency_id) if c.id == int(form["canned"])), None)
            text = picked.body if picked else ""
        if not text:
            return Outcome(False, "", case=case)
        out = desk_relay.staff_message(db, channel=contact.channel, user_id=contact.external_id,
                                       room_chat_id=member.chat_id, topic_id=None, text=text, photo=None,
                                       now=now, ticket=case.ticket, private=True)
        return out or Outcome(False, "", case=case)
    if do == "close":
        return moves.close(db, case, member, now)
    if do == "reopen":
        return moves.reopen(db, case, member, now)
    if do == "assign" and form.get("assignee", "").isdigit():
        return moves.assign(db, case, member, int(form["assignee"]), now)
    if do == "duplicate":
        return moves.mark_duplicate(db, case, member, form.get("ticket", ""), now)
    return Outcome(False, "", case=case)


async def case_post(request: web.Request) -> web.Response:
    viewer: Viewer = current_viewer()
    app = request.app[APP]
    now = app.runtime.clock()
    form = current().form
    case_id = int(request.match_info["id"])

    def work(db: Session) -> tuple[Outcome | str, str | None, str | None]:
        out = perform(db, viewer, case_id, form, now)
        case = out.case if isinstance(out, Outcome) else None
        return out, case.room_chat_id if case else None, case.card_message_id if case else None

    out, room, card_id = await run_db(request, work)
    if isinstance(out, str):
        return refusal(request, out)
    await refresh_card(request, out.card, room, card_id)
    await send_rows(request, out.rows)
    notice = done_notice(current().lang, form.get("do", ""), out)
    raise web.HTTPSeeOther(f"/desk/case/{case_id}?ok={int(out.ok)}&n={quote(notice[:200])}")


def done_notice(lang: str, do: str, out: Outcome) -> str:
    """What the page says after an action, in the desk's language.

    The desk's own words for what was done (the case layer's notices are written for the
    Telegram staff room, in Bahasa Indonesia); a refusal gives the case layer's reason in the
    desk's language, or says that nothing changed when there is no reason to give."""
    if out.ok:
        key = f"desk.done.{do}"
        return TEXTS(lang, key) if key in known(lang) else TEXTS(lang, "desk.done")
    if out.key:
        return out.notice_in(lang)
    if lang != "id" or not out.notice:
        return TEXTS(lang, "desk.not_done")
    return out.notice


async def photo(request: web.Request) -> web.StreamResponse:
    viewer: Viewer = current_viewer()
    app = request.app[APP]
    now = app.runtime.clock()
    n = int(request.match_info["n"])

    def find(db: Session) -> tuple[str, dict[str, Any]] | str:
        case = fetch(db, viewer, int(request.match_info["id"]), f"photo {n}", now)
        if isinstance(case, str):
            return case
        complaint = db.get(Complaint, case.complaint_id) if case.complaint_id else None
        photos = (complaint.attachments or {}).get("photos", []) if complaint else []
        return (complaint.channel, photos[n]) if complaint and n < len(photos) else "missing"

    return await _serve_photo(request, await run_db(request, find))


async def event_photo(request: web.Request) -> web.StreamResponse:
    """A photo relayed during the case (from the resident, or staff's from the Telegram room)."""
    viewer: Viewer = current_viewer()
    now = request.app[APP].runtime.clock()
    ev_id = int(request.match_info["ev"])

    def find(db: Session) -> tuple[str, dict[str, Any]] | str:
        case = fetch(db, viewer, int(request.match_info["id"]), f"event photo {ev_id}", now)
        if isinstance(case, str):
            return case
        ev = db.get(CaseEvent, ev_id)
        if ev is None or ev.case_id != case.id or not ev.media:
            return "missing"
        return str(ev.media.get("channel") or case.channel), dict(ev.media)

    return await _serve_photo(request, await run_db(request, find))


async def _serve_photo(request: web.Request, found: tuple[str, dict[str, Any]] | str) -> web.StreamResponse:
    """The saved file (WhatsApp), else the channel fetches it (Telegram); never outside the folder."""
    app = request.app[APP]
    if isinstance(found, str):
        return refusal(request, found)
    got = await asyncio.to_thread(stored_file, app.settings.whatsapp_media_dir, found[1])
    fetch_media = request.app[HOOKS].fetch_media
    if got is None and fetch_media is not None:
        got = await fetch_media(*found)
    if got is None:
        return refusal(request, "missing")
    body, content_type = got
    if not content_type.startswith("image/"):
        content_type = "application/octet-stream"
    return web.Response(body=body, content_type=content_type,
                        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"})
