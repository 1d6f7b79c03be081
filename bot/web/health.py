"""``/healthz`` for a whole bot process: database, scheduler, outbox, in one cached answer.

200 when healthy; 503, with the same JSON body, when the database cannot be reached, the
outbox dispatcher has not finished a tick for ``STALE_TICKS`` intervals plus ``STALE_MARGIN``
seconds, or rows are stuck (claimed longer than OUTBOX_CLAIM_TIMEOUT_MINUTES: the process
sending them died and nobody settled them yet). The backlog (due pending rows) is reported,
not judged: a burst is not an outage.

The answer is kept for ``CACHE_SECONDS`` and concurrent requests share one check, so a load
balancer asking every second costs two indexed counts every few seconds. The counts run in
the loop's default executor, not a channel's database thread: a health check never queues
behind turns.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select

from bot.storage.models import OutboxMessage

if TYPE_CHECKING:
    from bot.app import App

Check = Callable[[], Awaitable[None]]
STALE_TICKS = 3  # intervals without a finished tick before the scheduler counts as stale
STALE_MARGIN = 30.0  # seconds on top: a slow tick (a busy database) is not yet an outage
CACHE_SECONDS = 5.0
CHECK_TIMEOUT = 5.0


def outbox_counts(conn: Connection, now: datetime, claim_timeout: timedelta) -> tuple[int, int]:
    """(due pending rows, rows claimed before ``now - claim_timeout``): two counts that read
    only their range of the (status, due_at) index."""
    backlog = conn.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.status == "pending", OutboxMessage.due_at <= now))
    stuck = conn.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.status == "claimed", OutboxMessage.claimed_at < now - claim_timeout))
    return backlog or 0, stuck or 0


class Health:
    """Computes and caches the ``/healthz`` answer for ``app``: (healthy, JSON body)."""

    def __init__(self, app: App, checks: Mapping[str, Check] | None = None,
                 executor: Executor | None = None, cache_seconds: float = CACHE_SECONDS,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.checks = dict(checks or {})
        self.executor = executor
        self.cache_seconds = cache_seconds
        self.monotonic = monotonic
        self._cached: tuple[bool, dict[str, Any]] | None = None
        self._expires = 0.0
        self._running: asyncio.Future[tuple[bool, dict[str, Any]]] | None = None

    async def report(self) -> tuple[bool, dict[str, Any]]:
        if self._cached is not None and self.monotonic() < self._expires:
            return self._cached
        if self._running is None:
            self._running = asyncio.ensure_future(self._check())
        return await asyncio.shield(self._running)  # a client that hangs up cancels nothing

    async def _check(self) -> tuple[bool, dict[str, Any]]:
        try:
            result = await self._measure()
            self._cached, self._expires = result, self.monotonic() + self.cache_seconds
            return result
        finally:
            self._running = None

    def _counts(self, now: datetime) -> tuple[int, int]:
        timeout = timedelta(minutes=self.app.settings.outbox_claim_timeout_minutes)
        with self.app.engine.connect() as conn:
            return outbox_counts(conn, now, timeout)

    async def _measure(self) -> tuple[bool, dict[str, Any]]:
        now = self.app.runtime.clock()
        checks: dict[str, str] = {}
        body: dict[str, Any] = {"status": "", "checks": checks}
        loop = asyncio.get_running_loop()
        try:
            backlog, stuck = await asyncio.wait_for(
                loop.run_in_executor(self.executor, self._counts, now), CHECK_TIMEOUT)
        except Exception as exc:  # a health check reports, it never raises
            checks["database"] = f"error: {type(exc).__name__}"
            body["outbox"] = None
        else:
            checks["database"] = "ok"
            checks["outbox"] = "ok" if not stuck else f"{stuck} stuck"
            body["outbox"] = {"backlog": backlog, "stuck": stuck}
        beat = self.app.metrics.scheduler
        if beat.running:
            since = beat.last_tick or beat.started_at
            assert since is not None
            age = (now - since).total_seconds()
            interval = beat.interval or self.app.settings.outbox_tick_seconds
            limit = STALE_TICKS * interval + STALE_MARGIN
            checks["scheduler"] = "ok" if age <= limit else "stale"
            body["scheduler"] = {
                "last_tick": beat.last_tick.isoformat() if beat.last_tick else None,
                "seconds_since": round(age, 1), "stale_after_seconds": limit}
        for name, check in self.checks.items():
            try:
                await asyncio.wait_for(check(), CHECK_TIMEOUT)
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"error: {type(exc).__name__}"
        healthy = all(value == "ok" for value in checks.values())
        body["status"] = "ok" if healthy else "unhealthy"
        return healthy, body
