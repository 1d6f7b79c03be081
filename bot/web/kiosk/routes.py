"""The kiosk's routes: ``GET /kiosk/<token>`` shows the survey, ``POST`` stores a questionnaire.

The page is server-rendered (bot/web/templates/kiosk.html) and works as one plain form without
JavaScript; bot/web/static/kiosk.js turns it into one question per screen with large touch
targets, resets it after the thank-you or ``KIOSK_IDLE_SECONDS`` idle, and keeps a finished
questionnaire in the browser's storage until the server confirms it (retried on a flaky
connection; the idempotency key makes a repeat store nothing). Texts are rendered in both
languages and switched on the page, so a reset or a language change needs no network.
A wrong token answers 404 and a revoked kiosk 403, with a polite page; nothing is stored.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web
from markupsafe import Markup

from bot.i18n import LANGUAGES, TEXTS
from bot.runtime import kiosk
from bot.web.desk.render import ENV, STATIC
from bot.web.forms import read_form
from flows.helpers.profile import FIELDS as PROFILE
from flows.helpers.skm import ELEMENTS

if TYPE_CHECKING:
    from bot.app import App

KIOSK_APP: web.AppKey[App] = web.AppKey("kiosk_app")  # the bot's App
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the token is in the path
    "Cache-Control": "no-store",
}
THANKS_SECONDS = 8  # how long the thank-you stays before the page starts over
# what a questionnaire posts (echoed back by the "wait" page, nothing else)
FIELDS = ("key", "lang", *(f"e{n}" for n in range(1, len(ELEMENTS) + 1)), *(f for f, _ in PROFILE))
STATUS = {"stored": 200, "duplicate": 200, "wait": 429, "revoked": 403, "unknown": 404}


def add_kiosk_routes(web_app: web.Application, app: App) -> None:
    web_app[KIOSK_APP] = app
    web_app.router.add_get("/kiosk.js", _static("kiosk.js", "application/javascript"))
    web_app.router.add_get("/kiosk.css", _static("kiosk.css", "text/css"))
    web_app.router.add_get(kiosk.PATH + "{token}", show)
    web_app.router.add_post(kiosk.PATH + "{token}", submit)


def _static(name: str, content_type: str) -> Any:
    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=(STATIC / name).read_bytes(), content_type=content_type,
                            headers={"Cache-Control": "public, max-age=300"})

    return serve


def _lang(value: str | None) -> str:
    return value if value in LANGUAGES else "id"


def bi(key: str, **params: Any) -> Markup:
    """A text in both languages; the page shows the one of ``html[data-lang]``."""
    return Markup("").join(
        Markup('<span class="l-{0}" lang="{0}">{1}</span>').format(lang, TEXTS(lang, key, **params))
        for lang in LANGUAGES)


def _pair(id_text: str, en_text: str) -> Markup:
    return Markup('<span class="l-id" lang="id">{0}</span><span class="l-en" lang="en">{1}</span>').format(
        id_text, en_text)


def _html(template: str, status: int, **context: Any) -> web.Response:
    lang = context.get("lang", "id")

    def t(key: str, **params: Any) -> str:
        return TEXTS(lang, key, **params)

    body = ENV.get_template(template).render(bi=bi, t=t, **context)
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8",
                        headers=HEADERS)


def _refusal(state: str, lang: str, chat: str | None = None) -> web.Response:
    """A clear page for a wrong token (404) or a kiosk no longer in use (403); the latter
    offers the service's survey in the web chat (``chat``) when it is served, so the resident
    at the counter can still give their rating."""
    which = "unknown" if state == "unknown" else "revoked"
    return _html("kiosk_message.html", STATUS[which], lang=lang, title=f"kiosk.{which}.title",
                 body=f"kiosk.{which}.body", chat=chat if which == "revoked" else None)


def _chat_link(app: App, found: kiosk.Place | None) -> str | None:
    if found is None or not found.code or app.settings.web_chat == "off":
        return None
    return f"/chat/{found.code}"


async def _place(app: App, token: str) -> kiosk.Place | None:
    def work() -> kiosk.Place | None:
        with app.factory() as db:
            return kiosk.place(db, token)

    return await asyncio.to_thread(work)


def questions() -> list[dict[str, Any]]:
    """The nine elements (answers shown best first, as in the chat) and the profile."""
    out: list[dict[str, Any]] = []
    for n, key in enumerate(ELEMENTS, 1):
        out.append({"field": f"e{n}", "progress": Markup(f"{n}/{len(ELEMENTS)}"),
                    "title": bi(f"skm.{key}.name"), "q": bi(f"skm.{key}.q"),
                    "options": [(str(s), bi(f"skm.{key}.{s}")) for s in (4, 3, 2, 1)],
                    "skip": (kiosk.SKIP, bi("survey.skip")), "required": True})
    for n, (field, codes) in enumerate(PROFILE, 1):
        out.append({"field": field, "progress": bi("kiosk.profile_n", n=n, total=len(PROFILE)),
                    "title": bi("kiosk.profile"), "q": bi(f"profile.{field}.q"),
                    "options": [(code, bi(f"profile.{field}.{code}")) for code in codes],
                    "skip": ("", bi("profile.skip")), "required": False})
    return out


async def show(request: web.Request) -> web.Response:
    app: App = request.app[KIOSK_APP]
    lang = _lang(request.query.get("lang"))
    found = await _place(app, request.match_info["token"])
    if found is None or found.state != "ok":
        return _refusal(found.state if found else "unknown", lang, _chat_link(app, found))
    return _form(request, app, found, lang)


def _form(request: web.Request, app: App, found: kiosk.Place, lang: str, status: int = 200,
          notice: Markup | None = None) -> web.Response:
    return _html(
        "kiosk.html", status, lang=lang, place=found, service=_pair(found.service, found.service_en),
        questions=questions(), elements=len(ELEMENTS), key=str(uuid.uuid4()), action=request.path,
        idle=app.settings.kiosk_idle_seconds, thanks=THANKS_SECONDS, notice=notice,
        interval=f"{app.settings.kiosk_min_interval:g}")


async def submit(request: web.Request) -> web.Response:
    """Store one questionnaire. JSON for the page's script, HTML for a plain form post."""
    app: App = request.app[KIOSK_APP]
    token = request.match_info["token"]
    posted = await read_form(request)  # unreadable: answered as an invalid questionnaire
    form = {k: str(v) for k, v in (posted or {}).items()}
    lang = _lang(form.get("lang"))
    wants_json = "application/json" in request.headers.get("Accept", "")
    q = kiosk.parse(form)
    if q is None:
        found = await _place(app, token)
        if found is None or found.state != "ok":
            return _answer(wants_json, found.state if found else "unknown", lang, _chat_link(app, found))
        if wants_json:
            return web.json_response({"status": "invalid"}, status=400, headers=HEADERS)
        return _form(request, app, found, lang, status=400, notice=bi("kiosk.invalid"))
    now = app.runtime.clock()
    interval = app.settings.kiosk_min_interval
    outcome = await asyncio.to_thread(kiosk.record, app.factory, token, q, now, interval)
    if wants_json:
        payload: dict[str, Any] = {"status": outcome.status}
        if outcome.status == "wait":
            payload["retry_after"] = outcome.retry_after
        chat = _chat_link(app, await _place(app, token)) if outcome.status == "revoked" else None
        payload.update({"chat": chat} if chat else {})
        return web.json_response(payload, status=STATUS[outcome.status], headers=HEADERS)
    if outcome.status in ("stored", "duplicate"):
        return _html("kiosk_done.html", 200, lang=lang, action=request.path, thanks=THANKS_SECONDS)
    if outcome.status == "wait":  # the same answers, ready to be sent again
        kept = {k: v for k, v in form.items() if k in FIELDS}
        return _html("kiosk_wait.html", 429, lang=lang, action=request.path, form=kept,
                     wait=outcome.retry_after, interval=f"{interval:g}")
    return _refusal(outcome.status, lang, _chat_link(app, await _place(app, token)))


def _answer(wants_json: bool, state: str, lang: str, chat: str | None = None) -> web.Response:
    if wants_json:
        status = "unknown" if state == "unknown" else "revoked"
        body: dict[str, Any] = {"status": status, **({"chat": chat} if chat else {})}
        return web.json_response(body, status=STATUS[status], headers=HEADERS)
    return _refusal(state, lang, chat)

