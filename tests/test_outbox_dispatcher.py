"""The dispatcher on both databases with an in-memory channel: once, on time, after crashes, by policy."""

from __future__ import annotations

import itertools
import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.app import App
from bot.outbox.ratelimit import Limit, telegram_limits
from bot.outbox.recovery import requeue, status_counts, stuck_rows
from bot.outbox.store import SendError
from bot.storage.models import Contact, OutboxMessage
from tests.conftest import FakeClock, make_app
from tests.outbox_support import (
    Crash,
    RecordingSender,
    VirtualTime,
    add_rows,
    dispatcher,
    rows_by_marker,
)


async def test_ten_thousand_followups_sent_once_none_early(sqlite_app: App, clock: FakeClock) -> None:
    """SQLite; the PostgreSQL claim path is exercised by the two-process test and the tests below."""
    app = sqlite_app
    start = clock.now
    n = 10_000
    # Due times spread over ten days, some already due.
    add_rows(app.factory, n, lambda i: start + timedelta(minutes=(i * 1447) % (10 * 24 * 60) - 30),
             start, chats=2500)
    sender = RecordingSender(clock=clock)
    d = dispatcher(app.factory, sender, clock)
    due_at = {m: r.due_at for m, r in rows_by_marker(app.factory).items()}
    for _ in range(12):  # a day at a time, past the last due time
        await d.drain()
        counts = sender.counts()
        assert all(v == 1 for v in counts.values()), "a message was sent twice"
        expected = {m for m, due in due_at.items() if due <= clock.now}
        assert set(counts) == expected  # everything due is out, nothing early
        clock.advance(days=1)
    assert len(sender.counts()) == n
    # none early, measured at the moment of sending
    assert all(when is not None and when >= due_at[m] for _, m, when in sender.delivered)
    assert status_counts(app.factory) == {"sent": n}


async def crash_then_restart(
    app: App, clock: FakeClock, db_url: str, resend_unknown: bool
) -> tuple[RecordingSender, RecordingSender, App, set[str]]:
    """600 rows; the process dies after 130 sends, with rows claimed and not recorded."""
    n = 600
    add_rows(app.factory, n, lambda i: clock.now - timedelta(seconds=1), clock.now, chats=50)
    first = RecordingSender(clock=clock, crash_after=130)
    d1 = dispatcher(app.factory, first, clock, batch=200, flush_every=50)
    with pytest.raises(BaseException) as info:
        await d1.tick()
    assert info.errisinstance(Crash) or any(
        isinstance(e, Crash) for e in getattr(info.value, "exceptions", [])
    )
    app.engine.dispose()
    restarted = make_app(db_url, clock)
    in_flight = {r.payload["m"] for r in stuck_rows(restarted.factory, clock.now + timedelta(seconds=1), timedelta(0))}
    assert in_flight and len(in_flight) <= 200
    second = RecordingSender(clock=clock)
    return first, second, restarted, in_flight


async def test_restart_resends_rows_claimed_by_the_dead_process_after_the_claim_timeout(
    app: App, clock: FakeClock, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    first, second, restarted, in_flight = await crash_then_restart(app, clock, db_url, True)
    try:
        d2 = dispatcher(restarted.factory, second, clock, batch=200)
        await d2.drain()  # a moment later: the claims may still be alive, nothing of theirs is sent
        assert not in_flight & set(second.counts())
        chats_in_flight = {r.chat_id for m, r in rows_by_marker(restarted.factory).items() if m in in_flight}
        newer_blocked = {m for m, r in rows_by_marker(restarted.factory).items()
                         if r.chat_id in chats_in_flight and r.status == "pending"}
        assert not newer_blocked & set(second.counts())  # their chats wait: order is kept
        clock.advance(minutes=10, seconds=1)  # past OUTBOX_CLAIM_TIMEOUT_MINUTES
        with caplog.at_level(logging.WARNING, logger="bot.outbox.dispatcher"):
            stats = await d2.drain()
        assert stats.recovered == len(in_flight)
        assert "never confirmed" in caplog.text and "may arrive twice" in caplog.text
        rows = rows_by_marker(restarted.factory)
        assert {r.status for r in rows.values()} == {"sent"}  # nobody is left without an answer
        both = first.counts() + second.counts()
        assert set(both) == set(rows)
        for marker, count in both.items():  # a duplicate only where the row counts one
            assert count - 1 <= rows[marker].uncertain, marker
        assert {m for m, r in rows.items() if r.uncertain} == in_flight
        assert stuck_rows(restarted.factory, clock.now + timedelta(seconds=1), timedelta(0)) == []
    finally:
        restarted.engine.dispose()


async def test_restart_reports_rows_of_the_dead_process_when_resending_is_off(
    app: App, clock: FakeClock, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    first, second, restarted, in_flight = await crash_then_restart(app, clock, db_url, False)
    try:
        d2 = dispatcher(restarted.factory, second, clock, batch=200, resend_unknown=False)
        clock.advance(minutes=15)
        with caplog.at_level(logging.WARNING, logger="bot.outbox.dispatcher"):
            await d2.drain()
        both = first.counts() + second.counts()
        assert all(v == 1 for v in both.values()), "a message was sent twice"
        rows = rows_by_marker(restarted.factory)
        unknown = {m for m, r in rows.items() if r.status == "unknown"}
        assert unknown == in_flight and not unknown & set(second.counts())
        assert "outbox report" in caplog.text
        assert {r.status for m, r in rows.items() if m not in unknown} == {"sent"}
        # Messages delivered before the crash but not yet recorded are among the reported ones.
        assert set(first.counts()) - {m for m, r in rows.items() if r.status == "sent"} <= unknown
        # The operator may decide to resend them.
        ids = [r.id for m, r in rows.items() if m in unknown]
        assert requeue(restarted.factory, ids, clock.now) == len(unknown)
        await d2.drain()
        assert set(first.counts() + second.counts()) == set(rows)
    finally:
        restarted.engine.dispose()


async def test_failure_policy(app: App, clock: FakeClock) -> None:
    add_rows(app.factory, 6, lambda i: clock.now, clock.now, chats=6)
    sender = RecordingSender(clock=clock, script={
        "m0": [SendError("Too Many Requests: retry after 7", retry_after=7)],
        "m1": [SendError("Internal Server Error")] * 2,
        "m2": [SendError("Bad Request: chat not found", permanent=True)],
        "m3": [SendError("Bad Gateway")] * 10,
        "m4": [SendError("timeout after sending", unknown=True)],
    })
    d = dispatcher(app.factory, sender, clock, max_attempts=3)
    await d.drain()
    rows = rows_by_marker(app.factory)
    assert rows["m0"].status == "pending" and rows["m0"].due_at == clock.now + timedelta(seconds=7)
    assert rows["m1"].status == "pending" and rows["m1"].due_at > clock.now
    assert rows["m2"].status == "failed" and rows["m2"].attempts == 1
    assert "chat not found" in (rows["m2"].last_error or "")
    assert rows["m4"].status == "pending" and rows["m4"].uncertain == 1
    assert rows["m5"].status == "sent"
    for _ in range(4):
        clock.advance(minutes=10)
        await d.drain()
    rows = rows_by_marker(app.factory)
    assert {m: r.status for m, r in rows.items()} == {
        "m0": "sent", "m1": "sent", "m2": "failed", "m3": "failed", "m4": "sent", "m5": "sent"}
    assert rows["m3"].attempts == 3 and "Bad Gateway" in (rows["m3"].last_error or "")
    assert rows["m1"].attempts == 3
    counts = sender.counts()
    assert counts["m2"] == 0 and counts["m3"] == 0
    assert counts["m4"] == 2 and rows["m4"].uncertain == 1  # the possible duplicate is counted


async def test_unknown_outcome_reported_not_resent_when_configured(
    sqlite_app: App, clock: FakeClock
) -> None:
    add_rows(sqlite_app.factory, 2, lambda i: clock.now, clock.now)
    sender = RecordingSender(clock=clock, script={"m0": [SendError("read timeout", unknown=True)]})
    d = dispatcher(sqlite_app.factory, sender, clock, resend_unknown=False)
    await d.drain()
    clock.advance(hours=1)
    await d.drain()
    rows = rows_by_marker(sqlite_app.factory)
    assert rows["m0"].status == "unknown" and rows["m1"].status == "sent"
    assert sender.counts()["m0"] == 1


async def test_blocked_resident_is_marked_and_not_written_to_again(
    sqlite_app: App, clock: FakeClock
) -> None:
    with sqlite_app.factory() as db, db.begin():
        contact = Contact(channel="telegram", external_id="777", language="id", created_at=clock.now)
        db.add(contact)
        db.flush()
        cid = contact.id
    add_rows(sqlite_app.factory, 3, lambda i: clock.now + timedelta(days=i), clock.now, chats=1,
             contact_id=cid)
    sender = RecordingSender(clock=clock, script={
        "m0": [SendError("Forbidden: bot was blocked by the user", permanent=True, unreachable=True)]})
    await dispatcher(sqlite_app.factory, sender, clock).drain()
    rows = rows_by_marker(sqlite_app.factory)
    assert [rows[f"m{i}"].status for i in range(3)] == ["failed", "cancelled", "cancelled"]
    with sqlite_app.factory() as db:
        assert db.get(Contact, cid).unreachable_at == clock.now  # type: ignore[union-attr]


async def test_rate_limits_pace_sends_per_chat_and_in_total(sqlite_app: App, clock: FakeClock) -> None:
    """Virtual time: 10 messages to one chat at 1/s with a burst of 3, 60 to many chats at 30/s."""
    add_rows(sqlite_app.factory, 10, lambda i: clock.now, clock.now, chats=1)
    vt = VirtualTime()
    sender = RecordingSender(clock=clock)
    times: list[float] = []
    real_send = sender.send

    async def timed(chat_id: str, payload: dict[str, object]) -> str | None:
        times.append(vt.t)
        return await real_send(chat_id, payload)

    sender.send = timed  # type: ignore[method-assign]
    d = dispatcher(sqlite_app.factory, sender, clock, limits={"telegram": telegram_limits()}, vt=vt)
    await d.drain()
    assert len(times) == 10
    rel = [t - times[0] for t in times]
    assert rel[:4] == pytest.approx([0.0, 1 / 30, 2 / 30, 1.0])  # a short burst (paced at 30/s)
    assert all(b - a == pytest.approx(1.0) for a, b in itertools.pairwise(rel[3:]))

    add_rows(sqlite_app.factory, 60, lambda i: clock.now, clock.now, chats=60, prefix="b")
    times.clear()
    await d.drain()
    assert len(times) == 60
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 1 / 30 - 1e-9  # never faster than 30/s in total
    assert times[-1] - times[0] == pytest.approx(59 / 30)


def test_group_chats_get_the_group_limit() -> None:
    vt = VirtualTime()
    from bot.outbox.ratelimit import RateLimiter

    limiter = RateLimiter({"telegram": telegram_limits()}, monotonic=vt.monotonic)
    waits = [limiter.reserve_now("telegram", "-100200") for _ in range(3)]
    assert waits == pytest.approx([0.0, 3.0, 6.0])  # 20 per minute
    assert Limit(30).tolerance == 0.0


async def test_tick_claims_only_what_it_can_send(sqlite_app: App, clock: FakeClock) -> None:
    """A slow channel: the tick claims about rate x budget rows and releases what it could not send."""
    add_rows(sqlite_app.factory, 100, lambda i: clock.now, clock.now, chats=100)
    sender = RecordingSender(clock=clock)
    d = dispatcher(sqlite_app.factory, sender, clock, limits={"telegram": telegram_limits(total=10)},
                   tick_budget=1.0)
    stats = await d.tick()
    assert stats.claimed <= 11 and stats.sent == len(sender.delivered) >= 9
    with sqlite_app.factory() as db:
        claimed = db.scalars(select(OutboxMessage).where(OutboxMessage.status == "claimed")).all()
    assert claimed == []  # nothing left claimed after a clean tick
