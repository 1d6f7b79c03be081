"""Follow-ups end to end on Telegram: the real channel and aiogram Bot against the fake Bot API.

The resident files a complaint or starts a survey through buttons; time is moved forward;
the dispatcher sends what is due; the resident answers the follow-up's buttons.

Every complaint opens a case, and its check-in follows the case (tests/test_complaint_cases.py);
the blind "is it solved?" timer tested here is the fallback for a complaint that got no case,
which these tests make by letting ``intake.on_complaint`` open none.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.app import App
from bot.channels.telegram.sender import TelegramSender
from bot.desk import intake
from bot.outbox.dispatcher import Dispatcher
from bot.outbox.followups import KIND_CHECKIN, KIND_SURVEY
from bot.outbox.ratelimit import RateLimiter
from bot.storage.models import (
    Complaint,
    FollowupAnswer,
    OutboxMessage,
    StatusChange,
    SurveyResponse,
)
from tests.case_support import complaint, consent, press, press_data, say
from tests.conftest import FakeClock
from tests.fake_telegram import User
from tests.outbox_support import VirtualTime
from tests.telegram_harness import Harness, harness

WARGA = User(7001, "Siti")
LAIN = User(7002, "Budi")
CATEGORY = "Penundaan berlarut"
DESC = "KTP saya belum jadi sudah tiga bulan padahal dijanjikan dua minggu"


def dispatcher(h: Harness) -> Dispatcher:
    vt = VirtualTime()
    return Dispatcher(h.app.factory, {"telegram": TelegramSender(h.bot)},
                      RateLimiter({}, monotonic=vt.monotonic), clock=h.clock, sleep=vt.sleep)


def rows(app: App, kind: str) -> list[OutboxMessage]:
    with app.factory() as db:
        return list(db.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind)
                               .order_by(OutboxMessage.id)))


def the_complaint(app: App) -> Complaint:
    with app.factory() as db:
        return db.scalars(select(Complaint)).one()


def without_case(monkeypatch: pytest.MonkeyPatch) -> None:
    """A complaint that somehow gets no case (its agency gone): the blind check-in remains."""
    monkeypatch.setattr(intake, "on_complaint", lambda *args, **kwargs: None)


async def file_complaint(h: Harness, user: User = WARGA) -> None:
    await consent(h, user)
    done = await complaint(h, user, DESC, CATEGORY, confidential=False)
    assert any("Nomor tiket" in (m.text or "") for m in done)


async def test_a_complaint_with_a_case_has_no_blind_checkin(sqlite_app: App, clock: FakeClock) -> None:
    async with harness(sqlite_app, clock) as h:
        await file_complaint(h)
        assert rows(sqlite_app, KIND_CHECKIN) == []


async def test_checkin_yes_closes_and_asks_for_a_rating(
    app: App, clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    without_case(monkeypatch)
    async with harness(app, clock) as h:
        await file_complaint(h)
        [row] = rows(app, KIND_CHECKIN)
        assert row.status == "pending" and row.due_at == clock.now + timedelta(days=7)  # 09:00 WIB
        d = dispatcher(h)
        before = len(h.server.chat(WARGA.id))
        clock.advance(days=6, hours=23)
        await d.drain()
        assert len(h.server.chat(WARGA.id)) == before  # not early
        clock.advance(hours=1)
        await d.drain()
        checkin = h.server.last(WARGA.id)
        ticket = the_complaint(app).ticket
        assert ticket in (checkin.text or "") and "sudah selesai?" in (checkin.text or "")
        assert checkin.labels() == ["Ya, sudah selesai", "Belum", "Tidak, ada masalah"]
        await d.drain()
        assert h.server.chat(WARGA.id)[-1] is checkin  # sent once
        yes_data = checkin.data_for("Ya, sudah selesai")

        answer = await press(h, WARGA, "Ya, sudah selesai")
        assert f"pengaduan {ticket} kami tutup" in (answer[0].text or "")
        assert "Seberapa puas" in (answer[-1].text or "")
        assert answer[-1].labels()[:5] == ["5. Sangat puas", "4. Puas", "3. Cukup",
                                           "2. Kurang puas", "1. Tidak puas"]
        c = the_complaint(app)
        assert c.status == "closed" and c.resolved_at == clock.now
        thanks = await press(h, WARGA, "Puas")
        assert "Terima kasih atas penilaian" in (thanks[0].text or "")
        with app.factory() as db:
            answers = [(a.question, a.answer) for a in db.scalars(select(FollowupAnswer))]
            history = db.scalars(select(StatusChange).order_by(StatusChange.id)).all()
        assert answers == [("checkin", "yes"), ("rating", "4")]
        assert (history[-1].from_status, history[-1].to_status, history[-1].actor) == (
            "new", "closed", "resident")

        # The old check-in button again: the case is already closed, nothing changes.
        await press_data(h, WARGA, checkin, yes_data)
        assert any("sudah ditutup" in (m.text or "") for m in h.server.chat(WARGA.id)[-2:])
        with app.factory() as db:
            assert len(db.scalars(select(FollowupAnswer)).all()) == 2


async def test_checkin_not_yet_then_no_reopens_for_review(
    sqlite_app: App, clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    without_case(monkeypatch)
    app = sqlite_app
    async with harness(app, clock) as h:
        await file_complaint(h)
        d = dispatcher(h)
        clock.advance(days=7)
        await d.drain()
        reply = await press(h, WARGA, "Belum")
        assert "dalam 7 hari" in (reply[0].text or "")
        first, second = rows(app, KIND_CHECKIN)
        assert first.status == "sent" and second.status == "pending"
        assert second.due_at == clock.now + timedelta(days=7)
        assert the_complaint(app).status == "new"

        clock.advance(days=7)
        await d.drain()
        assert "sudah selesai?" in (h.server.last(WARGA.id).text or "")
        reply = await press(h, WARGA, "Tidak, ada masalah")
        assert "kami buka kembali" in (reply[0].text or "")
        c = the_complaint(app)
        assert c.status == "reopened"
        with app.factory() as db:
            last = db.scalars(select(StatusChange).where(StatusChange.complaint_id == c.id)
                              .order_by(StatusChange.id.desc())).first()
        assert last is not None and "review" in (last.reason or "") and last.actor == "resident"
        assert [r.status for r in rows(app, KIND_CHECKIN)] == ["sent", "sent"]


async def test_someone_elses_checkin_button_changes_nothing(sqlite_app: App, clock: FakeClock) -> None:
    app = sqlite_app
    async with harness(app, clock) as h:
        await file_complaint(h)
        await consent(h, LAIN)
        c = the_complaint(app)
        sent = h.server.last(LAIN.id)
        await press_data(h, LAIN, sent, f"0:fu:c:{c.id}:yes")
        assert any("sudah tidak berlaku" in (m.text or "") for m in h.server.chat(LAIN.id)[-2:])
        assert the_complaint(app).status == "new"
        await press_data(h, LAIN, sent, "0:fu:c:zz:yes")  # malformed: a polite answer, no crash
        assert h.server.chat(LAIN.id)[-1].text


async def test_abandoned_survey_gets_one_reminder_and_resumes(sqlite_app: App, clock: FakeClock) -> None:
    app = sqlite_app
    async with harness(app, clock) as h:
        await consent(h, WARGA)
        await press(h, WARGA, "Nilai layanan")
        await press(h, WARGA, "Disdukcapil")
        await press(h, WARGA, "KTP Elektronik")
        for _ in range(3):
            await say(h, WARGA, "1")
        [row] = rows(app, KIND_SURVEY)
        assert row.due_at == clock.now + timedelta(hours=3)
        d = dispatcher(h)
        clock.advance(hours=2, minutes=59)
        await d.drain()
        assert "belum menyelesaikan" not in (h.server.last(WARGA.id).text or "")
        clock.advance(minutes=1)
        await d.drain()
        reminder = h.server.last(WARGA.id)
        assert "KTP Elektronik" in (reminder.text or "") and reminder.labels() == [
            "Lanjutkan", "Tidak, terima kasih"]
        resumed = await press(h, WARGA, "Lanjutkan")
        assert "(4/9)" in (resumed[-1].text or "")
        await say(h, WARGA, "1")  # answer element 4, then leave again
        clock.advance(days=2)
        await d.drain()
        assert h.server.chat(WARGA.id)[-1] is not reminder
        reminders = [m for m in h.server.chat(WARGA.id) if "belum menyelesaikan" in (m.text or "")]
        assert len(reminders) == 1  # never more than one
        with app.factory() as db:
            resp = db.scalars(select(SurveyResponse)).one()
            assert resp.status == "partial" and len(resp.answers) == 4


async def test_completed_survey_cancels_its_reminder(sqlite_app: App, clock: FakeClock) -> None:
    app = sqlite_app
    async with harness(app, clock) as h:
        await consent(h, WARGA)
        await say(h, WARGA, "/start ktp")  # the deep link opens the survey directly
        for _ in range(9):
            await say(h, WARGA, "1")
        await press(h, WARGA, "Lewati")  # no suggestion
        with app.factory() as db:
            assert db.scalars(select(SurveyResponse)).one().status == "complete"
        assert [r.status for r in rows(app, KIND_SURVEY)] == ["cancelled"]
        clock.advance(days=1)
        before = len(h.server.chat(WARGA.id))
        await dispatcher(h).drain()
        assert len(h.server.chat(WARGA.id)) == before


async def test_checkin_answered_mid_survey_returns_to_the_survey(sqlite_app: App, clock: FakeClock) -> None:
    app = sqlite_app
    async with harness(app, clock) as h:
        await file_complaint(h)
        await press(h, WARGA, "Nilai layanan")
        await press(h, WARGA, "Disdukcapil")
        await press(h, WARGA, "KTP Elektronik")
        await say(h, WARGA, "1")
        question = h.server.last(WARGA.id)
        assert "(2/9)" in (question.text or "")
        c = the_complaint(app)
        await press_data(h, WARGA, question, f"0:fu:c:{c.id}:notyet")  # the check-in's button
        after = h.server.chat(WARGA.id)[-2:]
        assert "dalam 7 hari" in (after[0].text or "")
        assert "(2/9)" in (after[1].text or "")  # the survey goes on where it was
        await say(h, WARGA, "1")
        assert "(3/9)" in (h.server.last(WARGA.id).text or "")
