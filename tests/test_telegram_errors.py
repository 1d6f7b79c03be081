"""Bot API failures and forged buttons, through aiogram's real Bot and the fake Bot API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.app import App
from bot.channels.telegram.render import callback_data, keyboard, parse_callback
from bot.channels.telegram.sender import TelegramSender, make_bot
from bot.outbox.store import SendError
from bot.storage.models import Contact, OutboxMessage, SurveyAnswer
from tests.conftest import FakeClock
from tests.fake_telegram import User
from tests.telegram_harness import Harness, harness

WARGA = User(id=6001, first_name="Budi", language_code="id")


async def _to_survey(h: Harness, user: User = WARGA) -> None:
    """Consent and start rating KTP, fed straight to the dispatcher."""
    await h.channel.setup()
    await h.feed(h.server.message_update(user, "/start"))
    for label in ("Setuju", "Nilai layanan", "Disdukcapil", "KTP Elektronik"):
        await h.feed(h.server.press_update(user, h.last_question(user), label))


def _answers(app: App) -> int:
    with app.factory() as db:
        return db.scalar(select(func.count()).select_from(SurveyAnswer)) or 0


async def test_forged_and_stale_callbacks_change_nothing(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        await _to_survey(h)
        first = h.last_question(WARGA)
        old_data = first.data_for("Sesuai")  # a client that has not seen the edit yet
        await h.feed(h.server.press_update(WARGA, first, "Sangat sesuai"))
        assert _answers(app) == 1
        state_before = len(h.server.chat(WARGA.id))
        for data in ("garbage", "", "9" * 70, "x:4", "1:\u0000", "12345:4"):
            await h.feed(h.server.press_update(WARGA, first, data=data))
        # the old question again (its buttons belong to question 4, we are past it)
        await h.feed(h.server.press_update(WARGA, first, data=old_data))
        assert _answers(app) == 1
        notices = [a.get("text") for a in h.server.callback_answers[-7:]]
        assert notices == ["Tombol ini sudah tidak berlaku."] * 7
        # malformed data never reached the runtime; the two well-formed stale presses each
        # got the notice and the current question again, nothing more
        new = [m.text or "" for m in h.server.chat(WARGA.id)[state_before:]]
        notice = app.texts("id", "stale_button")
        assert [t == notice for t in new] == [True, False, True, False]
        assert all("2/9" in t for t in new[1::2])
        # someone else pressing Budi's button only touches their own (new) session
        other = User(id=6002, first_name="Rina")
        await h.feed(h.server.press_update(other, h.last_question(WARGA), "Sangat mudah"))
        assert _answers(app) == 1
        assert len(h.server.callback_answers) == 4 + 1 + 7 + 1  # every press answered


async def test_429_waits_retry_after_then_delivers(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        await h.channel.setup()
        h.server.fail_next("sendMessage", 429, retry_after=3)
        start = clock.now
        await h.feed(h.server.message_update(WARGA, "/start"))
        assert h.sleep.waits == [3.0]
        assert clock.now - start == timedelta(seconds=3)
        assert h.server.last(WARGA.id).labels()[0] == "1. Setuju"
        assert {r.status for r in h.outbox()} == {"sent"}


async def test_long_429_leaves_replies_pending_in_order(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        await h.channel.setup()
        h.server.fail_next("sendMessage", 429, retry_after=120)
        await h.feed(h.server.message_update(WARGA, "/start"))
        assert h.server.chat(WARGA.id) == []
        rows = h.outbox()
        assert [r.status for r in rows] == ["pending", "pending"]
        assert rows[0].due_at == clock.now + timedelta(seconds=120)
        assert rows[1].due_at > rows[0].due_at  # the second waits behind the first: order kept
        assert [r.attempts for r in rows] == [1, 0]  # only a real send counts as an attempt


async def test_5xx_retries_with_backoff(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        await h.channel.setup()
        h.server.fail_next("sendMessage", 502, count=2)
        await h.feed(h.server.message_update(WARGA, "/start"))
        assert h.sleep.waits == [0.5, 1.0]
        assert len(h.server.chat(WARGA.id)) == 2


async def test_403_marks_resident_unreachable_and_stops(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        await h.channel.setup()
        h.server.block(WARGA.id)
        await h.feed(h.server.message_update(WARGA, "/start"))
        assert len(h.server.calls("sendMessage")) == 1  # the second reply was not attempted
        assert [r.status for r in h.outbox()] == ["failed", "cancelled"]
        assert [r.attempts for r in h.outbox()] == [1, 0]
        with app.factory() as db:
            assert db.scalars(select(Contact.unreachable_at)).one() == clock.now
        # they unblock the bot and write again: reachable again
        h.server.blocked.clear()
        clock.advance(minutes=5)
        await h.feed(h.server.message_update(WARGA, "/bantuan"))
        with app.factory() as db:
            assert db.scalars(select(Contact.unreachable_at)).one() is None


async def test_blocking_the_bot_is_noticed_from_my_chat_member(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        await h.channel.setup()
        await h.feed(h.server.message_update(WARGA, "/start"))
        member = {"update_id": 777, "my_chat_member": {
            "chat": {"id": WARGA.id, "type": "private", "first_name": "Budi"},
            "from": WARGA.as_dict(), "date": 1,
            "old_chat_member": {"status": "member", "user": h.server.bot_user},
            "new_chat_member": {"status": "kicked", "until_date": 0, "user": h.server.bot_user}}}
        await h.feed(member)
        with app.factory() as db:
            assert db.scalars(select(Contact.unreachable_at)).one() == clock.now


async def test_sender_classifies_errors(sqlite_app: App, clock: FakeClock) -> None:
    async with harness(sqlite_app, clock) as h:
        sender = TelegramSender(h.bot)
        cases: list[tuple[int, dict[str, object]]] = [(400, dict(permanent=True)), (403, dict(permanent=True, unreachable=True)),
                 (500, dict(permanent=False)), (429, dict(retry_after=7.0))]
        for status, expected in cases:
            h.server.fail_next("sendMessage", status, retry_after=7 if status == 429 else None)
            with pytest.raises(SendError) as err:
                await sender.send("1", {"text": "halo"})
            for key, value in expected.items():
                assert getattr(err.value, key) == value, (status, key)
        assert await sender.send("1", {"text": "halo"}) == "1"
    # nothing listening on the port: a connection error, safe to retry
    gone = make_bot(h.server.token, "http://127.0.0.1:9")
    try:
        with pytest.raises(SendError) as err:
            await TelegramSender(gone).send("1", {"text": "halo"})
        assert not err.value.permanent and not err.value.unknown
    finally:
        await gone.session.close()


def test_rendering_limits() -> None:
    payload = {"text": "?", "q": 7, "choices": [
        {"id": "4", "label": "Sangat mudah", "nav": False},
        {"id": "3", "label": "Mudah", "nav": False},
        {"id": "nav:back", "label": "Kembali", "nav": True},
        {"id": "nav:cancel", "label": "Batal", "nav": True}]}
    markup = keyboard(payload)
    assert markup is not None
    rows = [[(b.text, b.callback_data) for b in row] for row in markup.inline_keyboard]
    assert rows == [[("Sangat mudah", "7:4")], [("Mudah", "7:3")],
                    [("Kembali", "7:nav:back"), ("Batal", "7:nav:cancel")]]
    assert parse_callback("7:nav:back") == (7, "nav:back")
    with pytest.raises(ValueError):
        callback_data(1, "x" * 70)


async def test_outbox_rows_record_provider_ids(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        await h.channel.setup()
        await h.feed(h.server.message_update(WARGA, "/start"))
        with app.factory() as db:
            rows = db.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
            assert [r.provider_message_id for r in rows] == ["1", "2"]
