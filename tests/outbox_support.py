"""Helpers for the outbox tests: a recording sender, virtual time for the rate limiter, bulk rows."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from bot.outbox.dispatcher import DispatchConfig, Dispatcher
from bot.outbox.ratelimit import ChannelLimits, RateLimiter
from bot.outbox.store import SendError
from bot.storage.models import OutboxMessage
from tests.conftest import FakeClock


class VirtualTime:
    """Monotonic time for the rate limiter that jumps to each wake-up instead of sleeping.

    Sleepers wake in order of their wake-up time; the clock moves to a sleeper's time only
    when it is the earliest one left, so concurrent workers see a consistent timeline.
    """

    def __init__(self) -> None:
        self.t = 1000.0
        self._waiting: list[float] = []

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        target = self.t + max(0.0, seconds)
        self._waiting.append(target)
        try:
            await asyncio.sleep(0)
            while target > min(self._waiting):
                await asyncio.sleep(0)
            self.t = max(self.t, target)
        finally:
            self._waiting.remove(target)


@dataclass
class RecordingSender:
    """An in-memory channel: remembers every message "delivered", can fail on demand.

    ``script`` maps a message marker (the payload's ``"m"``) to errors raised on its first
    attempts, in order.
    """

    channel: str = "telegram"
    clock: FakeClock | None = None
    delivered: list[tuple[str, str, datetime | None]] = field(default_factory=list)
    script: dict[str, list[SendError | BaseException]] = field(default_factory=dict)
    crash_after: int | None = None

    async def send(self, chat_id: str, payload: dict[str, Any]) -> str | None:
        marker = str(payload.get("m") or payload.get("text"))
        errors = self.script.get(marker)
        if errors:
            err = errors.pop(0)
            if isinstance(err, SendError) and err.unknown:
                self.delivered.append((chat_id, marker, self.clock() if self.clock else None))
            raise err
        if self.crash_after is not None and len(self.delivered) >= self.crash_after:
            raise Crash("the process died")
        self.delivered.append((chat_id, marker, self.clock() if self.clock else None))
        await asyncio.sleep(0)
        return str(len(self.delivered))

    def counts(self) -> Counter[str]:
        return Counter(m for _, m, _ in self.delivered)


class Crash(BaseException):
    """Stands for the process being killed in the middle of a tick."""


def add_rows(
    factory: sessionmaker[Session], n: int, due: Callable[[int], datetime], now: datetime,
    chats: int = 100, channel: str = "telegram", prefix: str = "m", **extra: Any,
) -> None:
    """Insert ``n`` pending rows, marker ``<prefix><i>``, spread over ``chats`` chats."""
    rows = [
        {"channel": channel, "chat_id": str(10_000 + i % chats), "kind": "followup_checkin",
         "payload": {"text": f"pesan {i}", "m": f"{prefix}{i}", "choices": []}, "status": "pending",
         "due_at": due(i), "attempts": 0, "created_at": now, "dedupe_key": f"test:{prefix}{i}",
         "urgent": True, "uncertain": 0, **extra}
        for i in range(n)
    ]
    with factory() as db, db.begin():
        for start in range(0, n, 2000):
            db.execute(insert(OutboxMessage), rows[start:start + 2000])


def rows_by_marker(factory: sessionmaker[Session]) -> dict[str, OutboxMessage]:
    with factory() as db:
        return {r.payload["m"]: r for r in db.scalars(select(OutboxMessage)) if "m" in r.payload}


def dispatcher(
    factory: sessionmaker[Session], sender: Any, clock: FakeClock,
    limits: dict[str, ChannelLimits] | None = None, vt: VirtualTime | None = None, **config: Any,
) -> Dispatcher:
    vt = vt or VirtualTime()
    cfg = DispatchConfig(**{"batch": 1000, "tick_budget": 3600.0, **config})
    return Dispatcher(
        factory, {sender.channel: sender}, RateLimiter(limits or {}, monotonic=vt.monotonic),
        clock=clock, config=cfg, sleep=vt.sleep, jitter=lambda: 0.5,
    )
