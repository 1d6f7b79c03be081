"""A broadcast backlog: a tick claims a bounded batch, reads no more of the table, keeps the rates."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy import event, func, select, text

from bot.app import App
from bot.outbox.dispatcher import DispatchConfig, Dispatcher
from bot.outbox.ratelimit import RateLimiter, telegram_limits, whatsapp_limits
from bot.storage.models import OutboxMessage
from tests.conftest import FakeClock
from tests.outbox_support import RecordingSender, VirtualTime, add_rows

LIMITS = {"telegram": telegram_limits(total=30.0), "whatsapp": whatsapp_limits(80.0)}


class TimedSender(RecordingSender):
    """Notes the virtual time of each send."""

    vt: VirtualTime | None = None
    times: list[float]

    async def send(self, chat_id: str, payload: dict[str, Any]) -> str | None:
        assert self.vt is not None
        self.times.append(self.vt.t)
        return await super().send(chat_id, payload)


def two_channels(app: App, clock: FakeClock, due: int, **config: Any) -> tuple[Dispatcher, dict[str, TimedSender]]:
    """``due`` rows due now on each of Telegram and WhatsApp, one chat each, and a dispatcher."""
    for channel in LIMITS:
        add_rows(app.factory, due, lambda i: clock.now, clock.now, chats=due, channel=channel, prefix=channel[0])
    vt = VirtualTime()
    senders = {}
    for channel in LIMITS:
        s = TimedSender(channel=channel, clock=clock)
        s.vt, s.times = vt, []
        senders[channel] = s
    cfg = DispatchConfig(**{"batch": 200, "tick_budget": 1.0, **config})
    d = Dispatcher(app.factory, senders, RateLimiter(LIMITS, monotonic=vt.monotonic), clock=clock,
                   config=cfg, sleep=vt.sleep, jitter=lambda: 0.5)
    return d, senders


def by_status(app: App) -> dict[tuple[str, str], int]:
    with app.factory() as db:
        rows = db.execute(select(OutboxMessage.channel, OutboxMessage.status, func.count())
                          .group_by(OutboxMessage.channel, OutboxMessage.status))
        return {(ch, st): n for ch, st, n in rows}


async def test_a_tick_claims_a_bounded_batch_when_ten_thousand_are_due(app: App, clock: FakeClock) -> None:
    d, senders = two_channels(app, clock, 10_000)
    stats = await d.tick()
    # what each channel may send in the tick's second (and the 10 % it reaches past its end):
    # 33 + 88 rows, not the backlog, not even the batch of 200
    assert stats.claimed <= 33 + 88
    sent = {ch: len(s.delivered) for ch, s in senders.items()}
    assert 29 <= sent["telegram"] <= 34 and 79 <= sent["whatsapp"] <= 89
    assert stats.sent == sum(sent.values())
    counts = by_status(app)
    for ch, n in sent.items():  # the rest stays pending, in its place; nothing is left claimed
        assert counts[(ch, "sent")] == n and counts[(ch, "pending")] == 10_000 - n
    assert not any(st == "claimed" for _, st in counts)


async def test_a_drain_keeps_each_channel_at_its_rate(app: App, clock: FakeClock) -> None:
    """Virtual time: 300 Telegram and 800 WhatsApp rows over ten 1-second ticks, back to back."""
    d, senders = two_channels(app, clock, 0)
    for channel, n in (("telegram", 300), ("whatsapp", 800)):
        add_rows(app.factory, n, lambda i: clock.now, clock.now, chats=n, channel=channel, prefix=channel)
    await d.drain()
    for channel, rate in (("telegram", 30.0), ("whatsapp", 80.0)):
        times = senders[channel].times
        assert len(senders[channel].delivered) == len(times) == int(rate * 10)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= 1 / rate - 1e-9  # never faster than allowed
        achieved = (len(times) - 1) / (times[-1] - times[0])
        assert achieved >= 0.95 * rate  # and no slot wasted between ticks
    assert by_status(app) == {("telegram", "sent"): 300, ("whatsapp", "sent"): 800}


def test_a_claim_reads_the_index_not_the_table(sqlite_app: App, clock: FakeClock) -> None:
    """Every query of a claim is an index range read on SQLite (a table scan would grow with
    the backlog: 100,000 due follow-ups after a broadcast)."""
    app = sqlite_app
    d, _ = two_channels(app, clock, 500)
    statements: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "outbox" in statement:
            statements.append((statement, parameters))

    event.listen(app.engine, "before_cursor_execute", seen)
    try:
        rows = d.claim(clock.now, 1.0)
    finally:
        event.remove(app.engine, "before_cursor_execute", seen)
    assert len(rows) == 30 + 80
    assert len(statements) >= 4  # per channel: chats in flight, the due rows, their payloads
    with app.engine.connect() as conn:
        for statement, parameters in statements:
            plan = " | ".join(str(r[3]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))
            assert "SCAN outbox" not in plan, (statement, plan)
    d.release([r.id for r in rows])


def test_the_metrics_group_by_reads_only_the_index(sqlite_app: App, clock: FakeClock) -> None:
    add_rows(sqlite_app.factory, 1_000, lambda i: clock.now, clock.now, chats=1_000)
    with sqlite_app.engine.connect() as conn:
        plan = " | ".join(str(r[3]) for r in conn.execute(text(
            "EXPLAIN QUERY PLAN SELECT status, channel, count(*) FROM outbox GROUP BY status, channel")))
    assert "COVERING INDEX ix_outbox_status_channel_due" in plan, plan
