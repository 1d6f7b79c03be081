"""The send budget shared by several processes (SEND_BUDGET=postgres | redis).

Two budget instances stand for two processes: they share one budget on the server. Waits are
measured on the server's clock while the test runs in real time, so they are compared with a
tolerance that covers the round trips.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from sqlalchemy import Engine, select, text

from bot.config import Settings
from bot.outbox.budget import PostgresBudget, RedisBudget, SharedBudget, build_budget, chat_key
from bot.outbox.ratelimit import ChannelLimits, RateLimiter, telegram_limits, whatsapp_limits
from bot.storage.db import open_database
from bot.storage.models import SendBudgetKey

REDIS_URL = os.environ.get("PRIMA_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"
SLACK = 0.15  # seconds of round trips and scheduling between the two "processes"

Make = Callable[[dict[str, ChannelLimits]], SharedBudget]


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = open_database(pg_url)  # migrated: the table and send_budget_reserve exist
    yield engine
    engine.dispose()


async def _redis_reachable() -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
    except Exception as exc:
        if os.environ.get("PRIMA_TEST_REDIS_URL"):
            pytest.fail(f"Redis at {REDIS_URL} unreachable: {exc}")
        pytest.skip(f"Redis tests need a server at {REDIS_URL} (.ci/run starts one): {exc}")
    finally:
        await client.aclose()


@pytest.fixture(params=["postgres", "redis"])
async def make(request: pytest.FixtureRequest) -> AsyncIterator[Make]:
    """Builds budgets of one backend that share one store (a fresh prefix per test)."""
    made: list[SharedBudget] = []
    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    if request.param == "postgres":
        engine = request.getfixturevalue("pg_engine")

        def build(limits: dict[str, ChannelLimits]) -> SharedBudget:
            made.append(PostgresBudget(engine, limits, {"telegram": "42"}, prefix=prefix))
            return made[-1]
    else:
        await _redis_reachable()

        def build(limits: dict[str, ChannelLimits]) -> SharedBudget:
            made.append(RedisBudget(REDIS_URL, limits, {"telegram": "42"}, prefix=prefix))
            return made[-1]
    yield build
    if request.param == "redis" and made:
        r = made[0].redis  # type: ignore[attr-defined]
        keys = [k async for k in r.scan_iter(match=prefix + "*")]
        if keys:
            await r.delete(*keys)
    for b in made:
        await b.aclose()


async def test_two_processes_share_the_channel_total(make: Make) -> None:
    limits = {"telegram": telegram_limits(total=30.0)}
    a, b = make(limits), make(limits)
    waits = [await (a if n % 2 else b).reserve("telegram", str(1000 + n)) for n in range(12)]
    # one budget of 30/s: the n-th message of either process waits about n/30 s
    for n, w in enumerate(waits):
        assert n / 30 - SLACK <= w <= n / 30 + 0.01, (n, waits)
    assert waits == sorted(waits)


async def test_per_chat_and_per_group_limits_are_shared(make: Make) -> None:
    limits = {"telegram": telegram_limits(total=0, chat=1.0, chat_burst=3, group_per_minute=20)}
    a, b = make(limits), make(limits)
    for _ in range(3):  # the burst of 3 to one private chat, taken by process a
        assert await a.reserve("telegram", "777") <= SLACK
    assert 1.0 - SLACK <= await b.reserve("telegram", "777") <= 1.0 + 0.01  # b waits its turn
    assert await b.reserve("telegram", "778") <= SLACK  # another chat does not wait
    assert await a.reserve("telegram", "-100500") <= SLACK  # a group: 20 per minute, no burst
    assert 3.0 - SLACK <= await b.reserve("telegram", "-100500") <= 3.0 + 0.01


async def test_a_slot_too_far_away_is_not_taken(make: Make) -> None:
    limits = {"telegram": telegram_limits(total=0, group_per_minute=20)}
    a, b = make(limits), make(limits)
    await a.reserve("telegram", "-100600")
    wait = await b.reserve("telegram", "-100600", max_wait=1.0)
    assert wait > 1.0  # refused: the caller hands the row back
    peek = await b.peek("telegram", "-100600")
    assert 3.0 - SLACK <= peek <= 3.0 + 0.01  # nothing was spent by the refusal or the peek
    assert 3.0 - SLACK <= await a.reserve("telegram", "-100600") <= 3.0 + 0.01


async def test_a_429_in_one_process_pauses_the_other(make: Make) -> None:
    limits = {"telegram": telegram_limits(total=30.0)}
    a, b = make(limits), make(limits)
    await a.penalise("telegram", "901", 5)
    wait = await b.reserve("telegram", "902")  # another chat, the other process: the channel waits
    assert 5.0 - SLACK <= wait <= 5.0 + 0.01
    assert 5.0 - SLACK <= await b.peek("telegram", "901") <= 5.0 + 0.1


async def test_budgets_of_two_bots_are_separate(make: Make) -> None:
    limits = {"telegram": telegram_limits(total=1.0)}
    a = make(limits)
    other = make(limits)
    other.scopes = {"telegram": "43"}  # another bot token sharing the server
    assert await a.reserve("telegram", "1") <= SLACK
    assert await other.reserve("telegram", "1") <= SLACK
    assert 1.0 - SLACK <= await a.reserve("telegram", "2") <= 1.0 + 0.01


async def test_two_dispatchers_on_one_outbox_send_within_one_budget(pg_engine: Engine) -> None:
    """Two processes' dispatchers drain one outbox, each with its own handle on the shared
    budget (20/s): together they send at 20/s, every row once."""
    import time
    from datetime import UTC, datetime, timedelta

    from bot.outbox.dispatcher import DispatchConfig, Dispatcher
    from bot.storage.db import session_factory
    from tests.outbox_support import RecordingSender, add_rows

    factory = session_factory(pg_engine)
    now = datetime.now(UTC)
    add_rows(factory, 30, lambda i: now - timedelta(seconds=1), now, chats=30)
    limits = {"telegram": telegram_limits(total=20.0)}
    times: list[float] = []

    class Timed(RecordingSender):
        async def send(self, chat_id: str, payload: dict[str, object]) -> str | None:
            times.append(time.monotonic())
            return await super().send(chat_id, payload)

    senders = [Timed(), Timed()]
    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    dispatchers = [Dispatcher(factory, {"telegram": s}, PostgresBudget(pg_engine, limits, prefix=prefix),
                              clock=lambda: datetime.now(UTC), config=DispatchConfig(tick_budget=0.5))
                   for s in senders]
    await asyncio.gather(*(d.drain() for d in dispatchers))
    for _ in range(20):
        # A row whose shared slot fell after its tick's deadline is handed back, due at that
        # slot; the running bot's next tick sends it. drain() stops at "nothing due now", so
        # tick again, as the scheduler would, until everything went out.
        if len(senders[0].counts() + senders[1].counts()) >= 30:
            break
        await asyncio.sleep(0.25)
        await asyncio.gather(*(d.drain() for d in dispatchers))
    assert sorted(senders[0].counts() + senders[1].counts()) == sorted(f"m{i}" for i in range(30))
    times.sort()
    gaps = [times[i + 20] - times[i] for i in range(len(times) - 20)]
    assert min(gaps) >= 1.0 - SLACK, gaps  # never more than 20 in a second, both together


async def test_the_store_holds_no_chat_id(pg_engine: Engine) -> None:
    budget = PostgresBudget(pg_engine, {"telegram": telegram_limits()}, {"telegram": "42"})
    await budget.reserve("telegram", "123456789")
    await budget.penalise("telegram", "-100987654", 1)
    with pg_engine.connect() as conn:
        keys = set(conn.scalars(select(SendBudgetKey.key)))
    assert keys == {"telegram:42:", f"telegram:42:{chat_key('123456789')}",
                    f"telegram:42:{chat_key('-100987654')}"}
    assert not any("123456789" in k or "987654" in k for k in keys)


async def test_pruning_forgets_only_keys_whose_time_has_passed(pg_engine: Engine) -> None:
    with pg_engine.begin() as conn:
        conn.execute(text("INSERT INTO send_budget (key, tat) VALUES ('old', 1), "
                          "('new', extract(epoch FROM clock_timestamp()) + 10)"))
        PostgresBudget._prune(conn)
        assert set(conn.scalars(text("SELECT key FROM send_budget"))) == {"new"}


async def test_an_unreachable_redis_falls_back_to_the_process_budget(
        caplog: pytest.LogCaptureFixture) -> None:
    budget = RedisBudget("redis://127.0.0.1:1/0", {"telegram": telegram_limits(total=30.0)},
                         timeout=0.5)
    with caplog.at_level(logging.WARNING, logger="bot.outbox.budget"):
        waits = [await budget.reserve("telegram", str(n)) for n in range(3)]
        await budget.penalise("telegram", "1", 0)
    await budget.aclose()
    assert waits[0] == 0 and waits[1] == pytest.approx(1 / 30, abs=0.05)  # local pacing
    warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warnings) == 1  # once a minute, not once a message


async def test_local_reserve_within_a_horizon_leaves_the_slot() -> None:
    t = [100.0]
    limiter = RateLimiter({"telegram": telegram_limits(group_per_minute=20)}, monotonic=lambda: t[0])
    assert await limiter.reserve("telegram", "-1") == 0
    assert await limiter.reserve("telegram", "-1", max_wait=1.0) == pytest.approx(3.0)
    assert await limiter.peek("telegram", "-1") == pytest.approx(3.0)  # still free for a later tick
    assert await limiter.reserve("telegram", "-1", max_wait=math.inf) == pytest.approx(3.0)


def test_the_setting_picks_the_backend(pg_url: str) -> None:
    limits = {"telegram": telegram_limits(), "whatsapp": whatsapp_limits()}
    assert isinstance(build_budget(Settings(), limits), RateLimiter)
    engine = open_database(pg_url)
    try:
        pg = build_budget(Settings(database_url=pg_url, send_budget="postgres",
                                   telegram_bot_token="123456:ABCDEFGHIJKL",
                                   whatsapp_phone_number_id="555"), limits, engine)
        assert isinstance(pg, PostgresBudget) and pg.scopes == {"telegram": "123456", "whatsapp": "555"}
    finally:
        engine.dispose()
    rb = build_budget(Settings(send_budget="redis", redis_url=REDIS_URL), limits)
    assert isinstance(rb, RedisBudget)
    asyncio.run(rb.aclose())
