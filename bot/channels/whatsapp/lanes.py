"""The WhatsApp channel's database threads: bodies to store go first, and together.

Why not a thread pool: the 200 to Meta waits only for the stored body (store before
acknowledging), so storing must never queue behind message processing; and bodies that
arrive while one insert runs are stored in the next insert, one commit for all of them (a
commit costs more than the rows). On SQLite one thread does everything, stored bodies first:
a second writing thread would only wait for the file's lock (SQLite's busy handler sleeps
for milliseconds at a time). On PostgreSQL one thread stores and ``workers`` threads process
messages side by side (a turn there mostly waits for the server).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Item = TypeVar("Item")


def _settle(fut: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if fut.cancelled():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)


def _call(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for the answer
        loop.call_soon_threadsafe(fn, *args)


def _settle_all(futures: list[asyncio.Future[Any]], results: list[Any],
                error: BaseException | None) -> None:
    for fut, result in zip(futures, results, strict=True):
        _settle(fut, result, error)


class Lanes(Generic[Item]):
    """Threads for the channel's database work, with batched storing ahead of everything.

    ``store_batch(items)`` stores a list in one transaction and returns one id per item, in
    order; :meth:`store` awaits its item's id. :meth:`run` runs any other call; ``urgent``
    calls go before the queued ones (bookkeeping that completes other work).
    """

    def __init__(self, store_batch: Callable[[list[Item]], list[int]], workers: int,
                 shared: bool, name: str = "prima-wa") -> None:
        self._store_batch = store_batch
        self._cond = threading.Condition()
        self._intake: list[tuple[Item, asyncio.Future[int]]] = []
        self._jobs: deque[tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]]] = deque()
        self._closed = False
        self._threads: list[threading.Thread] = []
        if shared:  # SQLite: one thread, storing first
            self._start(f"{name}-db", intake=True, jobs=True)
        else:
            self._start(f"{name}-in", intake=True, jobs=False)
            for i in range(max(1, workers)):
                self._start(f"{name}-{i}", intake=False, jobs=True)

    def _start(self, name: str, *, intake: bool, jobs: bool) -> None:
        thread = threading.Thread(target=self._work, args=(intake, jobs), name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    @property
    def threads(self) -> int:
        return len(self._threads)

    async def store(self, item: Item) -> int:
        """Store ``item`` (with whatever else is waiting, in arrival order); its id once committed."""
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the channel is closed")
            self._intake.append((item, fut))
            self._cond.notify_all()
        return await fut

    async def run(self, fn: Callable[..., T], *args: Any, urgent: bool = False) -> T:
        """``fn(*args)`` on a database thread."""
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the channel is closed")
            if urgent:
                self._jobs.appendleft((fn, args, fut))
            else:
                self._jobs.append((fn, args, fut))
            self._cond.notify_all()
        return await fut

    def close(self) -> None:
        """Finish what is queued, then stop the threads."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()

    def _work(self, intake: bool, jobs: bool) -> None:
        while True:
            with self._cond:
                while not (intake and self._intake) and not (jobs and self._jobs) and not self._closed:
                    self._cond.wait()
                batch: list[tuple[Item, asyncio.Future[int]]] = []
                job = None
                if intake and self._intake:
                    batch, self._intake = self._intake, []
                elif jobs and self._jobs:
                    job = self._jobs.popleft()
                else:
                    return  # closed, nothing left for this thread
            if batch:
                self._store(batch)
            elif job is not None:
                fn, args, fut = job
                try:
                    result, error = fn(*args), None
                except BaseException as exc:  # handed to the awaiting coroutine
                    result, error = None, exc
                _call(fut.get_loop(), _settle, fut, result, error)

    def _store(self, batch: list[tuple[Item, asyncio.Future[int]]]) -> None:
        try:
            ids, error = self._store_batch([item for item, _ in batch]), None
        except BaseException as exc:
            ids, error = None, exc
        by_loop: dict[asyncio.AbstractEventLoop, tuple[list[asyncio.Future[Any]], list[Any]]] = {}
        for i, (_, fut) in enumerate(batch):
            futures, results = by_loop.setdefault(fut.get_loop(), ([], []))
            futures.append(fut)
            results.append(None if ids is None else ids[i])
        for loop, (futures, results) in by_loop.items():  # one wake-up of the loop for the batch
            _call(loop, _settle_all, futures, results, error)
