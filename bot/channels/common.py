"""What every channel adapter needs around the runtime: per-resident order and send pacing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from bot.ratelimit import RateLimiter


class KeyedLocks:
    """One asyncio lock per key (a resident), kept only while someone holds or awaits it.

    Updates from one resident run in order; different residents run side by side.
    """

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    async def run(self, key: str, work: Callable[[], Awaitable[None]]) -> None:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                await work()
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class Pacer:
    """Immediate replies take their send slot from the process's rate limiter.

    The outbox dispatcher uses the same limiter for follow-ups and retries, so replies and
    scheduled messages together stay within the platform's limits instead of each using the
    whole budget. Without a limiter (tests, benchmarks) nothing waits.
    """

    def __init__(self, channel: str, limiter: RateLimiter | None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.channel = channel
        self.limiter = limiter
        self.sleep = sleep

    async def wait(self, chat_id: str) -> None:
        if self.limiter is None:
            return
        delay = self.limiter.reserve(self.channel, chat_id)
        if delay > 0:
            await self.sleep(delay)

    def penalise(self, chat_id: str, seconds: float) -> None:
        """The platform said 429: nobody on this channel sends before ``retry_after``."""
        if self.limiter is not None:
            self.limiter.penalise(self.channel, chat_id, seconds)
