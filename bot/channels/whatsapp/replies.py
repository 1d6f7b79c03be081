"""Committed replies out to the Graph API, and the bookkeeping after, for many turns at once.

Each reply was committed by the turn before it is sent here (the runtime returns its rows
claimed). A failed send is recorded at once and the resident's later rows wait behind it. What
a successful send leaves to write (the row is sent, with Meta's message id), the residents who
wrote (their parked rows are due again) and the bodies processed (deleted) are gathered and
written in one transaction by :meth:`Replies.flush`: while one such transaction runs, the next
one collects everything that finished meanwhile (a group commit), so the commits per message
fall as the load rises.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.channels.common import Pacer
from bot.channels.whatsapp.sender import KnownContact, WhatsAppSender
from bot.channels.whatsapp.store import Settle, settle
from bot.outbox.store import SendError, record_failure, send_within
from bot.runtime.facade import Runtime
from bot.storage.models import OutboxMessage

if TYPE_CHECKING:
    from bot.channels.whatsapp.lanes import Lanes

log = logging.getLogger(__name__)


class Replies:
    """Send committed rows in order; record what was sent in shared transactions."""

    def __init__(self, runtime: Runtime, sender: WhatsAppSender, lanes: Lanes[Any], pacer: Pacer) -> None:
        self.runtime = runtime
        self.sender = sender
        self.lanes = lanes
        self.pacer = pacer
        self._pending = Settle()
        self._next: asyncio.Future[BaseException | None] | None = None
        self._flusher: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        """Something is waiting to be written or being written."""
        return bool(self._pending) or (self._flusher is not None and not self._flusher.done())

    def released(self, chat_id: str, replies: list[OutboxMessage]) -> None:
        """The resident wrote: their rows parked before this message's ``replies`` become due
        with the next flush (a later message of theirs moves the bound on)."""
        self._pending.released[chat_id] = min((r.id for r in replies), default=None)

    def processed(self, row_id: int) -> None:
        """A stored body is done: deleted with the next flush."""
        self._pending.done.append(row_id)

    async def send(self, rows: list[OutboxMessage],
                   known: tuple[str | None, datetime | None] | None = None) -> None:
        """Send rows in order; after a failure the rest wait behind it (recorded at once).

        A send whose outcome is unknown (timeout, dropped connection) follows
        ``OUTBOX_RESEND_UNKNOWN`` like any outbox send: the dispatcher resends it (counted as
        a possible duplicate), so the reply carrying a ticket number is not lost. Sent rows
        are recorded by the next :meth:`flush`.
        """
        sender = self.sender if known is None else KnownContact(self.sender, known)
        timeout = self.runtime.send_policy.send_timeout
        for i, row in enumerate(rows):
            await self.pacer.wait(row.chat_id)
            try:
                provider_id = await send_within(sender, row.chat_id, row.payload, timeout)
                self.pacer.record()
            except SendError as err:
                self.pacer.record(err)
                if err.retry_after is not None:
                    await self.pacer.penalise(row.chat_id, err.retry_after)
                await self.lanes.run(self._failed, row.id, err, [r.id for r in rows[i + 1:]])
                return
            # After the await: a flush may have taken the pending work meanwhile.
            self._pending.sent.append((row.id, provider_id))

    def _failed(self, row_id: int, err: SendError, untried: list[int]) -> None:
        policy = self.runtime.send_policy
        status = record_failure(self.runtime.factory, row_id, err, self.runtime.clock(),
                                max_attempts=policy.max_attempts, resend_unknown=policy.resend_unknown,
                                untried=untried)
        log.warning("outbox %s not sent (%s): %s", row_id, status, err.reason)

    def flush(self) -> asyncio.Future[BaseException | None]:
        """The transaction that will write what is pending now; its error, or None, once done."""
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop())
        return self._next

    async def _flush_loop(self) -> None:
        while self._next is not None:
            done, self._next = self._next, None
            work, self._pending = self._pending, Settle()
            error: BaseException | None = None
            if work:
                try:  # urgent: it completes work that is otherwise finished
                    await self.lanes.run(self._settle, work, urgent=True)
                except Exception as exc:  # rows stay claimed (resent by policy), bodies are retried
                    log.exception("recording %d sent WhatsApp replies and %d processed bodies failed",
                                  len(work.sent), len(work.done))
                    error = exc
            done.set_result(error)

    def _settle(self, work: Settle) -> None:
        settle(self.runtime, work, self.runtime.clock())
        self.runtime.settle_erasures(r for r, _ in work.sent)  # erasure confirmations: deleted once sent

    async def deliver(self, rows: list[OutboxMessage]) -> None:
        """Send rows and wait until they are recorded (the web desk's answers to a resident)."""
        await self.send(rows)
        error = await self.flush()
        if error is not None:
            raise error
