"""The web chat's routes: ``/chat`` (and ``/chat/<service>`` from a QR code) and its form posts.

Every step is a plain form post answered with a redirect to the page (post/redirect/get), so
the chat works without JavaScript; chat.js only posts the same forms in the background, asks
the browser for the location and keeps the page scrolled. Each post: rate limits (address,
then cookie contact), the CSRF token, then one :class:`bot.runtime.Inbound` of channel ``web``
through the runtime like a Telegram update; the replies it committed are the thread the page
shows. A hidden nonce per page is the delivery key, so a form posted twice counts once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web

from bot.channels.common import KeyedLocks, decode_choice
from bot.channels.webchat import guard, page
from bot.channels.webchat.photos import MAX_BYTES as MAX_PHOTO
from bot.channels.webchat.photos import PhotoRefused, save_photo
from bot.channels.webchat.thread import CHANNEL, TOOL_BUTTONS, Said, load_view, photo_wanted, settle
from bot.outbox.store import mark_sent
from bot.runtime import webtickets
from bot.runtime.types import Inbound, new_event_id
from bot.storage.db import transaction
from bot.web.forms import read_form
from flows.machine.types import Event

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_TEXT = 4096  # what one Telegram or WhatsApp message may carry
MAX_POST = 6 * 1024 * 1024  # a photo of at most 5 MB and the form around it


class WebChat:
    """The web chat of one process: its limits, its database threads, per-contact order."""

    def __init__(self, app: App, limits: guard.Limits | None = None, workers: int | None = None) -> None:
        self.app = app
        self.runtime = app.runtime
        self.limits = limits or guard.Limits.default()
        threads = workers or (8 if app.runtime.postgres else 1)  # SQLite has one writer
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="prima-web")
        self._locks = KeyedLocks()
        self.secure = (app.settings.public_base_url or "").lower().startswith("https://")

    def add_routes(self, web_app: web.Application) -> None:
        r = web_app.router
        r.add_static("/chat/static/", page.STATIC, append_version=False)
        r.add_get("/chat", self.show)
        r.add_post("/chat/send", self.send)
        r.add_post("/chat/status", self.status)
        r.add_post("/chat/continue", self.continue_elsewhere)
        r.add_get("/chat/{service}", self.show)

    def close(self) -> None:
        self.executor.shutdown(wait=True)

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def _tx(self, fn: Callable[..., T], *args: Any) -> T:
        with transaction(self.app.factory) as db:
            return fn(db, *args)

    def _read(self, fn: Callable[..., T], *args: Any) -> T:
        with self.app.factory() as db:  # reads only: nothing to commit
            return fn(db, *args)

    # ---------------------------------------------------------------- pages

    async def show(self, request: web.Request, *, status: int = 200, **extra: Any) -> web.Response:
        cid = guard.contact_id(request)
        fresh = cid is None
        cid = cid or guard.new_contact_id()
        service = request.match_info.get("service", "")
        if service and not page.SERVICE_CODE.fullmatch(service):
            raise web.HTTPNotFound()
        timeout = self.runtime.session_timeout
        view = await self._db(self._read, lambda db: load_view(db, cid, self.runtime.clock(), timeout))
        s = self.app.settings
        lang = page.pick_language(request, view.language, s.default_language)
        # a returning resident scanned a service's QR code: offer its survey, unless it is under way
        if service and view.known and view.survey != service and "qr" not in extra:
            found = await self._db(self._read, lambda db: self.runtime.catalog(db, self.runtime.clock()).service(service))
            extra["qr"] = found.title(lang) if found else None
        notes = page.read_notes(request)
        shown = next((n for n in notes if n.get("kind") == "lookup"), None)  # after a status post
        if shown is not None and "lookup" not in extra:
            extra["lookup"] = shown
        response = page.render(
            "chat.html", lang, status=status, view=view, csrf=guard.csrf_token(cid),
            nonce=new_event_id(), buttons=page.buttons(view.last), notes=notes,
            start=f"/start {service}".strip(), tools=TOOL_BUTTONS, max_text=MAX_TEXT, max_photo=MAX_PHOTO,
            telegram=bool(s.telegram_bot_username), whatsapp=bool(s.whatsapp_public_number), **extra)
        if fresh:
            guard.set_contact(response, cid, self.secure)
        if notes:
            response.del_cookie(page.FLASH, path="/chat")
        return response

    def _refuse(self, request: web.Request, key: str, status: int) -> web.Response:
        lang = page.pick_language(request, None, self.app.settings.default_language)
        return page.render("refused.html", lang, status=status, reason=key)

    async def _checked(self, request: web.Request) -> tuple[str, dict[str, Any]] | web.Response:
        """The cookie contact and the form, or the polite refusal (rate limit, CSRF, size)."""
        if not self.limits.per_address.allow(guard.client_address(request)):
            return self._refuse(request, "webchat.refused.rate", 429)
        cid = guard.contact_id(request)
        try:
            posted = await read_form(request, MAX_POST)
        except web.HTTPRequestEntityTooLarge:  # a photo too big: said in the chat, which stays
            back = web.Response(status=303, headers={"Location": "/chat#end"})
            page.write_notes(back, [{"kind": "error", "text": "webchat.refused.too_big"}], self.secure)
            return back
        if posted is None:
            return self._refuse(request, "webchat.refused.bad_form", 400)
        form = dict(posted)
        if guard.COOKIE not in request.cookies:  # the browser keeps no cookie: "expired" would go round in circles
            return self._refuse(request, "webchat.refused.cookie", 403)
        if cid is None or not guard.csrf_ok(cid, str(form.get("csrf", ""))):
            return self._refuse(request, "webchat.refused.csrf", 403)
        if not self.limits.per_contact.allow(cid):
            return self._refuse(request, "webchat.refused.rate", 429)
        return cid, form

    # ---------------------------------------------------------------- posts

    async def send(self, request: web.Request) -> web.StreamResponse:
        checked = await self._checked(request)
        if isinstance(checked, web.Response):
            return checked
        cid, form = checked
        notes: list[dict[str, str]] = []
        event = await self._event(cid, form, notes)
        if event is not None:
            inbound = Inbound(CHANNEL, cid, cid, event, event_key=_nonce(form),
                              language_hint=page.pick_language(request, None, ""))
            await self._locks.run(cid, lambda: self._turn(inbound, notes))
        response = web.HTTPSeeOther("/chat#end")
        page.write_notes(response, notes, self.secure)
        if any(n.get("kind") == "info" for n in notes):  # erased: this browser starts afresh
            guard.set_contact(response, guard.new_contact_id(), self.secure)
        raise response

    async def _event(self, cid: str, form: dict[str, Any], notes: list[dict[str, str]]) -> Event | None:
        eid = new_event_id()
        upload = form.get("photo")
        if isinstance(upload, web.FileField):
            data = upload.file.read(MAX_PHOTO + 1)
            if len(data) > MAX_PHOTO:
                notes.append({"kind": "error", "text": "webchat.photo.too_big"})
                return None
            if not data:
                return None
            timeout, now = self.runtime.session_timeout, self.runtime.clock()
            if not await self._db(self._read, lambda db: photo_wanted(db, cid, now, timeout)):
                return Event("photo", eid, media={"type": "photo", "file_id": "web:unsaved"})
            try:
                media = await self._db(save_photo, self.app.settings.whatsapp_media_dir, data)
            except PhotoRefused as refused:
                notes.append({"kind": "error", "text": f"webchat.photo.{refused.reason}"})
                return None
            return Event("photo", eid, media=media)
        if form.get("lat") and form.get("lon"):
            try:
                return Event("location", eid, location=(float(form["lat"]), float(form["lon"])))
            except ValueError:
                return None
        if form.get("choice"):
            decoded = decode_choice(str(form["choice"])[:200])
            if decoded is not None:
                return Event("choice", eid, choice=decoded[1], q=decoded[0])
            return None
        text = str(form.get("text") or "")
        if len(text) > MAX_TEXT:
            notes.append({"kind": "error", "text": "webchat.too_long"})
            return None
        return Event("text", eid, text=text) if text.strip() else None

    async def _turn(self, inbound: Inbound, notes: list[dict[str, str]]) -> None:
        def work() -> list[tuple[str, str]]:
            rows = self.runtime.handle(inbound)
            now = self.runtime.clock()
            erased = self.runtime.erasures.intersection(r.id for r in rows)
            if erased:  # an erasure confirmation is deleted once sent: show it once
                mark_sent(self.app.factory, [(r.id, None) for r in rows], now)
                notes.extend({"kind": "info", "raw": str(r.payload.get("text", ""))}
                             for r in rows if r.id in erased)
                self.runtime.settle_erasures(erased)
                return []
            with transaction(self.app.factory) as db:  # one commit: shown, and any new secret
                return settle(db, [(r.id, r.contact_id) for r in rows], inbound.user_id, now,
                              said_by(inbound.event))

        try:
            issued = await self._db(work)
        except Exception:  # nothing was committed: say so, the resident may try again
            log.exception("web chat turn failed")
            notes.append({"kind": "error", "text": "error.internal"})
            return
        notes.extend({"kind": "secret", "ticket": t, "secret": s} for t, s in issued)

    async def status(self, request: web.Request) -> web.StreamResponse:
        """A ticket's status by ticket and secret (from any browser); unknown or wrong look alike."""
        checked = await self._checked(request)
        if isinstance(checked, web.Response):
            return checked
        _, form = checked
        if not self.limits.lookups.allow(guard.client_address(request)):
            return await self.show(request, status=429, lookup={"state": "slow"})
        ticket, secret = str(form.get("ticket", ""))[:40], str(form.get("secret", ""))[:40]
        found = await self._db(self._read, lambda db: webtickets.status_by_secret(db, ticket, secret))
        lookup = {"state": "found", **found} if found else {"state": "unknown"}
        back = web.Response(status=303, headers={"Location": "/chat#status"})  # a reload does not ask again
        page.write_notes(back, [{"kind": "lookup", **{k: str(v) for k, v in lookup.items()}}], self.secure)
        return back

    async def continue_elsewhere(self, request: web.Request) -> web.StreamResponse:
        """A one-time link to carry a web ticket on in Telegram or WhatsApp (shown, not redirected
        to: the page's form-action policy keeps posts on this site)."""
        checked = await self._checked(request)
        if isinstance(checked, web.Response):
            return checked
        cid, form = checked
        ticket, now = str(form.get("ticket", ""))[:20], self.runtime.clock()

        def mint(db: Any) -> str | None:
            key = db.scalar(_contact_id_of(cid))
            return webtickets.mint_claim(db, key, ticket, now) if key is not None else None

        payload = await self._db(self._tx, mint)
        if payload is None:
            return await self.show(request, status=404)
        s = self.app.settings
        links = [(name, link) for name, link in (
            ("telegram", page.telegram_link(s.telegram_bot_username, payload)),
            ("whatsapp", page.whatsapp_link(s.whatsapp_public_number, payload))) if link]
        return await self.show(request, onward={"ticket": ticket, "links": links,
                                                "hours": int(webtickets.CLAIM_VALID / timedelta(hours=1))})


def said_by(event: Event) -> Said:
    """What the resident sent, for their side of the thread (a photo and a location as a mark)."""
    if event.kind == "text":
        return event.text
    if event.kind == "choice" and event.choice:
        return (event.q, event.choice)
    return {"photo": "\U0001F4F7", "location": "\U0001F4CD"}.get(event.kind)


def _nonce(form: dict[str, Any]) -> str | None:
    value = str(form.get("n", ""))
    return f"web:{value}" if value.isalnum() and 16 <= len(value) <= 40 else None


def _contact_id_of(external_id: str) -> Any:
    from sqlalchemy import select

    from bot.storage.models import Contact

    return select(Contact.id).where(Contact.channel == CHANNEL, Contact.external_id == external_id)


def add_webchat_routes(web_app: web.Application, app: App, limits: guard.Limits | None = None) -> WebChat | None:
    """Serve the web chat on this app unless ``WEB_CHAT=off``; the caller closes what it returns."""
    if app.settings.web_chat == "off":
        return None
    chat = WebChat(app, limits)
    chat.add_routes(web_app)
    return chat
