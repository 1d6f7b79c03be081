"""A small TTL cache for the open data: figures are recomputed every few minutes, not per request.

Keyed by the normalised query. Concurrent misses of one key share one computation, so fifty
clients asking at the same moment cost one set of statements. ``invalidate`` empties it; ``watch``
calls it after a commit that changed complaints, cases or the catalog through the ORM. Survey
answers are written by the runtime's raw statements (bot/storage/hotsql.py), which no ORM event
sees: those reach the files within the TTL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from bot.storage.models import Agency, Case, Complaint, Service, SurveyAnswer, SurveyResponse

DEFAULT_TTL = 300.0  # seconds
MAX_ENTRIES = 256
TRACKED = (Complaint, Case, SurveyResponse, SurveyAnswer, Service, Agency)
_CHANGED = "opendata_changed"


class TTLCache:
    def __init__(self, ttl: float = DEFAULT_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._pending: dict[Hashable, asyncio.Future[Any]] = {}
        self._generation = 0
        self.hits = 0
        self.misses = 0

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[Any]]) -> Any:
        entry = self._entries.get(key)
        if entry is not None and entry[0] > self.clock():
            self.hits += 1
            return entry[1]
        pending = self._pending.get(key)
        if pending is not None:
            self.hits += 1
            return await asyncio.shield(pending)
        self.misses += 1
        generation = self._generation
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            value = await compute()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        finally:
            self._pending.pop(key, None)
        if generation == self._generation:  # data changed meanwhile: serve it, do not keep it
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (self.clock() + self.ttl, value)
        future.set_result(value)
        return value

    def invalidate(self) -> None:
        """Forget everything (safe from any thread: one clear and one increment)."""
        self._generation += 1
        self._entries.clear()


def watch(factory: sessionmaker[Session], on_change: Callable[[], None]) -> None:
    """Call ``on_change`` after each commit that flushed a tracked row through the ORM."""

    def after_flush(session: Session, _ctx: Any) -> None:
        if any(isinstance(obj, TRACKED) for obj in (*session.new, *session.dirty, *session.deleted)):
            session.info[_CHANGED] = True

    def after_commit(session: Session) -> None:
        if session.info.pop(_CHANGED, False):
            on_change()

    def after_rollback(session: Session) -> None:
        session.info.pop(_CHANGED, None)

    event.listen(factory, "after_flush", after_flush)
    event.listen(factory, "after_commit", after_commit)
    event.listen(factory, "after_soft_rollback", lambda session, _prev: after_rollback(session))
