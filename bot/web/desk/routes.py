"""The desk's routes on the bot's aiohttp app, and the checks in front of every one of them.

:func:`add_desk_routes` is called wherever the web app is built, so the desk is served by the
same process and port as the webhooks. The middleware loads the session from its cookie
(HttpOnly, SameSite=Lax, Secure behind HTTPS), ends it after idle time, and refuses any POST
whose CSRF token does not match the session's (compared in constant time). Signing in: the
link from ``/masuk`` shows a button; pressing it (a POST) spends the link, so a chat app that
fetches the link for a preview does not use it up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from aiohttp import web
from sqlalchemy.orm import Session

from bot.desk import signin
from bot.i18n import LANGUAGES, TEXTS
from bot.web.desk import casepage, kiosks, manage
from bot.web.desk.base import APP, CURRENT, HOOKS, Current, DeskHooks, current, run_db
from bot.web.desk.queue import queue_page
from bot.web.desk.render import STATIC, page
from bot.web.desk.viewer import Viewer, load_viewer
from bot.web.forms import read_form

if TYPE_CHECKING:
    from bot.app import App

COOKIE = "desk_session"
LANG_COOKIE = "desk_lang"
PREFIX = "/desk"
OPEN = ("/desk/login/", "/desk/static/", "/desk/lang/", "/desk/signed-out")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_desk_routes(web_app: web.Application, app: App, hooks: DeskHooks | None = None) -> None:
    """Serve the web desk under ``/desk`` on this app."""
    web_app[APP] = app
    web_app[HOOKS] = hooks or DeskHooks()
    web_app.middlewares.append(desk_guard)
    r = web_app.router
    r.add_get("/desk", to_queue)
    r.add_get("/desk/", queue_page)
    r.add_get("/desk/login/{token}", login_page)
    r.add_post("/desk/login/{token}", login)
    r.add_post("/desk/logout", logout)
    r.add_get("/desk/signed-out", signed_out)
    r.add_get("/desk/lang/{lang}", switch_language)
    r.add_static("/desk/static/", STATIC, append_version=False)
    casepage.add_routes(r)
    manage.add_routes(r)
    kiosks.add_routes(r)


async def to_queue(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/desk/")


def secure(app: App) -> bool:
    return (app.settings.public_base_url or "").lower().startswith("https://")


@web.middleware
async def desk_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if not path.startswith(PREFIX):
        return await handler(request)
    lang = request.cookies.get(LANG_COOKIE, "id")
    state = Current(lang=lang if lang in LANGUAGES else "id")
    CURRENT.set(state)
    if path == PREFIX or path.startswith(OPEN):
        return await handler(request)
    app: App = request.app[APP]
    cookie = request.cookies.get(COOKIE)
    now = app.runtime.clock()
    idle = timedelta(minutes=app.settings.desk_session_idle_minutes)
    form = await read_form(request) if request.method == "POST" else None
    if request.method == "POST" and form is None:
        raise web.HTTPBadRequest(text=TEXTS(state.lang, "desk.bad_form"))

    def check(db: Session) -> tuple[Viewer | None, bool]:
        session = signin.current(db, cookie, now, idle)
        if session is None:
            return None, False
        viewer = load_viewer(db, session)
        if viewer is None:  # no longer active staff
            signin.end(db, session, now)
            return None, False
        given = request.headers.get("X-CSRF-Token") or (str(form.get("csrf", "")) if form else "")
        return viewer, form is None or signin.csrf_ok(session, given)

    viewer, csrf_fine = await run_db(request, check)
    if viewer is None:
        if request.method == "GET":
            raise web.HTTPSeeOther("/desk/signed-out")
        return page(request, "message.html", status=401, title_key="desk.signed_out.title",
                    body_key="desk.signed_out.body")
    state.viewer = viewer
    if not csrf_fine:
        return page(request, "message.html", status=403, title_key="desk.forbidden.title",
                    body_key="desk.csrf.body")
    state.form = {k: str(v) for k, v in (form or {}).items()}
    return await handler(request)


async def login_page(request: web.Request) -> web.Response:
    """The link from the chat: a button that signs in (GET spends nothing)."""
    return page(request, "login.html", token=request.match_info["token"])


async def login(request: web.Request) -> web.Response:
    app: App = request.app[APP]
    token = request.match_info["token"]
    now = app.runtime.clock()
    lang = current().lang
    outcome = await run_db(request, lambda db: signin.redeem(db, token, now, lang))
    if isinstance(outcome, str):
        return page(request, "message.html", status=403, title_key="desk.login.refused.title",
                    body_key=f"desk.login.refused.{outcome}")
    response = web.HTTPSeeOther("/desk/")
    response.set_cookie(COOKIE, outcome.cookie, httponly=True, samesite="Lax", secure=secure(app),
                        path=PREFIX)
    raise response


async def logout(request: web.Request) -> web.Response:
    app: App = request.app[APP]
    now = app.runtime.clock()
    cookie = request.cookies.get(COOKIE)
    idle = timedelta(minutes=app.settings.desk_session_idle_minutes)

    def end(db: Session) -> None:
        session = signin.current(db, cookie, now, idle)
        if session is not None:
            signin.end(db, session, now)

    await run_db(request, end)
    response = web.HTTPSeeOther("/desk/signed-out")
    response.del_cookie(COOKIE, path=PREFIX)
    raise response


async def signed_out(request: web.Request) -> web.Response:
    return page(request, "message.html", title_key="desk.signed_out.title", body_key="desk.signed_out.body")


async def switch_language(request: web.Request) -> web.Response:
    lang = request.match_info["lang"]
    back = request.query.get("next", "/desk/")
    if not back.startswith("/desk") or "//" in back or "\\" in back:
        back = "/desk/"
    response = web.HTTPSeeOther(back)
    if lang in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, httponly=True, samesite="Lax", path=PREFIX,
                            max_age=365 * 86400, secure=secure(request.app[APP]))
    raise response
