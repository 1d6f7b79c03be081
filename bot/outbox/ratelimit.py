"""Per-channel send rate limits (GCRA, the "virtual scheduling" form of a token bucket).

Each limit keeps one number per key: the theoretical arrival time (TAT) of the next message.
A send is allowed at ``max(now, tat - tolerance)``; reserving it moves the TAT on by one
interval. Several limits (channel total, one chat, one group) are combined by taking the
latest allowed time, so a message waits for the strictest of them. The clock and the sleep
are injected: tests run on virtual time and never wait for real.

Reservations are made before sending, in order, so concurrent workers share the budget
without a lock (the event loop is single-threaded).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

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


class RateLimiter:
    """Hands out send slots per (channel, chat). ``reserve`` returns how long to wait."""

    def __init__(self, limits: dict[str, ChannelLimits], monotonic: Monotonic = time.monotonic) -> None:
        self.limits = limits
        self.monotonic = monotonic
        self._tat: dict[tuple[str, str], float] = {}
        self._reserved = 0

    def _keys(self, channel: str, chat_id: str) -> list[tuple[tuple[str, str], Limit]]:
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

    def peek(self, channel: str, chat_id: str) -> float:
        """Seconds until this chat could send, without taking the slot."""
        now = self.monotonic()
        at = now
        for key, limit in self._keys(channel, chat_id):
            at = max(at, self._tat.get(key, now) - limit.tolerance)
        return at - now

    def total_rate(self, channel: str) -> float | None:
        """Messages per second the channel allows in total (None: unlimited)."""
        lim = self.limits.get(channel)
        return lim.total.rate if lim is not None and lim.total is not None else None

    def reserve(self, channel: str, chat_id: str) -> float:
        """Take the next slot for this chat; returns seconds to wait before sending (>= 0)."""
        now = self.monotonic()
        keys = self._keys(channel, chat_id)
        at = now
        for key, limit in keys:
            tat = self._tat.get(key, now)
            at = max(at, tat - limit.tolerance)
        for key, limit in keys:
            tat = self._tat.get(key, now)
            self._tat[key] = max(tat, at) + limit.interval
        self._reserved += 1
        if self._reserved % 10_000 == 0:
            self.prune()
        return at - now

    def penalise(self, channel: str, chat_id: str, seconds: float) -> None:
        """The platform said "retry after": nothing more to this chat, nor on this channel, until then.

        A 429 does not say which limit was hit, so the whole channel pauses too; with the
        limits set right this is rare, and pausing is cheaper than a ban.
        """
        until = self.monotonic() + max(0.0, seconds)
        for key, limit in self._keys(channel, chat_id):
            self._tat[key] = max(self._tat.get(key, 0.0), until + limit.tolerance)

    def prune(self) -> None:
        """Forget chats whose slots are in the past: memory stays bounded by active chats."""
        now = self.monotonic()
        self._tat = {k: v for k, v in self._tat.items() if v > now or k[1] == ""}

    def __len__(self) -> int:
        return len(self._tat)
