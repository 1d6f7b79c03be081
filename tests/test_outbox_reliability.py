"""Outbound delivery under faults, through the real aiogram Bot / aiohttp against the fake APIs.

- An immediate reply whose connection drops after the request left is resent once by the
  dispatcher and counted as a possible duplicate (Telegram and WhatsApp); with
  ``OUTBOX_RESEND_UNKNOWN=false`` it is marked ``unknown`` and shows in ``outbox report``.
- Two chats whose sends hang do not slow the others down, and get no copies beyond the policy.
- 300 chats keep their order although the per-chat limit hands rows back at the end of ticks.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import App
from bot.channels.telegram.sender import TelegramSender, make_bot
from bot.outbox.dispatcher import DispatchConfig, Dispatcher
from bot.outbox.ratelimit import ChannelLimits, Limit, RateLimiter, telegram_limits
from bot.storage.models import Complaint, OutboxMessage
from tests.conftest import FakeClock, make_app
from tests.fake_telegram import TOKEN, FakeTelegram, User
from tests.outbox_support import VirtualTime, add_rows, rows_by_marker
from tests.telegram_harness import harness as tg_harness
from tests.whatsapp_harness import harness as wa_harness

WARGA = User(id=5101, first_name="Budi")


def outbox_of(app: App, chat_id: str) -> list[OutboxMessage]:
    with app.factory() as db:
        return list(db.scalars(select(OutboxMessage).where(OutboxMessage.chat_id == chat_id)
                               .order_by(OutboxMessage.id)))


def tg_dispatcher(app: App, sender: Any, clock: FakeClock, **config: Any) -> Dispatcher:
    vt = VirtualTime()
    return Dispatcher(app.factory, {"telegram": sender}, RateLimiter({}, monotonic=vt.monotonic),
                      clock=clock, sleep=vt.sleep, jitter=lambda: 0.5,
                      config=DispatchConfig(**{"batch": 1000, "tick_budget": 3600.0, **config}))


async def test_telegram_reply_with_dropped_connection_is_resent_once_and_counted(
    app: App, clock: FakeClock
) -> None:
    async with tg_harness(app, clock) as h:
        await h.channel.setup()
        h.server.drop_after_send[WARGA.id] = 1
        await h.feed(h.server.message_update(WARGA, "/start"))
        first, second = outbox_of(app, str(WARGA.id))
        # It reached the chat, but the answer was lost: resent later, counted; the second
        # reply was not tried and waits behind it.
        assert first.status == "pending" and first.uncertain == 1 and first.attempts == 1
        assert second.status == "pending" and second.attempts == 0 and second.due_at > first.due_at
        assert len(h.server.chat(WARGA.id)) == 1
        clock.advance(seconds=5)
        await tg_dispatcher(app, h.channel.sender, clock).drain()
        texts = [s.text for s in h.server.chat(WARGA.id)]
        first, second = outbox_of(app, str(WARGA.id))
        assert [first.status, second.status] == ["sent", "sent"]
        assert texts == [first.payload["text"], first.payload["text"], second.payload["text"]]
        assert first.uncertain == 1 and first.attempts == 2 and second.attempts == 1


async def test_telegram_reply_with_dropped_connection_is_only_reported_when_configured(
    db_url: str, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(db_url, clock, outbox_resend_unknown=False)
    try:
        async with tg_harness(app, clock) as h:
            await h.channel.setup()
            h.server.drop_after_send[WARGA.id] = 1
            await h.feed(h.server.message_update(WARGA, "/start"))
            first, second = outbox_of(app, str(WARGA.id))
            assert first.status == "unknown" and first.uncertain == 0
            assert "ServerDisconnected" in (first.last_error or "") or "Connection" in (first.last_error or "")
            assert second.status == "pending" and second.attempts == 0  # goes on: no gap to wait for
            clock.advance(seconds=5)
            await tg_dispatcher(app, h.channel.sender, clock, resend_unknown=False).drain()
            assert [s.text for s in h.server.chat(WARGA.id)] == [first.payload["text"],
                                                                 second.payload["text"]]
            from bot.cli.outbox import _report

            class Args:
                older_than = None

            _report(app, Args())  # type: ignore[arg-type]
            out = capsys.readouterr().out
            assert "unknown 1" in out and f"#{first.id} telegram" in out
    finally:
        app.engine.dispose()


SITI = "6281234567890"


async def complaint_until_send(h: Any) -> Any:
    """A WhatsApp complaint up to its summary; returns the summary question."""
    from tests import fake_graph as fg

    await h.say(SITI, "halo")
    await h.tap(SITI, "Setuju")
    await h.tap(SITI, "Buat pengaduan")
    await h.tap(SITI, "Disdukcapil")
    await h.tap(SITI, "KTP Elektronik")
    await h.say(SITI, "Petugas loket meminta uang 50 ribu supaya KTP cepat jadi")
    await h.say(SITI, "4")
    await h.tap(SITI, "Hari ini")
    await h.tap(SITI, "Lewati")
    await h.send(SITI, fg.location_message(SITI, -1.4852, 102.119))
    await h.tap(SITI, "Tidak")  # not on the public map
    await h.tap(SITI, "Ya")
    await h.tap(SITI, "Tidak")
    return h.graph.last_question(SITI)


async def test_whatsapp_ticket_reply_with_dropped_connection_is_resent(
    db_url: str, clock: FakeClock
) -> None:
    async with wa_harness(db_url, clock) as h:
        summary = await complaint_until_send(h)
        h.graph.drop_after_send[SITI] = 1
        await h.tap(SITI, "Kirim", on=summary)
        with h.app.factory() as db:
            ticket = db.scalars(select(Complaint.ticket)).one()  # the complaint is stored
        rows = [r for r in outbox_of(h.app, SITI)
                if r.kind == "reply" and ticket in (r.payload.get("text") or "")]
        assert rows and rows[0].status == "pending" and rows[0].uncertain == 1
        before = h.graph.to(SITI)
        assert ticket in before[-1].text  # it did reach the phone; only the answer was lost
        clock.advance(seconds=5)
        await h.drain()
        new = h.graph.to(SITI)[len(before):]
        # The lost answer goes again first (counted), then the turn's other replies in order.
        assert new[0].text == before[-1].text
        assert len(new) == len([r for r in outbox_of(h.app, SITI) if r.kind == "reply"
                                and r.id >= rows[0].id])
        row = next(r for r in outbox_of(h.app, SITI) if r.id == rows[0].id)
        assert row.status == "sent" and row.uncertain == 1


async def _deliver_with_slow_chats(app: App, clock: FakeClock, slow: list[int], n: int = 50,
                                   hang: float = 6.0) -> tuple[float, FakeTelegram]:
    """50 chats (one message each) plus ``slow`` chats whose sends hang for ``hang`` s.
    Returns the seconds until every one of the 50 was answered."""
    server = FakeTelegram()
    await server.start()
    bot = make_bot(TOKEN, server.base_url)
    try:
        add_rows(app.factory, n, lambda i: clock.now, clock.now, chats=n)
        for chat in slow:
            server.slow[chat] = hang
            add_rows(app.factory, 1, lambda i: clock.now - timedelta(seconds=1), clock.now, chats=1,
                     prefix=f"slow{chat}-", chat_id=str(chat))
        # 100/s in total with a 0.2 s tick: a tick claims 20 rows, so the others need several
        # ticks, and a tick that waited for the hanging sends would hold them up.
        limiter = RateLimiter({"telegram": telegram_limits(total=100)})
        d = Dispatcher(app.factory, {"telegram": TelegramSender(bot)}, limiter, clock=clock,
                       config=DispatchConfig(tick_budget=0.2, send_timeout=3.0))
        others = {str(10_000 + i) for i in range(n)}
        start = time.monotonic()
        while not others <= {str(c) for c, _ in server.answered_at}:
            await d.tick()
            assert time.monotonic() - start < 30
        elapsed = max(t for c, t in server.answered_at if str(c) in others) - start
        await d.idle()
        return elapsed, server
    finally:
        await bot.session.close()
        await server.stop()


async def test_hanging_chats_do_not_hold_up_the_others(tmp_path: Any, clock: FakeClock) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'baseline.db'}", clock)
    try:
        baseline, _ = await _deliver_with_slow_chats(app, clock, slow=[])
    finally:
        app.engine.dispose()
    app = make_app(f"sqlite:///{tmp_path / 'slow.db'}", clock)
    try:
        with_slow, server = await _deliver_with_slow_chats(app, clock, slow=[777001, 777002])
        # The two hanging chats cost the others nothing but noise: well under one send
        # timeout (3 s) of extra delay, let alone the hang (6 s).
        assert with_slow < baseline * 1.5 + 1.0, (baseline, with_slow)
        rows = rows_by_marker(app.factory)
        for chat in ("777001", "777002"):
            slow_rows = [r for r in rows.values() if r.chat_id == chat]
            assert len(slow_rows) == 1
            row = slow_rows[0]
            # Timed out (outcome unknown), resent by the policy: never more copies than counted.
            assert len(server.chat(int(chat))) <= 1 + row.uncertain
            assert row.status in ("pending", "unknown") and row.uncertain >= 1
    finally:
        app.engine.dispose()


async def test_order_kept_for_300_chats_when_rows_are_handed_back(app: App, clock: FakeClock) -> None:
    """Per chat 1/s with a burst of 3 and 5 rows each, a 1 s tick: every chat has rows handed
    back unsent at the end of a tick, and newer rows keep arriving meanwhile."""
    n_chats = 300
    add_rows(app.factory, n_chats * 5, lambda i: clock.now, clock.now, chats=n_chats)
    server = FakeTelegram()
    await server.start()
    bot = make_bot(TOKEN, server.base_url)
    vt = VirtualTime()
    limits = {"telegram": ChannelLimits(chat=Limit(1.0, 3))}
    d = Dispatcher(app.factory, {"telegram": TelegramSender(bot)},
                   RateLimiter(limits, monotonic=vt.monotonic), clock=clock, sleep=vt.sleep,
                   monotonic=vt.monotonic, jitter=lambda: 0.5,
                   config=DispatchConfig(batch=2000, tick_budget=1.0))
    try:
        released = 0
        for tick in range(200):  # 40 virtual seconds suffice; a loaded host may need more ticks
            stats = await d.tick()
            released += stats.released
            if tick == 1:  # newer rows for every chat, due now, while older ones wait
                add_rows(app.factory, n_chats, lambda i: clock.now, clock.now, chats=n_chats,
                         prefix="late")
            vt.t += 1.0
            clock.advance(seconds=1)
            if tick >= 40 and {r.status for r in rows_by_marker(app.factory).values()} <= {"sent", "claimed"}:
                break
        await d.idle()  # sends still in flight finish and are recorded
        assert released > 0
        by_chat: dict[int, list[str]] = defaultdict(list)
        for sent in server.sent:
            by_chat[sent.chat_id].append(sent.text or "")
        rows = rows_by_marker(app.factory)
        assert {r.status for r in rows.values()} == {"sent"}
        expected: dict[int, list[str]] = defaultdict(list)
        for r in sorted(rows.values(), key=lambda r: r.id):
            expected[int(r.chat_id)].append(r.payload["text"])
        out_of_order = sum(by_chat[c] != expected[c] for c in expected)
        assert out_of_order == 0
    finally:
        await bot.session.close()
        await server.stop()


async def test_a_chat_whose_head_backs_off_waits_as_a_whole(app: App, clock: FakeClock) -> None:
    """m0 fails (502) and backs off; m1..m2 of the same chat and a row written meanwhile wait for it."""
    from bot.outbox.store import SendError
    from tests.outbox_support import RecordingSender, dispatcher

    add_rows(app.factory, 3, lambda i: clock.now, clock.now, chats=1)
    add_rows(app.factory, 1, lambda i: clock.now, clock.now, chats=1, prefix="other", chat_id="20000")
    sender = RecordingSender(clock=clock, script={"m0": [SendError("Bad Gateway")] * 2})
    d = dispatcher(app.factory, sender, clock)
    await d.drain()
    assert sender.counts() == {"other0": 1}  # another chat is not held up
    rows = rows_by_marker(app.factory)
    assert rows["m0"].attempts == 1 and rows["m1"].attempts == 0 and rows["m2"].attempts == 0
    clock.advance(seconds=1)
    add_rows(app.factory, 1, lambda i: clock.now, clock.now, chats=1, prefix="late")
    await d.drain()  # m0 still backing off: the new row, due now, waits too
    assert "late0" not in sender.counts()
    for _ in range(6):
        clock.advance(seconds=10)
        await d.drain()
    assert [m for _, m, _ in sender.delivered if m != "other0"] == ["m0", "m1", "m2", "late0"]
    rows = rows_by_marker(app.factory)
    assert rows["m0"].attempts == 3 and rows["m1"].attempts == 1 and rows["late0"].attempts == 1


async def test_replies_claimed_when_the_process_died_are_resent_after_the_claim_timeout(
    app: App, clock: FakeClock
) -> None:
    """A turn is stored and its replies claimed; the process dies before sending them. The
    redelivered update is a duplicate, so only the outbox can still answer the resident."""
    from bot.runtime.types import Inbound
    from flows.machine.types import Event

    inbound = Inbound("telegram", str(WARGA.id), str(WARGA.id), Event("text", "tg:1", text="/start"),
                      event_key="1")
    replies = app.runtime.handle(inbound)
    assert replies and {r.status for r in replies} == {"claimed"}
    assert app.runtime.handle(inbound) == []  # Telegram redelivers it: a duplicate, ignored
    server = FakeTelegram()
    await server.start()
    bot = make_bot(TOKEN, server.base_url)
    try:
        d = tg_dispatcher(app, TelegramSender(bot), clock)
        clock.advance(minutes=5)
        await d.drain()
        assert server.chat(WARGA.id) == []  # maybe still being sent by a live process: wait
        clock.advance(minutes=6)  # claimed longer than OUTBOX_CLAIM_TIMEOUT_MINUTES (10)
        stats = await d.drain()
        assert stats.recovered == len(replies)
        assert [s.text for s in server.chat(WARGA.id)] == [r.payload["text"] for r in replies]
        rows = outbox_of(app, str(WARGA.id))
        assert {r.status for r in rows} == {"sent"} and all(r.uncertain == 1 for r in rows)
    finally:
        await bot.session.close()
        await server.stop()
