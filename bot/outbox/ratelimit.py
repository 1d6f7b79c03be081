"""Per-channel send rate limits (GCRA, the "virtual scheduling" form of a token bucket).

Each limit keeps one number per key: the theoretical arrival time (TAT) of the next message.
A send is allowed at ``max(now, tat - tolerance)``; reserving it moves the TAT on by one
interval. Several limits (channel total, one chat, one group) are combined by taking the
latest allowed time, so a message waits for the strictest of them. The clock and the sleep
are injected: tests run on virtual time and never wait for real.

Reservations are made before sending, in order, so concurrent workers share the budget
without a lock (the event loop is single-threaded).

:class:`RateLimiter` is the budget of one process. Several processes share one budget through
bot/outbox/budget.py (PostgreSQL or Redis, setting SEND_BUDGET), which keeps the same GCRA on
the shared server's clock. Both answer the :class:`SendBudget` interface, async because the
shared one is a round trip; the local one never awaits anything, so it costs what it did.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

Monotonic = Callable[[], float]


@dataclass(frozen=True)
class Limit:
    """``rate`` messages per second, with ``burst`` messages allowed back to back."""

    rate: float
    burst: int = 1

    @property
    def interval(self) -> float:
        return 1.0 / self.rate

    @property
    def tolerance(self) -> float:
        return (max(1, self.burst) - 1) * self.interval


@dataclass(frozen=True)
class ChannelLimits:
    """Limits of one channel. ``group`` applies instead of ``chat`` to group chats."""

    total: Limit | None = None
    chat: Limit | None = None
    group: Limit | None = None
    is_group: Callable[[str], bool] = field(default=lambda chat_id: False)


def telegram_is_group(chat_id: str) -> bool:
    """Telegram group and channel ids are negative; private chats are positive user ids."""
    return chat_id.startswith("-")


def telegram_limits(
    total: float = 30.0, chat: float = 1.0, chat_burst: int = 3, group_per_minute: float = 20.0
) -> ChannelLimits:
    """Bot API defaults: ~30 msg/s overall, ~1/s per private chat (short bursts), 20/min per group.

    The overall limit has no burst on purpose: a burst after an idle spell on top of the
    steady rate would exceed what the platform counts in any one-second window.
    """
    return ChannelLimits(
        total=Limit(total, 1) if total > 0 else None,
        chat=Limit(chat, chat_burst) if chat > 0 else None,
        group=Limit(group_per_minute / 60.0, 1) if group_per_minute > 0 else None,
        is_group=telegram_is_group,
    )


def whatsapp_limits(total: float = 80.0) -> ChannelLimits:
    """Cloud API default throughput: 80 messages per second per phone number."""
    return ChannelLimits(total=Limit(total, 1) if total > 0 else None)


class SendBudget(Protocol):
    """What senders need of a budget: slots per (channel, chat), and a pause after a 429."""

    limits: dict[str, ChannelLimits]
    monotonic: Monotonic  # the clock the waits are measured against (for deadlines)

    def total_rate(self, channel: str) -> float | None: ...

    async def peek(self, channel: str, chat_id: str) -> float: ...

    async def reserve(self, channel: str, chat_id: str, max_wait: float = math.inf) -> float: ...

    async def penalise(self, channel: str, chat_id: str, seconds: float) -> None: ...


class RateLimiter:
    """Hands out send slots per (channel, chat) in this process. ``reserve`` returns how long to wait.

    The async methods only wrap the synchronous ones (``*_now``), which tests on virtual
    time may call directly.
    """

    def __init__(self, limits: dict[str, ChannelLimits], monotonic: Monotonic = time.monotonic) -> None:
        self.limits = limits
        self.monotonic = monotonic
        self._tat: dict[tuple[str, str], float] = {}
        self._reserved = 0

    def keys(self, channel: str, chat_id: str) -> list[tuple[tuple[str, str], Limit]]:
        """The limits one send to this chat counts against: (channel, "") total, (channel, chat)."""
        lim = self.limits.get(channel)
        if lim is None:
            return []
        keys: list[tuple[tuple[str, str], Limit]] = []
        if lim.total is not None:
            keys.append(((channel, ""), lim.total))
        per_chat = lim.group if lim.is_group(chat_id) else lim.chat
        if per_chat is not None:
            keys.append(((channel, chat_id), per_chat))
        return keys

    async def peek(self, channel: str, chat_id: str) -> float:
        """Seconds until this chat could send, without taking the slot."""
        return self.peek_now(channel, chat_id)

    async def reserve(self, channel: str, chat_id: str, max_wait: float = math.inf) -> float:
        """Take the next slot for this chat; returns seconds to wait before sending (>= 0).

        A slot more than ``max_wait`` seconds away is not taken: the wait returned is then
        larger than ``max_wait`` (the caller sends later, and nobody's budget was spent).
        """
        return self.reserve_now(channel, chat_id, max_wait)

    async def penalise(self, channel: str, chat_id: str, seconds: float) -> None:
        """The platform said "retry after" (see :meth:`penalise_now`)."""
        self.penalise_now(channel, chat_id, seconds)

    def peek_now(self, channel: str, chat_id: str) -> float:
        """Seconds until this chat could send, without taking the slot."""
        now = self.monotonic()
        at = now
        for key, limit in self.keys(channel, chat_id):
            at = max(at, self._tat.get(key, now) - limit.tolerance)
        return at - now

    def total_rate(self, channel: str) -> float | None:
        """Messages per second the channel allows in total (None: unlimited)."""
        lim = self.limits.get(channel)
        return lim.total.rate if lim is not None and lim.total is not None else None

    def reserve_now(self, channel: str, chat_id: str, max_wait: float = math.inf) -> float:
        """Take the next slot for this chat unless it is more than ``max_wait`` s away; the wait."""
        now = self.monotonic()
        keys = self.keys(channel, chat_id)
        at = now
        for key, limit in keys:
            tat = self._tat.get(key, now)
            at = max(at, tat - limit.tolerance)
        if at - now > max_wait:
            return at - now
        for key, limit in keys:
            tat = self._tat.get(key, now)
            self._tat[key] = max(tat, at) + limit.interval
        self._reserved += 1
        if self._reserved % 10_000 == 0:
            self.prune()
        return at - now

    def penalise_now(self, channel: str, chat_id: str, seconds: float) -> None:
        """The platform said "retry after": nothing more to this chat, nor on this channel, until then.

        A 429 does not say which limit was hit, so the whole channel pauses too; with the
        limits set right this is rare, and pausing is cheaper than a ban.
        """
        until = self.monotonic() + max(0.0, seconds)
        for key, limit in self.keys(channel, chat_id):
            self._tat[key] = max(self._tat.get(key, 0.0), until + limit.tolerance)

    def prune(self) -> None:
        """Forget chats whose slots are in the past: memory stays bounded by active chats."""
        now = self.monotonic()
        self._tat = {k: v for k, v in self._tat.items() if v > now or k[1] == ""}

    def __len__(self) -> int:
        return len(self._tat)
