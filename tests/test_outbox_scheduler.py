"""The scheduler only ticks: the outbox job and the digest jobs, with nothing kept in memory."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select

from bot.app import App
from bot.scheduler import DISPATCH_JOB, build_scheduler, start_background, stop_background
from bot.storage.models import Agency
from tests.conftest import FakeClock, make_app
from tests.outbox_support import RecordingSender, add_rows, rows_by_marker


def test_jobs_are_the_outbox_tick_and_one_digest_per_agency(sqlite_app: App, clock: FakeClock) -> None:
    scheduler = build_scheduler(sqlite_app, {"telegram": RecordingSender(clock=clock)}, clock)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    tick = jobs[DISPATCH_JOB]
    assert isinstance(tick.trigger, IntervalTrigger)
    assert tick.trigger.interval == timedelta(seconds=sqlite_app.settings.outbox_tick_seconds)
    assert tick.max_instances == 2 and tick.coalesce
    with sqlite_app.factory() as db:
        slugs = set(db.scalars(select(Agency.slug).where(Agency.active)))
    assert {j.removeprefix("digest:") for j in jobs if j.startswith("digest:")} == slugs


async def test_a_restarted_scheduler_finds_the_work_in_the_database(
    sqlite_url: str, clock: FakeClock
) -> None:
    first = make_app(sqlite_url, clock)
    add_rows(first.factory, 5, lambda i: clock.now + timedelta(hours=i), clock.now)
    job = build_scheduler(first, {"telegram": RecordingSender(clock=clock)}, clock).get_job(DISPATCH_JOB)
    await job.func()
    first.engine.dispose()  # "restart": a new process, a new scheduler, the same database
    clock.advance(hours=10)
    app = make_app(sqlite_url, clock)
    try:
        sender = RecordingSender(clock=clock)
        job = build_scheduler(app, {"telegram": sender}, clock).get_job(DISPATCH_JOB)
        await job.func()
        assert sorted(sender.counts()) == ["m1", "m2", "m3", "m4"]  # m0 went before the restart
        assert {r.status for r in rows_by_marker(app.factory).values()} == {"sent"}
    finally:
        app.engine.dispose()


async def test_started_scheduler_sends_due_rows_and_stops_cleanly(sqlite_url: str, clock: FakeClock) -> None:
    # No rate limit: a row held back by the limiter waits on the real clock, which this
    # test's injected clock does not follow.
    app = make_app(sqlite_url, clock, outbox_tick_seconds=0.05, telegram_rate_total=0)
    try:
        add_rows(app.factory, 3, lambda i: clock.now, clock.now)
        sent = asyncio.Event()

        class Notifying(RecordingSender):
            async def send(self, chat_id: str, payload: dict[str, Any]) -> str | None:
                result = await super().send(chat_id, payload)
                if len(self.delivered) == 3:
                    sent.set()
                return result

        sender = Notifying(clock=clock)
        scheduler = await start_background(app, {"telegram": sender}, clock)
        await asyncio.wait_for(sent.wait(), 10)
        await stop_background(scheduler)
        assert not scheduler.running
        assert {r.status for r in rows_by_marker(app.factory).values()} == {"sent"}
    finally:
        app.engine.dispose()
