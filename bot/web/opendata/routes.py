"""The open data routes on the bot's aiohttp server: /data files and Open311 GeoReport v2.

Every answer is rendered once per query and kept in a ``TTLCache`` (bytes and content type), so a
cached answer costs no statement and no rendering. The figures are computed off the event loop.
Anyone may read these (no sign-in), so every response allows cross-origin reads.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Callable
from datetime import UTC
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy.orm import Session

from bot.web.opendata import figures, open311
from bot.web.opendata.cache import DEFAULT_TTL, TTLCache, watch
from bot.web.opendata.periods import Period, parse_list

if TYPE_CHECKING:
    from bot.app import App

CACHE = web.AppKey("opendata_cache", TTLCache)
HEADERS = {"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=60"}
SUPPRESSION = (f"A figure computed from 1 to {figures.MIN_COUNT - 1} respondents or complaints is "
               "null and its column is named in the row's 'suppressed' list. When a single service "
               "of an agency and period withholds a count, another service's count (or the "
               "agency total) is withheld too, so it cannot be derived by subtraction.")
Body = tuple[bytes, str]  # what the cache keeps: the body and its content type


def add_opendata_routes(web_app: web.Application, app: App, *, ttl: float = DEFAULT_TTL,
                        cache: TTLCache | None = None) -> TTLCache:
    """Add /data/{ikm,complaints}.{csv,json} and /open311/v2/... to ``web_app``; returns the cache."""
    cache = cache or TTLCache(ttl)
    watch(app.factory, cache.invalidate)
    web_app[CACHE] = cache
    od = _OpenData(app, cache)
    for name in ("ikm", "complaints"):
        for fmt in ("csv", "json"):
            web_app.router.add_get(f"/data/{name}.{fmt}", od.dataset(name, fmt))
    web_app.router.add_get("/open311/v2/discovery.json", od.discovery)
    web_app.router.add_get("/open311/v2/services.json", od.services)
    web_app.router.add_get("/open311/v2/requests.json", od.requests)
    web_app.router.add_get("/open311/v2/requests/{id}.json", od.request)
    return cache


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _respond(body: Body, status: int = 200) -> web.Response:
    data, content_type = body
    return web.Response(body=data, status=status, content_type=content_type, charset="utf-8",
                        headers=HEADERS)


def _csv(rows: list[dict[str, Any]], columns: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row[c] is None else " ".join(row[c]) if isinstance(row[c], list)
                         else row[c] for c in columns])
    return out.getvalue().encode()


class _OpenData:
    def __init__(self, app: App, cache: TTLCache) -> None:
        self.app = app
        self.cache = cache

    async def _db(self, work: Callable[[Session], Any]) -> Any:
        def run() -> Any:
            with self.app.factory() as db:
                return work(db)

        return await asyncio.get_running_loop().run_in_executor(None, run)

    def dataset(self, name: str, fmt: str) -> Callable[[web.Request], Any]:
        collect = figures.ikm_rows if name == "ikm" else figures.complaint_rows
        columns = figures.IKM_COLUMNS if name == "ikm" else figures.COMPLAINT_COLUMNS

        async def handler(request: web.Request) -> web.Response:
            try:
                wanted = parse_list(request.query.getall("period", []))
            except ValueError as exc:
                return _respond((_json({"error": str(exc)}), "application/json"), 400)
            agency = request.query.get("agency", "").strip() or None
            key = (name, fmt, tuple(p.label for p in wanted), agency)

            async def compute() -> Body:
                now = self.app.runtime.clock()
                rows = await self._db(lambda db: collect(db, wanted or None, now, agency))
                if fmt == "csv":
                    return _csv(rows, list(columns)), "text/csv"
                return _json(_document(name, wanted, now.astimezone(UTC).isoformat(timespec="seconds"),
                                       columns, rows)), "application/json"

            return _respond(await self.cache.get(key, compute))

        return handler

    async def discovery(self, request: web.Request) -> web.Response:
        base = f"{request.scheme}://{request.host}"
        return _respond((_json(open311.discovery(base)), "application/json"))

    async def services(self, request: web.Request) -> web.Response:
        async def compute() -> Body:
            return _json(await self._db(open311.services)), "application/json"

        return _respond(await self.cache.get(("open311", "services"), compute))

    def _label(self, category: str) -> str:
        lang = "id"  # Open311 descriptions are in the agencies' own language
        return self.app.texts(lang, f"cat.{category}")

    async def requests(self, request: web.Request) -> web.Response:
        try:
            query = open311.parse_query(request.query, self.app.runtime.clock())
        except open311.Open311Error as exc:
            return _respond((_json([{"code": 400, "description": str(exc)}]), "application/json"), 400)
        # without dates the window ends "now": round it to the minute so the key repeats
        key: Any = ("open311", "requests", query)
        if not request.query.get("start_date") and not request.query.get("end_date") and not query.ids:
            key = ("open311", "requests", "default", query.service_codes, query.statuses, query.agency)

        async def compute() -> Body:
            rows = await self._db(lambda db: open311.requests(db, query, self._label))
            return _json(rows), "application/json"

        return _respond(await self.cache.get(key, compute))

    async def request(self, request: web.Request) -> web.Response:
        ticket = request.match_info["id"].strip().upper()
        query = open311.RequestQuery(ids=(ticket,))

        async def compute() -> Body:
            return _json(await self._db(lambda db: open311.requests(db, query, self._label))), \
                "application/json"

        body = await self.cache.get(("open311", "request", ticket), compute)
        if body[0] == b"[]":  # unknown, or confidential: the same answer for both
            return _respond((_json([{"code": 404, "description": f"no service request {ticket}"}]),
                             "application/json"), 404)
        return _respond(body)


def _document(name: str, wanted: list[Period], generated: str, columns: dict[str, str],
              rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "dataset": name,
        "generated_at": generated,
        "periods": [p.label for p in wanted] or "default: the previous and the current quarter",
        "min_count": figures.MIN_COUNT,
        "suppression": SUPPRESSION,
        "columns": columns,
        "rows": rows,
    }
