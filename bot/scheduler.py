"""APScheduler in the bot process: it only ticks.

Jobs hold no state of their own: the dispatcher reads due rows from the outbox, the weekly
digest claims a unique row per agency and week. A restart (or a second process) therefore
loses nothing and does nothing twice; the scheduler's memory is only "when to look next".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.app import App
from bot.outbox.budget import build_budget
from bot.outbox.dispatcher import DispatchConfig, Dispatcher
from bot.outbox.ratelimit import ChannelLimits, SendBudget, telegram_limits, whatsapp_limits
from bot.outbox.store import Sender
from bot.runtime.types import Clock

log = logging.getLogger(__name__)
DISPATCH_JOB = "outbox-dispatcher"


def channel_limits(app: App) -> dict[str, ChannelLimits]:
    """Per-channel limits from the settings (platform defaults unless configured)."""
    s = app.settings
    return {
        "telegram": telegram_limits(
            s.telegram_rate_total, s.telegram_rate_chat, s.telegram_chat_burst, s.telegram_group_per_minute
        ),
        "whatsapp": whatsapp_limits(s.whatsapp_rate_total),
    }


def build_dispatcher(app: App, senders: Mapping[str, Sender], clock: Clock | None = None) -> Dispatcher:
    s = app.settings
    config = DispatchConfig(
        batch=s.outbox_batch,
        tick_budget=s.outbox_tick_seconds,
        max_attempts=s.outbox_max_attempts,
        claim_timeout=timedelta(minutes=s.outbox_claim_timeout_minutes),
        resend_unknown=s.outbox_resend_unknown,
        send_timeout=s.outbox_send_timeout_seconds,
    )
    return Dispatcher(
        app.factory, senders, shared_limiter(app),
        clock=clock or app.runtime.clock, config=config, metrics=app.metrics,
    )


def shared_limiter(app: App) -> SendBudget:
    """The process's one send budget: the dispatcher and the channels' immediate replies share
    it, so together they stay within each platform's limits. With SEND_BUDGET=postgres or
    redis it is also shared with every other process (bot/outbox/budget.py)."""
    if app.limiter is None:
        app.limiter = build_budget(app.settings, channel_limits(app), app.engine)
    return app.limiter


def build_scheduler(
    app: App, senders: Mapping[str, Sender], clock: Clock | None = None,
    dispatcher: Dispatcher | None = None,
) -> AsyncIOScheduler:
    """The outbox tick plus the hooks of later features (weekly digest, SLA check, erasure
    purge, daily retention), not yet started."""
    dispatcher = dispatcher or build_dispatcher(app, senders, clock)
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_job(
        dispatcher.tick,
        IntervalTrigger(seconds=app.settings.outbox_tick_seconds),
        # Two instances: a tick that runs over its interval has the next one waiting on the
        # dispatcher's lock, so sending continues back to back instead of skipping a beat.
        id=DISPATCH_JOB, name="outbox dispatcher", max_instances=2, coalesce=True,
        misfire_grace_time=None, replace_existing=True,
    )
    try:
        from bot.reports.digest.job import register_digest_jobs
    except ImportError:  # pragma: no cover - a build without digests
        log.info("weekly digest not available; scheduler runs the outbox only")
    else:
        register_digest_jobs(scheduler, app)
    from bot.reports.periodic.job import register_report_jobs

    register_report_jobs(scheduler, app)
    from bot.desk.deadlines import register_sla_job

    register_sla_job(scheduler, app.factory, clock or app.runtime.clock)
    from bot.privacy.purge import register_purge_job

    register_purge_job(scheduler, app.factory)
    from bot.privacy.retention import Policy, register_retention_job

    register_retention_job(scheduler, app.factory, Policy.from_settings(app.settings),
                           clock or app.runtime.clock, at=app.settings.retention_time)
    scheduler.dispatcher = dispatcher
    return scheduler


async def start_background(
    app: App, senders: Mapping[str, Sender], clock: Clock | None = None
) -> AsyncIOScheduler:
    """Start ticking inside the running event loop; call ``scheduler.shutdown()`` on exit."""
    scheduler = build_scheduler(app, senders, clock)
    scheduler.start()
    # /healthz: the dispatcher should tick every OUTBOX_TICK_SECONDS from now on
    app.metrics.scheduler.started((clock or app.runtime.clock)(), app.settings.outbox_tick_seconds)
    log.info("scheduler started: %s", ", ".join(job.id for job in scheduler.get_jobs()))
    return scheduler


async def stop_background(scheduler: AsyncIOScheduler, timeout: float = 30.0) -> None:
    """Stop ticking, let a tick in progress record what it sent, then shut down.

    Cancelling a tick mid-way would leave sent rows ``claimed`` (reported, never resent):
    safe, but a graceful stop should not need the operator.
    """
    scheduler.pause()
    dispatcher: Dispatcher | None = getattr(scheduler, "dispatcher", None)
    if dispatcher is not None:
        try:
            await asyncio.wait_for(dispatcher.idle(), timeout)
        except TimeoutError:
            log.warning("outbox tick still running after %.0f s; stopping anyway", timeout)
    scheduler.shutdown(wait=False)
    await asyncio.sleep(0)  # AsyncIOScheduler shuts down on the loop's next turn

