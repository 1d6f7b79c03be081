"""Immediate replies share the process's rate limiter with the outbox dispatcher."""

from __future__ import annotations

import pytest

from bot.app import App
from bot.channels.common import KeyedLocks, Pacer
from bot.outbox.ratelimit import RateLimiter, telegram_limits
from tests.conftest import FakeClock
from tests.fake_telegram import User
from tests.telegram_harness import harness


class Monotonic:
    """Virtual monotonic time: the recorded sleeps move it instead of waiting."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.t += seconds


async def test_replies_wait_for_the_slots_follow_ups_already_took(sqlite_app: App, clock: FakeClock) -> None:
    mono = Monotonic()
    limiter = RateLimiter({"telegram": telegram_limits(total=30.0, chat=1.0, chat_burst=3)}, monotonic=mono)
    async with harness(sqlite_app, clock) as h:
        h.channel.pacer = Pacer("telegram", limiter, mono.sleep)
        for n in range(29):  # the dispatcher sent 29 follow-ups to other chats this second
            assert limiter.reserve_now("telegram", f"9{n}") == pytest.approx(n / 30)
        warga = User(4242)
        await h.feed(h.server.message(warga, "/start"))
        sent = h.server.chat(warga.id)
        assert (sent[0].text or "").startswith("Halo!")
        assert len(sent) == 2  # greeting and the consent question, both delivered
        # 30 messages/s in total and no burst: the greeting takes slot 30, the question slot 31
        assert mono.waits == [pytest.approx(29 / 30), pytest.approx(1 / 30)]


async def test_without_a_limiter_nothing_waits(sqlite_app: App, clock: FakeClock) -> None:
    mono = Monotonic()
    async with harness(sqlite_app, clock) as h:
        h.channel.pacer = Pacer("telegram", None, mono.sleep)
        await h.feed(h.server.message(User(4343), "/start"))
        assert len(h.server.chat(4343)) == 2 and mono.waits == []


async def test_keyed_locks_keep_one_residents_order_and_forget_idle_keys() -> None:
    import asyncio

    locks = KeyedLocks()
    order: list[str] = []

    async def work(tag: str, pause: int) -> None:
        for _ in range(pause):
            await asyncio.sleep(0)
        order.append(tag)

    await asyncio.gather(
        locks.run("a", lambda: work("a1", 5)),
        locks.run("a", lambda: work("a2", 0)),
        locks.run("b", lambda: work("b1", 0)),
    )
    assert order.index("a1") < order.index("a2")  # same resident: in arrival order
    assert order.index("b1") < order.index("a1")  # another resident did not wait for "a"
    assert len(locks) == 0
