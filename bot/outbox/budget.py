"""The send budget shared by several processes: the same GCRA as bot/outbox/ratelimit.py, kept
in PostgreSQL or Redis instead of one process's memory (setting SEND_BUDGET).

Telegram counts its limits per bot token and WhatsApp per phone number, not per process: two
processes with a budget each would send twice what the platform allows. Here every process
takes its slots from one place, in one atomic step per message (PostgreSQL: the function
``send_budget_reserve`` of migration 0009, under an advisory lock per channel; Redis: a Lua
script run with EVALSHA). The clock is the shared server's (``clock_timestamp()``, ``TIME``),
so processes on machines whose clocks differ still agree; the wait handed back is relative
and slept on the local monotonic clock. A 429's "retry after" pauses every process.

Keys name the channel, the bot (the token's numeric id) or phone number, and a hash of the
chat, so no chat id is stored and two bots sharing a server keep separate budgets.

If the shared server cannot be reached the process falls back to its own budget (logged,
at most once a minute) rather than stop sending: a short overshoot is better than silence,
and the platform's 429 answers are still honoured.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
import zlib
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, text

from bot.outbox.ratelimit import ChannelLimits, Limit, Monotonic, RateLimiter, SendBudget

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger(__name__)
PRUNE_EVERY = 1000  # reservations between two prunes of the PostgreSQL table
WARN_EVERY = 60.0  # seconds between two warnings that the shared budget is unreachable


def chat_key(chat_id: str) -> str:
    """A chat's part of a key: a short hash, so the budget store holds no chat id."""
    return hashlib.blake2b(chat_id.encode(), digest_size=8).hexdigest() if chat_id else ""


def budget_scopes(settings: Settings) -> dict[str, str]:
    """Whose budget each channel spends: the bot's numeric id, the WhatsApp phone number id."""
    token = settings.telegram_bot_token or ""
    return {"telegram": token.partition(":")[0] or "-",
            "whatsapp": settings.whatsapp_phone_number_id or "-"}


class SharedBudget:
    """Common part of the shared budgets: keys, the fallback, the :class:`SendBudget` methods.

    Subclasses implement ``_reserve(keys, max_wait)`` and ``_penalise(keys, seconds)`` as one
    atomic step on the shared server, where ``keys`` are (name, limit) pairs.
    """

    def __init__(self, limits: dict[str, ChannelLimits], scopes: dict[str, str] | None = None,
                 prefix: str = "", monotonic: Monotonic = time.monotonic) -> None:
        self.limits = limits
        self.monotonic = monotonic
        self.scopes = dict(scopes or {})
        self.prefix = prefix
        self.local = RateLimiter(limits, monotonic)  # when the shared server is unreachable
        self._warned_at = -math.inf

    def total_rate(self, channel: str) -> float | None:
        return self.local.total_rate(channel)

    def keys(self, channel: str, chat_id: str) -> list[tuple[str, Limit]]:
        scope = self.scopes.get(channel, "-")
        return [(f"{self.prefix}{ch}:{scope}:{chat_key(chat)}", limit)
                for (ch, chat), limit in self.local.keys(channel, chat_id)]

    async def peek(self, channel: str, chat_id: str) -> float:
        """Seconds until this chat could send, without taking the slot."""
        return await self.reserve(channel, chat_id, max_wait=-1.0)

    async def reserve(self, channel: str, chat_id: str, max_wait: float = math.inf) -> float:
        """Take the next slot for this chat unless it is more than ``max_wait`` s away; the wait."""
        keys = self.keys(channel, chat_id)
        if not keys:
            return 0.0
        try:
            wait = await self._reserve(keys, max_wait)
        except Exception as exc:
            self._unreachable(exc)
            return self.local.reserve_now(channel, chat_id, max_wait)
        return max(0.0, wait)

    async def penalise(self, channel: str, chat_id: str, seconds: float) -> None:
        """The platform said "retry after": every process pauses this chat and the channel."""
        self.local.penalise_now(channel, chat_id, seconds)  # in case the server goes away
        keys = self.keys(channel, chat_id)
        if not keys:
            return
        try:
            await self._penalise(keys, max(0.0, seconds))
        except Exception as exc:
            self._unreachable(exc)

    def _unreachable(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            log.warning("shared send budget (%s) unreachable (%s: %s); this process paces itself "
                        "alone until it is back", type(self).__name__, type(exc).__name__, exc)

    async def _reserve(self, keys: list[tuple[str, Limit]], max_wait: float) -> float:
        raise NotImplementedError

    async def _penalise(self, keys: list[tuple[str, Limit]], seconds: float) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release connections (the process is stopping)."""


def _lock_id(key: str) -> int:
    """The advisory lock of a channel's reservations: its total key, as a positive int4."""
    return zlib.crc32(key.encode()) & 0x7FFFFFFF


class PostgresBudget(SharedBudget):
    """The budget in the ``send_budget`` table; one call of ``send_budget_reserve`` per message.

    The engine is synchronous (the application's own), so each step runs in a worker thread.
    """

    def __init__(self, engine: Engine, limits: dict[str, ChannelLimits],
                 scopes: dict[str, str] | None = None, prefix: str = "",
                 monotonic: Monotonic = time.monotonic) -> None:
        super().__init__(limits, scopes, prefix, monotonic)
        if engine.dialect.name != "postgresql":
            raise ValueError("PostgresBudget needs a PostgreSQL engine")
        self.engine = engine
        self._count = 0

    def _reserve_sync(self, keys: list[tuple[str, Limit]], max_wait: float) -> float:
        names = [k for k, _ in keys]
        with self.engine.begin() as conn:
            wait = conn.scalar(
                text("SELECT send_budget_reserve(:lock, :keys, :intervals, :tolerances, :max_wait)"),
                {"lock": _lock_id(names[0].rsplit(":", 1)[0]), "keys": names,
                 "intervals": [lim.interval for _, lim in keys],
                 "tolerances": [lim.tolerance for _, lim in keys],
                 "max_wait": max_wait if math.isfinite(max_wait) else 1e12},
            )
            self._count += 1
            if self._count % PRUNE_EVERY == 0:
                self._prune(conn)
        return float(wait)

    @staticmethod
    def _prune(conn: Any) -> None:
        """Keys whose time has passed mean the same as none: the table stays as small as the
        chats written to in the last minute."""
        conn.execute(text("DELETE FROM send_budget WHERE tat < extract(epoch FROM clock_timestamp()) - 60"))

    async def _reserve(self, keys: list[tuple[str, Limit]], max_wait: float) -> float:
        return await asyncio.to_thread(self._reserve_sync, keys, max_wait)

    def _penalise_sync(self, keys: list[tuple[str, Limit]], seconds: float) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text("""
                    INSERT INTO send_budget (key, tat)
                    SELECT k, extract(epoch FROM clock_timestamp()) + :seconds + t
                    FROM unnest(CAST(:keys AS text[]), CAST(:tolerances AS double precision[])) AS u(k, t)
                    ORDER BY k
                    ON CONFLICT (key) DO UPDATE SET tat = greatest(send_budget.tat, excluded.tat)
                """),
                {"keys": [k for k, _ in keys], "tolerances": [lim.tolerance for _, lim in keys],
                 "seconds": seconds},
            )

    async def _penalise(self, keys: list[tuple[str, Limit]], seconds: float) -> None:
        await asyncio.to_thread(self._penalise_sync, keys, seconds)


# KEYS: the limited keys; ARGV: max_wait, then interval and tolerance per key. Returns the
# wait as a string (a Lua number would come back as an integer). Keys expire once their
# time has passed, so Redis prunes itself.
RESERVE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local max_wait = tonumber(ARGV[1])
local at = now
local tats = {}
for i = 1, #KEYS do
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  tats[i] = tat
  at = math.max(at, tat - tonumber(ARGV[2 * i + 1]))
end
if at - now > max_wait then
  return string.format('%.6f', at - now)
end
for i = 1, #KEYS do
  local new = math.max(tats[i], at) + tonumber(ARGV[2 * i])
  redis.call('SET', KEYS[i], string.format('%.6f', new), 'PX', math.ceil((new - now) * 1000) + 1000)
end
return string.format('%.6f', at - now)
"""

# KEYS: the limited keys; ARGV: seconds, then the tolerance per key.
PENALISE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
for i = 1, #KEYS do
  local until_ = now + tonumber(ARGV[1]) + tonumber(ARGV[i + 1])
  local tat = tonumber(redis.call('GET', KEYS[i]) or 0)
  if until_ > tat then
    redis.call('SET', KEYS[i], string.format('%.6f', until_), 'PX', math.ceil((until_ - now) * 1000) + 1000)
  end
end
return 1
"""


class RedisBudget(SharedBudget):
    """The budget in Redis: one EVALSHA per message, keys that expire by themselves."""

    def __init__(self, url: str, limits: dict[str, ChannelLimits],
                 scopes: dict[str, str] | None = None, prefix: str = "prima:budget:",
                 monotonic: Monotonic = time.monotonic, timeout: float = 2.0) -> None:
        super().__init__(limits, scopes, prefix, monotonic)
        import redis.asyncio as aioredis

        self.redis = aioredis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._reserve_script = self.redis.register_script(RESERVE_LUA)
        self._penalise_script = self.redis.register_script(PENALISE_LUA)

    async def _reserve(self, keys: list[tuple[str, Limit]], max_wait: float) -> float:
        args: list[Any] = [repr(max_wait) if math.isfinite(max_wait) else "1e12"]
        for _, lim in keys:
            args += [repr(lim.interval), repr(lim.tolerance)]
        wait = await self._reserve_script(keys=[k for k, _ in keys], args=args)
        return float(wait)

    async def _penalise(self, keys: list[tuple[str, Limit]], seconds: float) -> None:
        args: list[Any] = [repr(seconds)] + [repr(lim.tolerance) for _, lim in keys]
        await self._penalise_script(keys=[k for k, _ in keys], args=args)

    async def aclose(self) -> None:
        await self.redis.aclose()


def build_budget(settings: Settings, limits: dict[str, ChannelLimits],
                 engine: Engine | None = None) -> SendBudget:
    """The budget SEND_BUDGET names: this process's own (local), or one shared by every process."""
    if settings.send_budget == "postgres":
        assert engine is not None, "SEND_BUDGET=postgres needs the application's engine"
        return PostgresBudget(engine, limits, budget_scopes(settings))
    if settings.send_budget == "redis":
        assert settings.redis_url, "REDIS_URL is checked by the settings"
        return RedisBudget(settings.redis_url, limits, budget_scopes(settings))
    return RateLimiter(limits)
