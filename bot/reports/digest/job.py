"""Producing and queueing the digest, once per (agency, ISO week), and the Monday schedule.

A digest for (agency, ISO week) is produced once: the ``digests`` row with a unique key is
inserted in the same transaction as the outbox rows for the heads (bot/reports/once.py, shared
with the periodic report).
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.catalog import agency_zone
from bot.desk.staff import heads as agency_heads
from bot.i18n import TEXTS
from bot.reports import once
from bot.reports.digest.data import collect, find_agency
from bot.reports.digest.files import DigestFiles, write_files
from bot.reports.digest.fmt import Fmt, shorten
from bot.reports.digest.model import DigestData
from bot.reports.digest.period import parse_week, previous_week
from bot.reports.digest.text import CAPTION_LIMIT, TEXT_LIMIT, caption, respondents, week_span
from bot.storage.models import Agency, Digest
from bot.text import split_text
from flows.machine.types import Texts

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

DEFAULT_TIME = "07:30"
TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")  # what a digest_time may be (doctor checks it too)


def digest_dir(app: App) -> Path:
    configured = getattr(app.settings, "digest_dir", None)
    return Path(configured) if configured else Path("data") / "digests"


def payloads(data: DigestData, files: DigestFiles, lang: str, texts: Texts = TEXTS) -> list[dict[str, Any]]:
    """Photo with caption, then the text (split to fit), then the spreadsheet."""
    f = Fmt(texts, lang)
    empty: dict[str, Any] = {"text": "", "choices": [], "q": None}
    out: list[dict[str, Any]] = [{**empty, "photo": {"path": str(files.chart), "caption": caption(data, lang, texts)}}]
    out += [{**empty, "text": chunk} for chunk in split_text(files.text, TEXT_LIMIT)]
    out.append({**empty, "document": {
        "path": str(files.xlsx), "filename": files.xlsx.name,
        "caption": shorten(f.t("digest.xlsx.caption_week", span=week_span(f, data),
                               respondents=respondents(f, data.respondents_week),
                               complaints=data.complaints.new), CAPTION_LIMIT),
    }})
    return out


@dataclass
class Produced:
    digest_id: int
    week: str
    recipients: int
    messages: int


def produce_digest(app: App, agency_slug: str, week: str | None, now: datetime) -> Produced | None:
    """Build and queue the digest for every head, once per (agency, week); None if already done.

    The aggregation runs outside the write transaction (so SQLite's write lock is held only
    for the few inserts); the unique (agency, week) row decides who queues the messages.
    """
    with app.factory() as db:
        agency = find_agency(db, agency_slug)
        week = week or previous_week(now, agency_zone(agency))
        parse_week(week)
        if db.scalar(select(Digest.id).where(Digest.agency_id == agency.id, Digest.week == week)):
            return None
        data = collect(db, agency, week, now)
        langs = once.languages(db, agency_heads(db, agency.id), app.settings.default_language)
        out = digest_dir(app) / agency.slug / week
        files = {lang: write_files(db, data, out, lang, app.texts) for lang in sorted(langs)}

    def render(lang: str) -> DigestFiles:
        with app.factory() as rdb:
            return write_files(rdb, data, out, lang, app.texts)

    with app.factory() as db, db.begin():
        heads = agency_heads(db, data.agency_id)
        row_id = once.claim(db, Digest, agency_id=data.agency_id, week=week, produced_at=now,
                            recipients=len(heads), summary=_summary(data))
        if row_id is None:
            return None
        count = once.queue(db, heads, files, render=render,
                           payloads=lambda f, lang: payloads(data, f, lang, app.texts),
                           kind="digest", key=f"digest:{row_id}", default=app.settings.default_language,
                           now=now)
        log.info("digest %s %s queued for %d heads (%d messages)", agency_slug, week, len(heads), count)
    app.metrics.digests.labels(agency_slug).inc()  # after the commit: produced
    return Produced(row_id, week, len(heads), count)


def _summary(data: DigestData) -> dict[str, Any]:
    w = data.week_ikm
    return {"ikm": str(w.value) if w.value is not None else None, "grade": w.grade,
            "respondents": data.respondents_week, "complaints_new": data.complaints.new,
            "bribery": len(data.complaints.bribery)}


def digest_time(app: App, agency: Agency) -> tuple[int, int]:
    """Send time: the agency's ``digest_time`` setting, else the global one, else 07:30."""
    value = (agency.settings or {}).get("digest_time") or getattr(app.settings, "digest_time", None) or DEFAULT_TIME
    m = TIME.fullmatch(str(value).strip())
    if not m:
        log.error("agency %s: bad digest_time %r, using %s", agency.slug, value, DEFAULT_TIME)
        return 7, 30
    return int(m.group(1)), int(m.group(2))


def digest_trigger(app: App, agency: Agency) -> Any:
    """Every Monday at the digest time in the agency's own zone."""
    from apscheduler.triggers.cron import CronTrigger

    hour, minute = digest_time(app, agency)
    return CronTrigger(day_of_week="mon", hour=hour, minute=minute, timezone=ZoneInfo(agency_zone(agency)))


async def run_digest_job(app: App, agency_slug: str) -> Produced | None:
    """The scheduled job: last week's digest, in a worker thread so the event loop stays free."""
    now = app.runtime.clock()
    try:
        return await asyncio.to_thread(produce_digest, app, agency_slug, None, now)
    except Exception:  # the next tick or a restart retries; the unique row prevents doubles
        log.exception("digest for %s failed", agency_slug)
        return None


def register_digest_jobs(scheduler: Any, app: App) -> None:
    """One CronTrigger per active agency (Monday 07:30 local by default)."""
    with app.factory() as db:
        agencies = list(db.scalars(select(Agency).where(Agency.active).order_by(Agency.id)))
    for agency in agencies:
        scheduler.add_job(
            run_digest_job, digest_trigger(app, agency), args=(app, agency.slug),
            id=f"digest:{agency.slug}", name=f"weekly digest {agency.slug}",
            replace_existing=True, coalesce=True, misfire_grace_time=6 * 3600,
        )
