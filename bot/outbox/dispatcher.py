"""The outbox dispatcher: sends due rows once, within each channel's rate limits.

One tick:
1. **Claim** due rows in a short transaction that sets ``status=claimed`` and commits before
   any API call. On PostgreSQL the rows are picked with ``FOR UPDATE SKIP LOCKED`` so several
   bot processes share the work without sending a row twice; on SQLite the write lock taken by
   ``BEGIN IMMEDIATE`` serialises claims (one dispatcher per database is the supported setup).
   A tick claims no more than the channel can send before the tick's time budget runs out.
   Non-urgent rows due inside their agency's quiet hours are moved to the morning instead.
2. **Send** through the channel's :class:`bot.outbox.store.Sender`, one task per chat (messages to a
   chat keep their order), every send waiting for its slot in the send budget (:class:`SendBudget`) and
   given at most ``send_timeout`` seconds. Chat tasks run side by side (``concurrency`` per channel) and
   outlive the tick if they must: a tick waits for them only until its time budget is spent,
   so one hanging chat never holds up the others. Rows whose slot would fall after the budget
   (and ``overlap`` of it, so the next tick's claim overlaps the last sends) are handed back
   unattempted, keeping their place in the queue.
3. **Record** results in batches: ``sent``, or the failure policy of
   :func:`bot.outbox.store.apply_failure` (retry with backoff, honour 429, fail permanent errors).

Per-chat order: a chat with a row in flight (``claimed``) or backing off after a real
attempt is not claimed from; rows behind a failed one are handed back with it
(:func:`bot.outbox.store.hand_back`), so a newer row never overtakes an older unsent one.

A crash between claim and record leaves rows ``claimed``. After ``claim_timeout`` they are
resent under the same policy as any unknowable outcome (``resend_unknown``: counted in
``uncertain``, a possible duplicate), or marked ``unknown`` and reported
(``python bot.py outbox report``); that SQL, and the operator's report and requeue, live in
bot/outbox/recovery.py.

Why this module stays one piece (about 480 lines): claim, send and record are the three steps
of one :class:`Dispatcher` and share its in-process state (the tick lock, chats held until
their next slot, rows to hand back, outcomes not yet recorded, the background tally); split
apart, that state would have to be passed between modules on every step. The send and
failure policy itself is bot/outbox/store.py, the rate limits bot/outbox/ratelimit.py.
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
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, union, update
from sqlalchemy.orm import Session, sessionmaker

from bot.catalog import agency_quiet_hours
from bot.outbox.followups import in_quiet_hours, quiet_adjust
from bot.outbox.ratelimit import SendBudget
from bot.outbox.recovery import recover_stale
from bot.outbox.store import (
    BACKOFF_CAP,
    MAX_ATTEMPTS,
    SEND_TIMEOUT,
    Sender,
    SendError,
    apply_failure,
    hand_back,
    send_within,
)
from bot.storage.models import Agency, OutboxMessage

if TYPE_CHECKING:
    from bot.metrics import Metrics

log = logging.getLogger(__name__)
BACKOFF_WINDOW = timedelta(seconds=BACKOFF_CAP + 60)
Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[Any]]


@dataclass(frozen=True)
class DispatchConfig:
    batch: int = 200  # most rows claimed per channel per round
    tick_budget: float = 1.0  # seconds one tick may spend sending (about the tick interval)
    max_attempts: int = MAX_ATTEMPTS
    claim_timeout: timedelta = timedelta(minutes=10)
    resend_unknown: bool = True
    send_timeout: float = SEND_TIMEOUT  # seconds one send may take (then: outcome unknown)
    concurrency: int = 32  # chats sent to at the same time, per channel
    flush_every: int = 100  # results recorded per transaction
    stuck_report_every: timedelta = timedelta(minutes=1)  # how often stale claims are looked for
    overlap: float = 0.1  # share of tick_budget a tick's sends may run past its end


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
    recovered: int = 0  # claimed by a process that died: resent or marked unknown
    statuses: dict[str, int] = field(default_factory=dict)


@dataclass
class _Result:
    row: Claimed
    provider_id: str | None = None
    error: SendError | None = None
    untried: list[int] = field(default_factory=list)  # the chat's rows behind a failed one


class Dispatcher:
    """Sends due outbox rows through ``senders`` (by channel name)."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        senders: Mapping[str, Sender],
        limiter: SendBudget,
        *,
        clock: Clock,
        config: DispatchConfig | None = None,
        sleep: Sleep = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        monotonic: Callable[[], float] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.factory = factory
        self.senders = dict(senders)
        self.limiter = limiter
        self.clock = clock
        self.config = config or DispatchConfig()
        self.sleep = sleep
        self.jitter = jitter
        self.monotonic = monotonic or limiter.monotonic
        self.metrics = metrics  # send outcomes and the tick's time (/metrics, /healthz)
        self.postgres = factory.kw["bind"].dialect.name == "postgresql"
        self._agencies: dict[int, tuple[str, str, str]] = {}
        self._agencies_at: datetime | None = None
        self._stuck_at: datetime | None = None
        self._stuck_seen = -1
        self._lock = asyncio.Lock()
        self._gates: dict[str, asyncio.Semaphore] = {}  # per channel: chats being sent to
        self._workers: set[asyncio.Task[None]] = set()
        self._done: list[_Result] = []  # outcomes not yet recorded
        self._release: list[int] = []  # claimed rows handed back unattempted
        self._held: dict[tuple[str, str], float] = {}  # chat -> monotonic time its next slot opens
        self._background = TickStats()  # outcomes recorded between ticks (by busy chat tasks)
        self.totals = TickStats()

    # ------------------------------------------------------------------ tick

    async def tick(self) -> TickStats:
        """Claim, send and record until nothing is due or the time budget is spent.

        Chats whose sends are still running when the budget is spent go on in the background
        (their rows stay ``claimed``, so nothing else of those chats is sent meanwhile); their
        outcomes are recorded by a later tick or by :meth:`idle`.
        """
        async with self._lock:  # one tick at a time per process
            stats = TickStats()
            deadline = self.monotonic() + self.config.tick_budget
            # Slots are taken a little past the tick's end: the next tick's bookkeeping and
            # claim (tens of ms) then overlap the last sends instead of leaving the channel idle.
            reach = self.config.tick_budget * self.config.overlap
            await self._flush(stats)
            await self._report_stuck(stats)
            while True:
                remaining = deadline - self.monotonic()
                if remaining <= 0:
                    break
                rows = await asyncio.to_thread(self.claim, self.clock(), remaining + reach, stats)
                if not rows:
                    break
                released = len(self._release)
                finished = await self._send_all(rows, deadline, deadline + reach)
                stopped = len(self._release) > released
                await self._flush(stats)
                if stopped or not finished:
                    break  # the budget or a chat's limit is reached: the next tick goes on
            for name in ("claimed", "sent", "retry", "failed", "unknown", "released", "deferred",
                         "recovered"):
                setattr(self.totals, name, getattr(self.totals, name) + getattr(stats, name))
            if stats.claimed or stats.deferred or stats.recovered:
                log.debug("outbox tick: %s", stats)
            if self.metrics is not None:
                self.metrics.scheduler.ticked(self.clock())
            return stats

    async def idle(self, stats: TickStats | None = None) -> None:
        """Wait until no tick and no send is running, and record their outcomes (graceful stop)."""
        async with self._lock:
            while self._workers:
                await asyncio.wait(set(self._workers))
            late = TickStats()
            await self._flush(late)
            for name in ("sent", "retry", "failed", "unknown", "released", "deferred"):
                setattr(self.totals, name, getattr(self.totals, name) + getattr(late, name))
            if stats is not None:
                self._merge(stats, late)

    @property
    def in_flight(self) -> int:
        """Chats whose sends are running now."""
        return len(self._workers)

    async def drain(self, max_ticks: int = 1_000_000) -> TickStats:
        """Tick until nothing is due and nothing is in flight (tests, CLI, benchmarks)."""
        total = TickStats()
        for _ in range(max_ticks):
            stats = await self.tick()
            busy = bool(self._workers)
            if busy:
                await self.idle(stats)
            for name in ("claimed", "sent", "retry", "failed", "unknown", "released", "deferred",
                         "recovered"):
                setattr(total, name, getattr(total, name) + getattr(stats, name))
            if not stats.claimed and not stats.deferred and not stats.recovered and not busy:
                break
        return total

    @staticmethod
    def _merge(a: TickStats, b: TickStats) -> TickStats:
        for name in ("sent", "retry", "failed", "unknown", "released", "deferred"):
            setattr(a, name, getattr(a, name) + getattr(b, name))
        return a

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
        mono = self.monotonic()
        self._held = {k: t for k, t in self._held.items() if t > mono}
        with self.factory() as db, db.begin():
            hours = self._agency_hours(db, now)
            for channel in self.senders:
                busy = self._busy_chats(db, channel, now)
                q = (
                    select(OutboxMessage.id, OutboxMessage.urgent, OutboxMessage.agency_id)
                    .where(OutboxMessage.status == "pending", OutboxMessage.due_at <= now,
                           OutboxMessage.channel == channel)
                    .order_by(OutboxMessage.due_at, OutboxMessage.id)
                    .limit(self._cap(channel, seconds))
                )
                if busy:
                    q = q.where(OutboxMessage.chat_id.not_in(busy))
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

    def _busy_chats(self, db: Session, channel: str, now: datetime) -> list[str]:
        """Chats not to claim from now, so their order holds: a row in flight (here, in another
        process, or left by a dead one), a row backing off after a real attempt, or (this
        process) no send slot before the tick's end."""
        # Two range reads of ix_outbox_status_channel_due, not one OR (which SQLite answers
        # by reading the whole table): their cost follows the rows in flight, not the backlog.
        in_flight = select(OutboxMessage.chat_id).where(
            OutboxMessage.status == "claimed", OutboxMessage.channel == channel)
        backing_off = select(OutboxMessage.chat_id).where(
            OutboxMessage.status == "pending", OutboxMessage.channel == channel,
            OutboxMessage.due_at > now,
            # a backoff is at most BACKOFF_CAP: the index range stays small
            OutboxMessage.due_at <= now + BACKOFF_WINDOW, OutboxMessage.attempts > 0)
        busy = set(db.scalars(union(in_flight, backing_off)))
        busy.update(chat for (ch, chat) in self._held if ch == channel)
        return sorted(busy)

    # ------------------------------------------------------------------ send

    async def _send_all(self, rows: list[Claimed], deadline: float, last_slot: float) -> bool:
        """Start one task per chat and wait for them until ``deadline``; True if all finished.

        A task takes send slots up to ``last_slot`` and hands back the rows it could not send.

        Tasks still running at the deadline (a hanging send) go on in the background.
        """
        by_chat: dict[tuple[str, str], list[Claimed]] = defaultdict(list)
        for row in rows:
            by_chat[(row.channel, row.chat_id)].append(row)
        tasks = []
        for chat_rows in by_chat.values():
            # Written order: ids, not due times (a retry's due time has moved past newer rows).
            chat_rows.sort(key=lambda r: r.id)
            task = asyncio.create_task(self._chat_worker(chat_rows, last_slot))
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)
            tasks.append(task)
        timeout = max(0.0, deadline - self.monotonic())
        finished, running = await asyncio.wait(tasks, timeout=timeout)
        for task in finished:  # only a BaseException gets here (the process is going down)
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return not running

    async def _chat_worker(self, chat_rows: list[Claimed], deadline: float) -> None:
        """One chat's rows in order; stops at the first failure that must wait (the rest wait with it)."""
        gate = self._gates.get(chat_rows[0].channel)
        if gate is None:  # one per channel: Telegram's chats waiting for their slots at 30/s
            # must not take the places of WhatsApp's at 80/s
            gate = self._gates[chat_rows[0].channel] = asyncio.Semaphore(self.config.concurrency)
        try:
            async with gate:
                for i, row in enumerate(chat_rows):
                    # What can go now, goes: a slot after the deadline is not taken (one round
                    # trip with a shared budget: peek and take in one step).
                    max_wait = max(0.0, deadline - self.monotonic())
                    wait = await self.limiter.reserve(row.channel, row.chat_id, max_wait)
                    if wait > max_wait:
                        self._held[(row.channel, row.chat_id)] = self.monotonic() + wait
                        self._release.extend(r.id for r in chat_rows[i:])
                        return
                    if wait > 0:
                        await self.sleep(wait)
                    result = await self._send_one(row)
                    if result.error is not None and not result.error.permanent:
                        # Order: the chat's next rows wait with this one (see bot.outbox.store.hand_back).
                        result.untried = [r.id for r in chat_rows[i + 1:]]
                        self._done.append(result)
                        return
                    self._done.append(result)
                    if len(self._done) >= self.config.flush_every:
                        await self._flush(None)
        except Exception:  # never lose a chat's rows to a bug here: they stay claimed (recovered)
            log.exception("outbox: sending to chat %s failed", chat_rows[0].chat_id)

    async def _flush(self, stats: TickStats | None) -> None:
        """Record the outcomes gathered so far and hand back unattempted rows.

        Counts go to ``stats`` (a tick's), or, from a busy chat task between ticks, to a
        background tally the next tick takes over; a count is added only after its write.
        """
        if stats is not None:
            self._merge(stats, self._background)
            self._background = TickStats()
        done, self._done = self._done, []
        release, self._release = self._release, []
        delta = TickStats()
        if done:
            await asyncio.to_thread(self.record, done, delta)
        if release:
            await asyncio.to_thread(self.release, release)
            delta.released += len(release)
        self._merge(stats if stats is not None else self._background, delta)

    async def _send_one(self, row: Claimed) -> _Result:
        result = await self._attempt(row)
        if self.metrics is not None:
            self.metrics.send(row.channel, "outbox", result.error)
        return result

    async def _attempt(self, row: Claimed) -> _Result:
        sender = self.senders[row.channel]
        try:
            provider_id = await send_within(sender, row.chat_id, row.payload, self.config.send_timeout)
        except SendError as exc:
            if exc.retry_after is not None:
                await self.limiter.penalise(row.channel, row.chat_id, exc.retry_after)
            return _Result(row, error=exc)
        except Exception as exc:  # an unclassified error: treat it like a network error
            log.exception("outbox %s: sender raised", row.id)
            return _Result(row, error=SendError(f"{type(exc).__name__}: {exc}", code=type(exc).__name__))
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
                hand_back(db, row, r.error, r.untried)
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

    def release(self, ids: list[int]) -> None:
        """Give back rows claimed but never attempted: safe to send, and they keep their place
        (``due_at`` unchanged); this process skips their chat until its next send slot."""
        with self.factory() as db, db.begin():
            db.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids), OutboxMessage.status == "claimed")
                .values(status="pending", claimed_at=None)
            )

    # ------------------------------------------------------------------ crash recovery

    async def _report_stuck(self, stats: TickStats) -> None:
        """Rows claimed longer than ``claim_timeout`` (their process died): settle them by policy."""
        now = self.clock()
        if self._stuck_at is not None and now - self._stuck_at < self.config.stuck_report_every:
            return
        self._stuck_at = now
        resent, unknown = await asyncio.to_thread(
            recover_stale, self.factory, now, self.config.claim_timeout, self.config.resend_unknown,
            self.postgres, list(self.senders))
        stats.recovered += len(resent) + len(unknown)
        stats.unknown += len(unknown)
        if resent:
            log.warning(
                "outbox: %d message(s) were claimed more than %s ago and never confirmed (a crash?); "
                "resending them, they may arrive twice. ids: %s", len(resent), self.config.claim_timeout,
                ", ".join(str(i) for i in resent[:20]))
        if unknown:
            log.warning(
                "outbox: %d message(s) were claimed more than %s ago and never confirmed (a crash?); "
                "marked unknown, not resent. See `python bot.py outbox report`. ids: %s", len(unknown),
                self.config.claim_timeout, ", ".join(str(i) for i in unknown[:20]))
