"""The outbox dispatcher: sends due rows once, within each channel's rate limits.

One tick:
1. **Claim** due rows in a short transaction that sets ``status=claimed`` and commits before
   any API call. On PostgreSQL the rows are picked with ``FOR UPDATE SKIP LOCKED`` so several
   bot processes share the work without sending a row twice; on SQLite the write lock taken by
   ``BEGIN IMMEDIATE`` serialises claims (one dispatcher per database is the supported setup).
   A tick claims no more than the channel can send before the tick's time budget runs out.
   Non-urgent rows due inside their agency's quiet hours are moved to the morning instead.
2. **Send** through the channel's :class:`bot.outbox.Sender`, one task per chat (messages to a
   chat keep their order), every send waiting for its slot in the :class:`RateLimiter`.
   Rows whose slot would fall after the budget are released unattempted.
3. **Record** results in batches: ``sent``, or the failure policy of
   :func:`bot.outbox.apply_failure` (retry with backoff, honour 429, fail permanent errors).

A crash between claim and record leaves rows ``claimed``: they are never resent by
themselves but reported (:func:`stuck_rows`, the log, ``python bot.py outbox report``)
because the message may already be on the resident's phone.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.catalog import agency_quiet_hours
from bot.followups import in_quiet_hours, quiet_adjust
from bot.models import Agency, OutboxMessage
from bot.outbox import MAX_ATTEMPTS, Sender, SendError, apply_failure
from bot.ratelimit import RateLimiter

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[Any]]


@dataclass(frozen=True)
class DispatchConfig:
    batch: int = 200  # most rows claimed per channel per round
    tick_budget: float = 1.0  # seconds one tick may spend sending (about the tick interval)
    max_attempts: int = MAX_ATTEMPTS
    claim_timeout: timedelta = timedelta(minutes=10)
    resend_unknown: bool = True
    concurrency: int = 32  # chats sent to at the same time
    flush_every: int = 100  # results recorded per transaction
    stuck_report_every: timedelta = timedelta(minutes=1)


@dataclass
class Claimed:
    id: int
    channel: str
    chat_id: str
    payload: dict[str, Any]


@dataclass
class TickStats:
    claimed: int = 0
    sent: int = 0
    retry: int = 0
    failed: int = 0
    unknown: int = 0
    released: int = 0
    deferred: int = 0
    stuck: int = 0
    statuses: dict[str, int] = field(default_factory=dict)


@dataclass
class _Result:
    row: Claimed
    provider_id: str | None = None
    error: SendError | None = None


class Dispatcher:
    """Sends due outbox rows through ``senders`` (by channel name)."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        senders: Mapping[str, Sender],
        limiter: RateLimiter,
        *,
        clock: Clock,
        config: DispatchConfig | None = None,
        sleep: Sleep = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.factory = factory
        self.senders = dict(senders)
        self.limiter = limiter
        self.clock = clock
        self.config = config or DispatchConfig()
        self.sleep = sleep
        self.jitter = jitter
        self.monotonic = monotonic or limiter.monotonic
        self.postgres = factory.kw["bind"].dialect.name == "postgresql"
        self._agencies: dict[int, tuple[str, str, str]] = {}
        self._agencies_at: datetime | None = None
        self._stuck_at: datetime | None = None
        self._stuck_seen = -1
        self._lock = asyncio.Lock()
        self.totals = TickStats()

    # ------------------------------------------------------------------ tick

    async def tick(self) -> TickStats:
        """Claim, send and record until nothing is due or the time budget is spent."""
        async with self._lock:  # one tick at a time per process
            stats = TickStats()
            deadline = self.monotonic() + self.config.tick_budget
            await self._report_stuck(stats)
            while True:
                remaining = deadline - self.monotonic()
                if remaining <= 0:
                    break
                rows = await asyncio.to_thread(self.claim, self.clock(), remaining, stats)
                if not rows:
                    break
                released = stats.released
                await self._send_all(rows, deadline, stats)
                if stats.released > released:
                    break  # the budget or a chat's limit is reached: the next tick goes on
            for name in ("claimed", "sent", "retry", "failed", "unknown", "released", "deferred"):
                setattr(self.totals, name, getattr(self.totals, name) + getattr(stats, name))
            if stats.claimed or stats.deferred:
                log.debug("outbox tick: %s", stats)
            return stats

    async def idle(self) -> None:
        """Wait until no tick is running (for a graceful stop)."""
        async with self._lock:
            return

    async def drain(self, max_ticks: int = 1_000_000) -> TickStats:
        """Tick until a tick finds nothing due (tests, CLI, benchmarks)."""
        total = TickStats()
        for _ in range(max_ticks):
            stats = await self.tick()
            for name in ("claimed", "sent", "retry", "failed", "unknown", "released", "deferred"):
                setattr(total, name, getattr(total, name) + getattr(stats, name))
            if not stats.claimed and not stats.deferred:
                break
        return total

    # ------------------------------------------------------------------ claim

    def _cap(self, channel: str, seconds: float) -> int:
        rate = self.limiter.total_rate(channel)
        if rate is None:
            return self.config.batch
        return max(1, min(self.config.batch, math.ceil(rate * seconds)))

    def _agency_hours(self, db: Session, now: datetime) -> dict[int, tuple[str, str, str]]:
        if self._agencies_at is None or now - self._agencies_at > timedelta(minutes=1):
            self._agencies = {
                a.id: agency_quiet_hours(a).as_tuple() for a in db.scalars(select(Agency))
            }
            self._agencies_at = now
        return self._agencies

    def claim(self, now: datetime, seconds: float, stats: TickStats | None = None) -> list[Claimed]:
        """Commit ``claimed`` on the next due rows, at most what fits in ``seconds`` of sending."""
        stats = stats if stats is not None else TickStats()
        claimed: list[Claimed] = []
        with self.factory() as db, db.begin():
            hours = self._agency_hours(db, now)
            for channel in self.senders:
                q = (
                    select(OutboxMessage.id, OutboxMessage.urgent, OutboxMessage.agency_id)
                    .where(OutboxMessage.status == "pending", OutboxMessage.due_at <= now,
                           OutboxMessage.channel == channel)
                    .order_by(OutboxMessage.due_at, OutboxMessage.id)
                    .limit(self._cap(channel, seconds))
                )
                if self.postgres:
                    q = q.with_for_update(skip_locked=True)
                ids: list[int] = []
                later: dict[datetime, list[int]] = defaultdict(list)
                for row_id, urgent, agency_id in db.execute(q):
                    zone = hours.get(agency_id) if agency_id is not None else None
                    if not urgent and zone is not None and in_quiet_hours(now, *zone):
                        later[quiet_adjust(now, *zone)].append(row_id)
                    else:
                        ids.append(row_id)
                for due, moved in later.items():
                    db.execute(update(OutboxMessage).where(OutboxMessage.id.in_(moved)).values(due_at=due))
                    stats.deferred += len(moved)
                if not ids:
                    continue
                db.execute(
                    update(OutboxMessage).where(OutboxMessage.id.in_(ids))
                    .values(status="claimed", claimed_at=now)
                )
                rows = db.execute(
                    select(OutboxMessage.id, OutboxMessage.chat_id, OutboxMessage.payload)
                    .where(OutboxMessage.id.in_(ids))
                    .order_by(OutboxMessage.due_at, OutboxMessage.id)
                )
                claimed.extend(Claimed(r.id, channel, r.chat_id, r.payload) for r in rows)
        stats.claimed += len(claimed)
        return claimed

    # ------------------------------------------------------------------ send

    async def _send_all(self, rows: list[Claimed], deadline: float, stats: TickStats) -> None:
        by_chat: dict[tuple[str, str], list[Claimed]] = defaultdict(list)
        for row in rows:
            by_chat[(row.channel, row.chat_id)].append(row)
        done: list[_Result] = []
        release: list[tuple[int, float]] = []  # (row id, seconds before it may go)
        gate = asyncio.Semaphore(self.config.concurrency)

        async def flush_if_full() -> None:
            if len(done) >= self.config.flush_every:
                batch = done[:]
                done.clear()
                await asyncio.to_thread(self.record, batch, stats)

        async def chat_worker(chat_rows: list[Claimed]) -> None:
            async with gate:
                for i, row in enumerate(chat_rows):
                    wait = self.limiter.peek(row.channel, row.chat_id)
                    if wait > 0 and self.monotonic() + wait > deadline:  # what can go now, goes
                        release.extend((r.id, wait) for r in chat_rows[i:])
                        return
                    wait = self.limiter.reserve(row.channel, row.chat_id)
                    if wait > 0:
                        await self.sleep(wait)
                    result = await self._send_one(row)
                    done.append(result)
                    await flush_if_full()
                    if result.error is not None and not result.error.permanent:
                        # Do not hammer a chat that just failed; its next rows wait a little.
                        pause = max(1.0, result.error.retry_after or 0.0)
                        release.extend((r.id, pause) for r in chat_rows[i + 1:])
                        return

        async with asyncio.TaskGroup() as group:
            for chat_rows in by_chat.values():
                group.create_task(chat_worker(chat_rows))
        if done:
            await asyncio.to_thread(self.record, done, stats)
        if release:
            await asyncio.to_thread(self.release, release)
            stats.released += len(release)

    async def _send_one(self, row: Claimed) -> _Result:
        sender = self.senders[row.channel]
        try:
            provider_id = await sender.send(row.chat_id, row.payload)
        except SendError as exc:
            if exc.retry_after is not None:
                self.limiter.penalise(row.channel, row.chat_id, exc.retry_after)
            return _Result(row, error=exc)
        except Exception as exc:  # an unclassified error: treat it like a network error
            log.exception("outbox %s: sender raised", row.id)
            return _Result(row, error=SendError(f"{type(exc).__name__}: {exc}"))
        return _Result(row, provider_id=provider_id)

    # ------------------------------------------------------------------ record

    def record(self, results: list[_Result], stats: TickStats | None = None) -> None:
        """Write outcomes in one transaction: sent rows in bulk, failures by policy."""
        stats = stats if stats is not None else TickStats()
        now = self.clock()
        sent = [r for r in results if r.error is None]
        with self.factory() as db, db.begin():
            if sent:
                db.execute(
                    update(OutboxMessage),
                    [{"id": r.row.id, "status": "sent", "sent_at": now,
                      "provider_message_id": r.provider_id} for r in sent],
                )
                db.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_([r.row.id for r in sent]))
                    .values(attempts=OutboxMessage.attempts + 1)
                )
                stats.sent += len(sent)
            for r in results:
                if r.error is None:
                    continue
                row = db.get(OutboxMessage, r.row.id, with_for_update=True)
                if row is None:
                    continue
                status = apply_failure(
                    db, row, r.error, now, self.jitter(),
                    max_attempts=self.config.max_attempts, resend_unknown=self.config.resend_unknown,
                )
                if status == "pending":
                    stats.retry += 1
                elif status == "unknown":
                    stats.unknown += 1
                elif status == "waiting":  # parked until the resident writes (WhatsApp 24-hour window)
                    stats.deferred += 1
                else:
                    stats.failed += 1
                    log.warning("outbox %s failed: %s", row.id, r.error.reason)
                if r.error.unknown:
                    log.warning("outbox %s: outcome of the send is unknown (%s)", row.id, r.error.reason)

    def release(self, rows: list[tuple[int, float]]) -> None:
        """Give back rows claimed but never attempted (safe to send), not before their slot."""
        now = self.clock()
        by_wait: dict[float, list[int]] = defaultdict(list)
        for row_id, wait in rows:
            by_wait[round(wait, 3)].append(row_id)
        with self.factory() as db, db.begin():
            for wait, ids in by_wait.items():
                db.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(ids), OutboxMessage.status == "claimed")
                    .values(status="pending", claimed_at=None,
                            due_at=now + timedelta(seconds=wait))
                )

    # ------------------------------------------------------------------ crash report

    async def _report_stuck(self, stats: TickStats) -> None:
        now = self.clock()
        if self._stuck_at is not None and now - self._stuck_at < self.config.stuck_report_every:
            return
        self._stuck_at = now
        rows = await asyncio.to_thread(stuck_rows, self.factory, now, self.config.claim_timeout)
        stats.stuck = len(rows)
        if rows and len(rows) != self._stuck_seen:
            log.warning(
                "outbox: %d message(s) were claimed for sending more than %s ago and never "
                "confirmed (a crash?); not resent automatically. See `python bot.py outbox report`. "
                "ids: %s", len(rows), self.config.claim_timeout, ", ".join(str(r.id) for r in rows[:20]),
            )
        self._stuck_seen = len(rows)


def stuck_rows(
    factory: sessionmaker[Session], now: datetime, older_than: timedelta, limit: int = 1000
) -> list[OutboxMessage]:
    """Rows claimed before ``now - older_than`` with no outcome recorded: maybe sent, maybe not."""
    with factory() as db:
        return list(
            db.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.status == "claimed", OutboxMessage.claimed_at < now - older_than)
                .order_by(OutboxMessage.claimed_at, OutboxMessage.id)
                .limit(limit)
            )
        )


def status_counts(factory: sessionmaker[Session]) -> dict[str, int]:
    with factory() as db:
        return {
            s: n for s, n in db.execute(
                select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
            )
        }


def requeue(factory: sessionmaker[Session], ids: list[int], now: datetime) -> int:
    """Operator decision: send these stuck/unknown/failed rows again (may duplicate)."""
    with factory() as db, db.begin():
        res = db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids),
                   OutboxMessage.status.in_(("claimed", "unknown", "failed")))
            .values(status="pending", claimed_at=None, due_at=now, attempts=0)
        )
        return int(res.rowcount)  # type: ignore[attr-defined]
