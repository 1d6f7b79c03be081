"""The database side of Telegram turns: batched into executor jobs, their sends group-committed.

The runtime is synchronous, so it runs in the channel's executor: one thread on SQLite (one
writer), a small pool on PostgreSQL. Under load one executor job runs the turns of many
residents (:class:`TurnBatcher`) and one transaction records the sent rows of many turns
(:class:`GroupCommit`).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from bot.channels.telegram.render import CHANNEL
from bot.runtime.facade import Runtime
from bot.runtime.types import Inbound
from bot.storage import roundtrips
from bot.storage.models import Contact, OutboxMessage

if TYPE_CHECKING:
    from bot.channels.telegram.channel import TelegramChannel

# Set by the poller for the task that handles one update: resolved once that update's turn is
# committed, so the poller may confirm it to Telegram while the replies are still being sent.
STORED: contextvars.ContextVar[asyncio.Future[None] | None] = contextvars.ContextVar(
    "prima_telegram_stored", default=None)


def mark_sent_many(runtime: Runtime, sent: list[tuple[int, str | None]], now: datetime) -> None:
    """:func:`bot.outbox.store.mark_sent` as one executemany on the driver: many turns' rows in one
    Core transaction (see bot/storage/hotsql.py for why not through SQLAlchemy's execute)."""
    if not sent:
        return
    with roundtrips.short_transaction(runtime.engine) as conn:  # one round trip on PostgreSQL
        runtime.raw.mark_sent.many(conn.connection.cursor(),
                                   [{"row_id": r, "provider_id": p, "now": now} for r, p in sent])
    runtime.settle_erasures(r for r, _ in sent)  # erasure confirmations: deleted once sent


class GroupCommit:
    """Records sent rows for many concurrent turns in one transaction (group commit).

    Each caller waits until its own rows are committed, so a turn is finished only when its
    bookkeeping is stored; under load one transaction serves every turn that arrived
    meanwhile, which halves the database work per update.
    """

    def __init__(self, write: Callable[[list[tuple[int, str | None]]], Awaitable[None]]) -> None:
        self.write = write
        self._batch: list[tuple[int, str | None]] = []
        self._done: asyncio.Future[None] | None = None
        self._running = False

    async def record(self, rows: list[tuple[int, str | None]]) -> None:
        if not rows:
            return
        if self._done is None:
            self._done = asyncio.get_running_loop().create_future()
        done = self._done
        self._batch.extend(rows)
        if not self._running:
            self._running = True
            asyncio.get_running_loop().create_task(self._flush())
        await done

    async def _flush(self) -> None:
        try:
            while self._batch:
                batch, done = self._batch, self._done
                self._batch, self._done = [], None
                assert done is not None
                try:
                    await self.write(batch)
                except Exception as exc:  # each waiting turn sees the failure
                    done.set_exception(exc)
                else:
                    done.set_result(None)
        finally:
            self._running = False


class TurnBatcher:
    """Runs the turns that arrived meanwhile in one executor job, each in its own transaction.

    A hop to the database thread and back (futures, a thread wake-up, the loop's self-pipe)
    cost about as much as a short turn; under load one hop now serves every waiting turn.
    Each resident still has one turn in flight at a time (the channel's per-resident lock),
    and a turn's failure reaches only its own caller. Up to ``threads`` jobs run at once, each
    taking its share of the waiting turns, so PostgreSQL keeps its parallel connections busy.
    """

    def __init__(self, channel: TelegramChannel, threads: int) -> None:
        self.channel = channel
        self.threads = threads
        self._queue: list[tuple[Inbound, asyncio.Future[list[OutboxMessage]]]] = []
        self._jobs = 0
        self._running: set[asyncio.Task[None]] = set()

    async def run(self, inbound: Inbound) -> list[OutboxMessage]:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list[OutboxMessage]] = loop.create_future()
        self._queue.append((inbound, done))
        if self._jobs < self.threads:
            self._jobs += 1
            job = loop.create_task(self._drain())
            self._running.add(job)
            job.add_done_callback(self._running.discard)
        rows = await done
        stored = STORED.get()
        if stored is not None and not stored.done():
            stored.set_result(None)  # committed (or a duplicate): the poller may confirm it
        return rows

    async def _drain(self) -> None:
        try:
            while self._queue:
                # A fair share, not the whole queue: on PostgreSQL a turn mostly waits for the
                # server, and one job running every waiting turn in a row left the other
                # threads idle (SQLite has one thread: it takes all).
                share = -(-len(self._queue) // self.threads)
                batch, self._queue = self._queue[:share], self._queue[share:]
                try:
                    outcomes = await self.channel._db(self._handle_all, [i for i, _ in batch])
                except Exception as exc:  # the hop itself failed (shut down): tell each caller
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                for (_, done), (rows, error) in zip(batch, outcomes, strict=True):
                    if done.done():  # the caller was cancelled meanwhile
                        continue
                    if error is not None:
                        done.set_exception(error)
                    else:
                        done.set_result(rows)
        finally:
            self._jobs -= 1

    def _handle_all(self, inbounds: list[Inbound],
                    ) -> list[tuple[list[OutboxMessage], Exception | None]]:
        handle = self.channel.runtime.handle
        outcomes: list[tuple[list[OutboxMessage], Exception | None]] = []
        for inbound in inbounds:
            try:
                outcomes.append((handle(inbound), None))
            except Exception as exc:  # this turn rolled back; the others stand
                outcomes.append(([], exc))
        return outcomes


def release(factory: sessionmaker[Session], ids: list[int]) -> None:
    """Hand rows this process will not send back to the outbox dispatcher, untouched."""
    if not ids:
        return
    with factory() as db, db.begin():
        db.execute(update(OutboxMessage)
                   .where(OutboxMessage.id.in_(ids), OutboxMessage.status == "claimed")
                   .values(status="pending", claimed_at=None))


def set_reachable(factory: sessionmaker[Session], user_id: str, when: datetime | None) -> None:
    with factory() as db, db.begin():
        db.execute(update(Contact)
                   .where(Contact.channel == CHANNEL, Contact.external_id == user_id)
                   .values(unreachable_at=when))

