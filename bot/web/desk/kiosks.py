"""The desk's kiosk page for heads and admins: each counter tablet of their agencies with its
questionnaires of the last 7 days and a burst flag, the digest's figures
(bot/reports/digest/kiosks.py) at any time rather than on Monday.
"""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web
from sqlalchemy.orm import Session

from bot.catalog import agency_zone
from bot.reports.digest.kiosks import BURST_PER_HOUR, kiosk_lines
from bot.reports.digest.model import KioskLine
from bot.storage.models import Agency
from bot.web.desk.base import APP, current_viewer, run_db
from bot.web.desk.render import local, page
from bot.web.desk.viewer import Viewer

WINDOW = timedelta(days=7)


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/desk/kiosks", kiosks_page)


async def kiosks_page(request: web.Request) -> web.Response:
    viewer: Viewer = current_viewer()
    if not (viewer.head or viewer.admin):
        return page(request, "message.html", status=403, title_key="desk.forbidden.title",
                    body_key="desk.forbidden.body")
    now = request.app[APP].runtime.clock()

    def load(db: Session) -> list[tuple[Agency, str, list[KioskLine]]]:
        return [(a, agency_zone(a), kiosk_lines(db, a.id, now - WINDOW, now)) for a in viewer.agencies.values()]

    groups = [g for g in await run_db(request, load) if g[2]]
    return page(request, "kiosks.html", groups=groups, local=local, limit=BURST_PER_HOUR)
