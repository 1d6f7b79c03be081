"""The Monday 07:30 cron in each agency's own zone (WIB, WITA, WIT), asked for its next fire time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import select, update

from bot.app import App
from bot.reports.digest.job import register_digest_jobs, run_digest_job
from bot.reports.digest.period import previous_week
from bot.storage.models import Agency, Digest

SATURDAY = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def set_agency(app: App, slug: str, **values: object) -> None:
    with app.factory() as db, db.begin():
        db.execute(update(Agency).where(Agency.slug == slug).values(**values))


def jobs(app: App) -> dict[str, object]:
    scheduler = AsyncIOScheduler(timezone="UTC")
    register_digest_jobs(scheduler, app)
    return {job.id: job.trigger for job in scheduler.get_jobs()}


@pytest.mark.parametrize(
    ("slug", "tz", "fires_utc"),
    [
        ("disdukcapil", "Asia/Jakarta", datetime(2026, 11, 23, 0, 30, tzinfo=UTC)),  # WIB +7
        ("bpprd", "Asia/Makassar", datetime(2026, 11, 22, 23, 30, tzinfo=UTC)),  # WITA +8
        ("samsat", "Asia/Jayapura", datetime(2026, 11, 22, 22, 30, tzinfo=UTC)),  # WIT +9
    ],
)
def test_cron_fires_monday_0730_local(sqlite_app: App, slug: str, tz: str, fires_utc: datetime) -> None:
    set_agency(sqlite_app, slug, timezone=tz)
    trigger = jobs(sqlite_app)[f"digest:{slug}"]
    nxt = trigger.get_next_fire_time(None, SATURDAY)  # type: ignore[attr-defined]
    assert nxt == fires_utc
    local = nxt.astimezone(ZoneInfo(tz))
    assert (local.weekday(), local.hour, local.minute) == (0, 7, 30)
    # right after it fired, the next one is a week later
    later = trigger.get_next_fire_time(nxt, nxt + timedelta(seconds=1))  # type: ignore[attr-defined]
    assert later == fires_utc + timedelta(days=7)
    # and the job run at that moment reports on the Monday-Sunday week that just ended, locally
    assert previous_week(nxt, tz) == "2026-W47"


def test_time_is_configurable_per_agency_and_globally(sqlite_app: App) -> None:
    set_agency(sqlite_app, "rsud", settings={"digest_time": "06:45"})
    sqlite_app.settings.digest_time = "08:15"
    triggers = jobs(sqlite_app)
    rsud = triggers["digest:rsud"].get_next_fire_time(None, SATURDAY)  # type: ignore[attr-defined]
    other = triggers["digest:samsat"].get_next_fire_time(None, SATURDAY)  # type: ignore[attr-defined]
    assert rsud.astimezone(ZoneInfo("Asia/Jakarta")).strftime("%a %H:%M") == "Mon 06:45"
    assert other.astimezone(ZoneInfo("Asia/Jakarta")).strftime("%a %H:%M") == "Mon 08:15"


def test_inactive_agencies_get_no_job_and_every_active_one_does(sqlite_app: App) -> None:
    set_agency(sqlite_app, "dpmptsp", active=False)
    ids = set(jobs(sqlite_app))
    assert ids == {"digest:disdukcapil", "digest:bpprd", "digest:samsat", "digest:rsud",
                   "digest:setda"}


def test_build_scheduler_registers_the_digest_jobs(sqlite_app: App) -> None:
    from bot.scheduler import build_scheduler

    scheduler = build_scheduler(sqlite_app, {})
    assert {j.id for j in scheduler.get_jobs()} >= {"digest:disdukcapil", "digest:samsat"}


async def test_jobs_in_three_zones_each_report_their_own_week(sqlite_app: App, tmp_path: object) -> None:
    from tests.conftest import FakeClock

    sqlite_app.settings.digest_dir = tmp_path  # type: ignore[assignment]
    set_agency(sqlite_app, "bpprd", timezone="Asia/Makassar")
    set_agency(sqlite_app, "samsat", timezone="Asia/Jayapura")
    # A run at Sunday 16:30 UTC (say, started by hand) is Monday 01:30 WIT and 00:30 WITA,
    # but still Sunday 23:30 WIB: the week that ended is decided in each agency's own zone.
    sqlite_app.runtime.clock = FakeClock(datetime(2026, 11, 22, 16, 30, tzinfo=UTC))
    for slug in ("samsat", "bpprd", "disdukcapil"):
        await run_digest_job(sqlite_app, slug)
    with sqlite_app.factory() as db:
        weeks = dict(db.execute(select(Agency.slug, Digest.week).join(Digest, Digest.agency_id == Agency.id)).all())
    assert weeks == {"samsat": "2026-W47", "bpprd": "2026-W47", "disdukcapil": "2026-W46"}
