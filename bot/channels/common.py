"""What every channel adapter needs around the runtime: per-resident order and send pacing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bot.outbox.ratelimit import SendBudget

if TYPE_CHECKING:
    from bot.metrics import Metrics
    from bot.outbox.store import SendError


def encode_choice(q: int | None, choice_id: str) -> str:
    """A button's id: ``"<question number>:<choice id>"`` (the engine refuses stale questions).

    Each channel checks the result against its own size limit.
    """
    return f"{q or 0}:{choice_id}"


def decode_choice(data: str) -> tuple[int, str] | None:
    """``"12:agree"`` -> (12, "agree"); anything malformed -> None (never raises)."""
    head, sep, choice = data.partition(":")
    if not sep or not head.isdigit() or not choice or not choice.isprintable():
        return None
    return int(head), choice


def choice_label(choice: dict[str, Any]) -> str:
    """A choice as the resident sees it: ``"4. Sangat sesuai"`` when it has a key to type.

    The engine accepts a typed number only for a key shown here, so every channel prints it.
    """
    label = str(choice.get("label") or "")
    key = choice.get("key")
    return f"{key}. {label}" if key else label




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
    """Immediate replies take their send slot from the send budget (this process's, or shared).

    The outbox dispatcher uses the same limiter for follow-ups and retries, so replies and
    scheduled messages together stay within the platform's limits instead of each using the
    whole budget. Without a limiter (tests, benchmarks) nothing waits. Each attempt's outcome
    is counted (:meth:`record`) like the dispatcher's, as path ``reply``.
    """

    def __init__(self, channel: str, limiter: SendBudget | None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 metrics: Metrics | None = None) -> None:
        self.channel = channel
        self.limiter = limiter
        self.sleep = sleep
        self.metrics = metrics

    def record(self, error: SendError | None = None) -> None:
        """One immediate send attempt: went out (``error`` None) or failed as classified."""
        if self.metrics is not None:
            self.metrics.send(self.channel, "reply", error)

    async def wait(self, chat_id: str) -> None:
        if self.limiter is None:
            return
        delay = await self.limiter.reserve(self.channel, chat_id)
        if delay > 0:
            await self.sleep(delay)

    async def penalise(self, chat_id: str, seconds: float) -> None:
        """The platform said 429: nobody on this channel sends before ``retry_after``."""
        if self.limiter is not None:
            await self.limiter.penalise(self.channel, chat_id, seconds)
