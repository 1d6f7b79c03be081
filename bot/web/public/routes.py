"""The public pages on the bot's aiohttp server: /, /a/<agency>[/<service>], /tv (no sign-in).

Server-rendered Jinja2 (the desk's environment, bot/web/desk/render.py), no JavaScript, no
external font or CDN. Each page is rendered once per (path, language) and kept in the open
data's ``TTLCache`` for a few minutes, emptied when the database changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy.orm import Session

from bot.i18n import TEXTS
from bot.web.desk.render import ENV, STATIC
from bot.web.opendata.cache import TTLCache, watch
from bot.web.public import data, svg

if TYPE_CHECKING:
    from bot.app import App

TTL = 300.0
LANGS = ("id", "en")
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "public, max-age=60",
}
PUBLIC_CACHE = web.AppKey("public_cache", TTLCache)


def add_public_routes(web_app: web.Application, app: App, *, ttl: float = TTL) -> TTLCache:
    cache = TTLCache(ttl)
    watch(app.factory, cache.invalidate)
    web_app[PUBLIC_CACHE] = cache
    pages = _Pages(app, cache)
    web_app.router.add_get("/", pages.index)
    web_app.router.add_get("/tv", pages.tv)
    web_app.router.add_get("/a/{agency}", pages.agency)
    web_app.router.add_get("/a/{agency}/{service}", pages.agency)
    web_app.router.add_get("/public.css", _css)
    return cache


async def _css(request: web.Request) -> web.Response:
    return web.Response(body=(STATIC / "public.css").read_bytes(), content_type="text/css",
                        headers={"Cache-Control": "public, max-age=3600"})


def _lang(request: web.Request) -> str:
    lang = request.query.get("lang", "id")
    return lang if lang in LANGS else "id"


class _Pages:
    def __init__(self, app: App, cache: TTLCache) -> None:
        self.app = app
        self.cache = cache

    async def _db(self, work: Callable[[Session], Any]) -> Any:
        def run() -> Any:
            with self.app.factory() as db:
                return work(db)

        return await asyncio.get_running_loop().run_in_executor(None, run)

    def _qrs(self, lang: str) -> list[dict[str, str]]:
        out = []
        name = self.app.settings.telegram_bot_username
        if name:
            link = f"https://t.me/{name.lstrip('@')}"
            out.append({"link": link, "label": "Telegram",
                        "svg": svg.qr(link, TEXTS(lang, "public.qr", channel="Telegram"))})
        number = self.app.settings.whatsapp_public_number
        if number:
            digits = "".join(ch for ch in number if ch.isdigit())
            link = f"https://wa.me/{digits}"
            out.append({"link": link, "label": "WhatsApp",
                        "svg": svg.qr(link, TEXTS(lang, "public.qr", channel="WhatsApp"))})
        return out

    def _render(self, template: str, lang: str, **context: Any) -> bytes:
        def t(key: str, **params: Any) -> str:
            return TEXTS(lang, key, **params)

        return ENV.get_template(template).render(t=t, lang=lang, qrs=self._qrs(lang), **context).encode()

    async def _cached(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> web.Response:
        body = await self.cache.get(key, compute)
        if body is None:
            raise web.HTTPNotFound()
        return web.Response(body=body, content_type="text/html", charset="utf-8", headers=HEADERS)

    async def index(self, request: web.Request) -> web.Response:
        lang = _lang(request)

        async def compute() -> bytes:
            now = self.app.runtime.clock()
            agencies, done = await self._db(lambda db: data.regency(db, now))
            return self._render("public_index.html", lang, agencies=agencies, done=done)

        return await self._cached(("index", lang), compute)

    async def agency(self, request: web.Request) -> web.Response:
        lang = _lang(request)
        slug = request.match_info["agency"]
        code = request.match_info.get("service")

        async def compute() -> bytes | None:
            now = self.app.runtime.clock()

            def work(db: Session) -> data.AgencyPage | None:
                found = data.find(db, slug, code)
                return data.agency_page(db, found[0], found[1], now) if found else None

            page = await self._db(work)
            if page is None:
                return None
            title = TEXTS(lang, "public.chart.title", name=page.service_name or page.name)
            desc = "; ".join(f"{r['period']}: {r['ikm'] if r['ikm'] is not None else TEXTS(lang, 'public.nodata')}"
                             for r in page.trend)
            chart = svg.trend_chart(page.trend, title, desc)
            return self._render("public_agency.html", lang, page=page, chart=chart,
                                low=data.LOW_NRR)

        return await self._cached(("agency", slug, code, lang), compute)

    async def tv(self, request: web.Request) -> web.Response:
        lang = _lang(request)
        try:
            i = int(request.query.get("i", "0"))
        except ValueError:
            i = 0
        i = max(0, min(i, 999))  # a bounded cache key; the agency is i modulo their number

        async def compute() -> bytes:
            now = self.app.runtime.clock()
            agencies, _ = await self._db(lambda db: data.regency(db, now))
            n = len(agencies)
            k = i % n if n else 0
            return self._render("public_tv.html", lang, page=agencies[k] if n else None,
                                next_i=(k + 1) % n if n else 0)

        return await self._cached(("tv", i, lang), compute)
