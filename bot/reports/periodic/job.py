"""Producing and queueing periodic reports once per (scope, period), and their daily schedule.

When a quarter, semester or year has ended, every agency's report goes to its heads and the
regency's report (scope "*") to the admins, as PDF and XLSX documents through the outbox; the
files are archived under REPORT_DIR/<scope>/<period>/. The ``periodic_reports`` row with a
unique (scope, period) is inserted in the same transaction as the outbox rows
(bot/reports/once.py, shared with the digest), so a second process or a retry does nothing. The job looks every day, so a bot that was down
on the first day of the quarter still produces the report once it is back (within
``CATCH_UP_DAYS``; older periods are built by hand with ``bot.py report``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.catalog import agency_zone
from bot.desk.staff import heads as agency_heads
from bot.i18n import TEXTS
from bot.reports import once
from bot.reports.digest.fmt import Fmt, shorten
from bot.reports.periodic.data import ALL, collect
from bot.reports.periodic.files import ReportFiles, write_files
from bot.reports.periodic.model import ReportData
from bot.reports.periodic.period import Period, last_complete
from bot.reports.periodic.text import CAPTION_LIMIT, caption, period_name
from bot.storage.models import Agency, PeriodicReport, StaffMember
from flows.machine.types import Texts

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)
KINDS = ("Q", "S", "Y")
CATCH_UP_DAYS = 31
DEFAULT_TIME = "08:00"


def report_dir(app: App) -> Path:
    configured = getattr(app.settings, "report_dir", None)
    return Path(configured) if configured else Path("data") / "reports"


def payloads(data: ReportData, files: ReportFiles, lang: str, texts: Texts = TEXTS) -> list[dict[str, Any]]:
    """The PDF with a one-line caption, then the XLSX."""
    f = Fmt(texts, lang)
    empty: dict[str, Any] = {"text": "", "choices": [], "q": None}
    return [
        {**empty, "document": {"path": str(files.pdf), "filename": files.pdf.name,
                               "caption": caption(data, lang, texts)}},
        {**empty, "document": {"path": str(files.xlsx), "filename": files.xlsx.name,
                               "caption": shorten(f.t("report.xlsx.caption", period=period_name(f, data.period)),
                                                  CAPTION_LIMIT)}},
    ]


def recipients(db: Session, data: ReportData) -> list[StaffMember]:
    """The agency's heads; for the regency report, every active admin."""
    if data.scope != ALL:
        return agency_heads(db, data.agency_ids[0])
    return list(db.scalars(
        select(StaffMember).where(StaffMember.role == "admin", StaffMember.active).order_by(StaffMember.id)
    ))


@dataclass
class Produced:
    report_id: int
    scope: str
    period: str
    recipients: int
    messages: int


def produce_report(app: App, scope: str, period: Period, now: datetime) -> Produced | None:
    """Build, archive and queue one report, once per (scope, period); None if already done.

    The aggregation and rendering run outside the write transaction; the unique row decides
    who queues the messages.
    """
    with app.factory() as db:
        if db.scalar(select(PeriodicReport.id).where(PeriodicReport.scope == scope,
                                                     PeriodicReport.period == period.label)):
            return None
        data = collect(db, scope, period)
        langs = once.languages(db, recipients(db, data), app.settings.default_language)
        out = report_dir(app) / ("kabupaten" if scope == ALL else scope) / period.label
        files = {lang: write_files(db, data, out, lang, app.texts, created=now) for lang in sorted(langs)}

    def render(lang: str) -> ReportFiles:
        with app.factory() as rdb:
            return write_files(rdb, data, out, lang, app.texts, created=now)

    with app.factory() as db, db.begin():
        people = recipients(db, data)
        row_id = once.claim(db, PeriodicReport, scope=scope, period=period.label, produced_at=now,
                            recipients=len(people), summary=_summary(data))
        if row_id is None:
            return None
        count = once.queue(db, people, files, render=render,
                           payloads=lambda f, lang: payloads(data, f, lang, app.texts),
                           kind="report", key=f"report:{row_id}", default=app.settings.default_language,
                           now=now)
        log.info("report %s %s queued for %d people (%d messages)", scope, period.label, len(people), count)
        return Produced(row_id, scope, period.label, len(people), count)


def _summary(data: ReportData) -> dict[str, Any]:
    return {"ikm": str(data.ikm.value) if data.ikm.value is not None else None, "grade": data.ikm.grade,
            "respondents": data.respondents, "complaints": data.complaints.received,
            "weighting": data.weighting}


def due_periods(now: datetime, tz: str) -> list[Period]:
    """The quarter, semester and year that ended within the last CATCH_UP_DAYS (agency time)."""
    out = []
    for kind in KINDS:
        period = last_complete(now, tz, kind)
        if now - period.bounds(tz)[1] < timedelta(days=CATCH_UP_DAYS):
            out.append(period)
    return out


def run_reports(app: App, now: datetime) -> list[Produced]:
    """Every agency's due reports, then the regency's (in the first agency's zone)."""
    with app.factory() as db:
        agencies = [(a.slug, agency_zone(a)) for a in db.scalars(
            select(Agency).where(Agency.active).order_by(Agency.id))]
    done: list[Produced] = []
    for slug, zone in agencies:
        for period in due_periods(now, zone):
            try:
                produced = produce_report(app, slug, period, now)
            except Exception:  # the next day's run retries; the unique row prevents doubles
                log.exception("report %s %s failed", slug, period.label)
                continue
            if produced:
                done.append(produced)
    if agencies:
        for period in due_periods(now, agencies[0][1]):
            try:
                produced = produce_report(app, ALL, period, now)
            except Exception:
                log.exception("regency report %s failed", period.label)
                continue
            if produced:
                done.append(produced)
    return done


async def run_report_job(app: App) -> list[Produced]:
    """The scheduled job, in a worker thread so the event loop stays free."""
    now = app.runtime.clock()
    try:
        return await asyncio.to_thread(run_reports, app, now)
    except Exception:
        log.exception("periodic reports failed")
        return []


def register_report_jobs(scheduler: Any, app: App) -> None:
    """Every day at REPORT_TIME in the first agency's zone: produce what has become due."""
    from apscheduler.triggers.cron import CronTrigger

    with app.factory() as db:
        first = db.scalars(select(Agency).where(Agency.active).order_by(Agency.id)).first()
    zone = agency_zone(first) if first else "Asia/Jakarta"
    hour, minute = (int(x) for x in str(getattr(app.settings, "report_time", DEFAULT_TIME)).split(":"))
    scheduler.add_job(
        run_report_job, CronTrigger(hour=hour, minute=minute, timezone=ZoneInfo(zone)), args=(app,),
        id="periodic-reports", name="periodic SKM reports", replace_existing=True, coalesce=True,
        misfire_grace_time=12 * 3600,
    )
