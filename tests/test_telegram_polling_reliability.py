"""Long polling never confirms an update to Telegram before it is stored.

In process (aiogram's real Bot, the fake Bot API): what is confirmed by each getUpdates offset
is already in the database, and an update aiogram cannot parse is set aside without holding up
anyone. As a real process (``python bot.py``): a kill -9 or a SIGTERM in the middle of a load
loses nothing, and each resident's messages are stored in the order they were sent.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import App
from bot.storage.models import InboundEvent
from tests.conftest import FakeClock
from tests.fake_telegram import FakeTelegram, User
from tests.polling_load import BotProcess, Residents, tally, traceback_lines, until_stored
from tests.telegram_harness import harness


def _stored_keys(app: App) -> set[str]:
    with app.factory() as db:
        return set(db.scalars(select(InboundEvent.event_key).where(InboundEvent.channel == "telegram")))


async def test_each_confirmed_update_is_already_stored(app: App, clock: FakeClock) -> None:
    residents = [User(id=6100 + n, first_name=f"Warga {n}") for n in range(12)]
    confirmed_unstored: list[int] = []
    async with harness(app, clock) as h:
        sent: list[int] = []

        def check(offset: int) -> None:  # runs inside the fake's getUpdates, before it forgets
            stored = {int(k) for k in _stored_keys(app)}
            confirmed_unstored.extend(u for u in sent if u < offset and u not in stored)

        h.server.on_confirm = check
        async with h.polling():
            for text in ("/start", "halo", "apa kabar", "/bantuan"):
                sent += [h.server.message(user, text)["update_id"] for user in residents]
            await h.server.wait_for(lambda: not h.server.pending and len(h.server.sent) >= 48,
                                    timeout=20)
    assert h.server.offsets, "the poller never confirmed anything"
    assert confirmed_unstored == []
    assert {str(u) for u in sent} <= _stored_keys(app)


async def test_an_unparseable_update_is_set_aside_and_blocks_nobody(
    app: App, clock: FakeClock, caplog: pytest.LogCaptureFixture,
) -> None:
    residents = [User(id=6200 + n, first_name=f"Warga {n}") for n in range(5)]
    caplog.set_level(logging.WARNING, logger="bot")
    async with harness(app, clock) as h, h.polling():
        # a message without chat/date/message_id: aiogram's Update model refuses it
        broken = h.server.queue({"message": {"from": residents[0].as_dict(), "text": "rusak"}})
        for user in residents:
            h.server.message(user, "/start")
        await h.server.wait_for(lambda: all(h.server.chat(u.id) for u in residents), timeout=10)
        await h.server.wait_for(lambda: not h.server.pending, timeout=10)
    for user in residents:
        assert h.server.chat(user.id)[-1].labels()[0] == "1. Setuju"
    assert str(broken["update_id"]) in _stored_keys(app)  # received, never handled twice
    with app.factory() as db:  # its body is kept for an operator, in the database
        kept = db.scalars(select(InboundEvent.raw).where(
            InboundEvent.event_key == str(broken["update_id"]))).one()
    assert kept is not None and kept["message"]["text"] == "rusak"
    aside = [r for r in caplog.records if "could not be parsed" in r.getMessage()]
    assert len(aside) == 1  # logged once, and without the resident's name or words
    assert "rusak" not in aside[0].getMessage() and "Warga" not in aside[0].getMessage()


async def _load_then(db_url: str, tmp_path: Path, stop_with: int) -> tuple[Residents, BotProcess, int]:
    """30 residents x 14 messages; stop the bot with ``stop_with`` once 100 replies went out,
    restart it, and wait until everything is stored."""
    server = FakeTelegram()
    await server.start()
    bot = BotProcess(server, db_url, tmp_path)
    residents = Residents(server, count=30, messages=14)
    try:
        await bot.start()
        writing = asyncio.create_task(residents.write(seconds=4))
        await server.wait_for(lambda: len(server.sent) >= 100, timeout=60)
        code = await bot.stop(stop_with)
        await bot.start()
        await writing
        await until_stored(db_url, residents, timeout=90)
        assert await bot.stop(signal.SIGTERM) == 0, bot.stderr()
    finally:
        if bot.proc is not None and bot.proc.returncode is None:
            bot.proc.kill()
        await server.stop()
    return residents, bot, code


async def test_kill_9_mid_load_loses_no_update(db_url: str, tmp_path: Path) -> None:
    residents, _, code = await _load_then(db_url, tmp_path, signal.SIGKILL)
    assert code == -signal.SIGKILL
    result = tally(db_url, residents)
    assert result.sent == 420 and result.lost == 0, result.lines()
    assert result.out_of_order == 0, result.lines()
    # replies the dead process had claimed are the outbox's to resend; none is left pending
    assert result.replies_pending == 0
    assert result.replies_sent + result.replies_claimed == result.replies_owed


async def test_sigterm_mid_load_finishes_what_it_holds(db_url: str, tmp_path: Path) -> None:
    residents, _, code = await _load_then(db_url, tmp_path, signal.SIGTERM)
    assert code == 0
    first_run = (tmp_path / "bot-1.err").read_text(errors="replace")
    assert traceback_lines(first_run) == [], first_run
    assert "cannot schedule new futures" not in first_run
    result = tally(db_url, residents)
    assert result.lost == 0 and result.out_of_order == 0, result.lines()
    # a graceful stop sent (or handed back) every reply it had claimed
    assert result.replies_claimed == 0 and result.replies_sent == result.replies_owed, result.lines()



async def test_a_database_outage_pauses_polling_and_loses_nothing(
    clock: FakeClock, caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.conftest import make_app
    from tests.pg_instance import OwnPostgres

    pg = OwnPostgres()
    pg.start()
    app = make_app(pg.url, clock)
    residents = [User(id=6300 + n, first_name=f"Warga {n}") for n in range(10)]
    caplog.set_level(logging.INFO, logger="bot")
    try:
        async with harness(app, clock) as h, h.polling():
            for user in residents:
                h.server.message(user, "/start")
            await h.server.wait_for(lambda: all(h.server.chat(u.id) for u in residents), timeout=10)
            before = len(caplog.records)
            await asyncio.to_thread(pg.stop)
            during = [h.server.message(user, f"pesan {n}")["update_id"]
                      for n in range(3) for user in residents]

            def outage_noticed() -> bool:
                return any("database unavailable" in r.getMessage() for r in caplog.records)

            for _ in range(200):  # logged without any Bot API call, so checked here
                if outage_noticed():
                    break
                await asyncio.sleep(0.05)
            assert outage_noticed()
            await asyncio.sleep(3)  # the outage lasts; updates in hand keep waiting
            assert set(during) <= set(h.server.pending), "confirmed while the database was away"
            await asyncio.to_thread(pg.start)
            await h.server.wait_for(lambda: not h.server.pending, timeout=30)
            await h.server.wait_for(lambda: all(len(h.server.chat(u.id)) >= 4 for u in residents),
                                    timeout=10)
        assert {str(u) for u in during} <= _stored_keys(app)
        lines = [r.getMessage() for r in caplog.records[before:]]
        assert sum("database unavailable" in line for line in lines) == 1, lines
        assert sum("database back" in line for line in lines) == 1, lines
        assert len([r for r in caplog.records[before:] if r.levelno >= logging.WARNING]) <= 3, lines
    finally:
        app.engine.dispose()
        pg.destroy()


async def test_a_stop_that_cannot_wait_hands_unsent_replies_back(app: App, clock: FakeClock) -> None:
    """Cancelled mid-send (a stop past its grace period): the reply being sent stays claimed
    (it may have arrived), the ones not yet attempted go back to the outbox as pending."""
    from contextlib import suppress

    from bot.storage.models import OutboxMessage

    async with harness(app, clock) as h:
        entered, gate = asyncio.Event(), asyncio.Event()

        async def stuck(chat_id: str, payload: dict[str, object]) -> str | None:
            entered.set()
            await gate.wait()  # never set: the Bot API does not answer
            return None

        h.channel.sender.send = stuck  # type: ignore[method-assign]
        task = asyncio.create_task(h.feed(h.server.message_update(User(id=6400), "/start")))
        await asyncio.wait_for(entered.wait(), 5)
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
    with app.factory() as db:
        statuses = list(db.scalars(select(OutboxMessage.status).where(OutboxMessage.kind == "reply")
                                  .order_by(OutboxMessage.id)))
    assert len(statuses) >= 2
    assert statuses == ["claimed"] + ["pending"] * (len(statuses) - 1)
