"""The Telegram channel end to end: aiogram's real Bot, long polling, a fake Bot API over HTTP."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.app import App
from bot.storage.models import Complaint, Contact, InboundEvent, SurveyAnswer, SurveyResponse
from tests.conftest import FakeClock
from tests.fake_telegram import User
from tests.telegram_harness import harness

WARGA = User(id=5001, first_name="Siti", last_name="Aminah", language_code="id")


async def test_survey_by_buttons_and_typed_text(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h, h.polling():
        first = await h.say(WARGA, "/start")
        assert first[-1].labels() == ["1. Setuju", "2. Tidak setuju", "3. English"]
        await h.press(WARGA, "Setuju")
        # the consent question now shows the answer and has no keyboard left
        consent = h.server.chat(WARGA.id)[1]
        assert consent.text is not None and consent.text.endswith("✅ Setuju")
        assert consent.reply_markup is None
        await h.press(WARGA, "Nilai layanan")
        await h.press(WARGA, "Disdukcapil")
        await h.press(WARGA, "KTP Elektronik")
        for _ in range(9):
            question = h.last_question(WARGA)
            await h.press(WARGA, question.labels()[0])  # the best score is listed first
        typed = "Loketnya <b>cepat</b> & ramah"
        replies = await h.say(WARGA, typed)
        assert any("Terima kasih" in (m.text or "") for m in replies)

    with app.factory() as db:
        resp = db.scalars(select(SurveyResponse)).one()
        assert resp.status == "complete" and resp.channel == "telegram"
        assert resp.suggestion == typed  # stored as typed, not escaped or stripped
        assert [a.score for a in resp.answers] == [4] * 9
        contact = db.scalars(select(Contact)).one()
        assert contact.external_id == str(WARGA.id) and contact.display_name == "Siti Aminah"
    # plain text everywhere: no parse_mode, so typed markup can never break a message
    assert all("parse_mode" not in p for p in h.server.calls("sendMessage"))
    assert all("parse_mode" not in p for p in h.server.calls("editMessageText"))
    # every button press was answered
    assert len(h.server.callback_answers) == 13


async def test_commands_registered_in_both_languages(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h, h.polling():
        pass
    cmds = h.server.commands
    assert {c["command"] for c in cmds["id"]} >= {"start", "batal", "bantuan", "datasaya", "nilai"}
    assert {c["command"] for c in cmds["en"]} >= {"start", "cancel", "help", "mydata"}
    assert cmds[""] == cmds["id"]  # no language_code: Indonesian
    en = {c["command"]: c["description"] for c in cmds["en"]}
    assert en["cancel"] == "Cancel this step"


async def test_complaint_with_photo_and_location(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h, h.polling():
        await h.say(WARGA, "/start")
        await h.press(WARGA, "Setuju")
        await h.press(WARGA, "Buat pengaduan")
        await h.press(WARGA, "Disdukcapil")
        await h.press(WARGA, "KTP Elektronik")
        await h.say(WARGA, "Petugas minta uang Rp50.000 untuk cetak KTP <script>")
        await h.press(WARGA, "Permintaan imbalan uang/barang (pungli)")
        await h.press(WARGA, "Hari ini")
        photo = [{"file_id": "small", "file_unique_id": "s1", "width": 90, "height": 90},
                 {"file_id": "AgACbig", "file_unique_id": "b1", "width": 1280, "height": 960}]
        await h.say(WARGA, photo=photo, caption="kuitansi")
        await h.press(WARGA, "Lanjut")
        await h.say(WARGA, location={"latitude": -1.4852, "longitude": 102.1154})
        await h.press(WARGA, "Ya")   # the location may be on the public map
        await h.press(WARGA, "Ya")   # keep my identity confidential
        await h.press(WARGA, "Ya")   # you may contact me
        done = await h.press(WARGA, "Kirim")
        assert any("PRM-" in (m.text or "") or "tiket" in (m.text or "").lower() for m in done)

    with app.factory() as db:
        complaint = db.scalars(select(Complaint)).one()
        assert complaint.channel == "telegram" and complaint.category == "pungli"
        assert complaint.description == "Petugas minta uang Rp50.000 untuk cetak KTP <script>"
        assert complaint.attachments["photos"] == [{
            "type": "photo", "file_id": "AgACbig", "file_unique_id": "b1", "width": 1280,
            "height": 960, "caption": "kuitansi"}]
        assert (complaint.latitude, complaint.longitude) == (-1.4852, 102.1154)
        assert complaint.attachments["location_public"] is True
        assert complaint.confidential and complaint.contact_consent
        assert complaint.ticket in (done[-2].text or "") + (done[-1].text or "")
        # one row per update, however many replies it caused
        assert db.scalar(select(func.count()).select_from(InboundEvent)) == 15


async def test_english_telegram_user_starts_in_english(app: App, clock: FakeClock) -> None:
    tourist = User(id=5002, first_name="Ann", language_code="en-GB")
    async with harness(app, clock) as h, h.polling():
        first = await h.say(tourist, "/start")
        assert first[-1].labels()[:2] == ["1. I agree", "2. I do not agree"]
    with app.factory() as db:
        assert db.scalars(select(Contact.language)).one() == "en"


async def test_unsupported_messages_get_a_polite_answer(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h, h.polling():
        await h.say(WARGA, "/start")
        await h.press(WARGA, "Setuju")
        sticker = {"file_id": "st", "file_unique_id": "st1", "type": "regular", "width": 512,
                   "height": 512, "is_animated": False, "is_video": False}
        replies = await h.say(WARGA, sticker=sticker)
        assert "hanya bisa membaca teks" in (replies[0].text or "")


async def test_groups_only_answer_commands_addressed_to_the_bot(app: App, clock: FakeClock) -> None:
    group = -100777
    async with harness(app, clock) as h, h.polling():
        for text in ("/start", "halo semua", "/start@OtherBot"):
            upd = h.server.message(WARGA, text, chat_id=group, chat_type="supergroup")
            await h.processed(upd)
        assert h.server.chat(group) == []
        upd = h.server.message(WARGA, "/start@PrimaTestBot", chat_id=group, chat_type="supergroup")
        await h.processed(upd)
        assert h.server.chat(group)[-1].labels()[0] == "1. Setuju"
    with app.factory() as db:
        assert db.scalar(select(func.count()).select_from(InboundEvent)) == 1


async def test_polling_survives_a_bot_api_restart(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h, h.polling():
        await h.say(WARGA, "/start")
        await h.server.stop()  # the Bot API goes away; getUpdates fails and backs off
        await h.server.start()  # same port, same pending state
        replies = await h.say(WARGA, "/bantuan")
        assert replies, "no answer after the Bot API came back"


async def test_answers_stored_once_when_an_update_is_redelivered(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        await h.channel.setup()
        await h.feed(h.server.message_update(WARGA, "/start"))
        await h.feed(h.server.press_update(WARGA, h.last_question(WARGA), "Setuju"))
        await h.feed(h.server.press_update(WARGA, h.last_question(WARGA), "Nilai layanan"))
        await h.feed(h.server.press_update(WARGA, h.last_question(WARGA), "Disdukcapil"))
        await h.feed(h.server.press_update(WARGA, h.last_question(WARGA), "KTP Elektronik"))
        press = h.server.press_update(WARGA, h.last_question(WARGA), "Sangat sesuai")
        await h.feed(press)
        sent_before = len(h.server.sent)
        await h.feed(press)  # Telegram delivers the same update again
        assert len(h.server.sent) == sent_before
        assert len(h.server.callback_answers) == 6  # the duplicate is still answered
    # ... and again after a restart: a new process, the same database
    async with harness(app, clock) as h2:
        await h2.feed(press)
        assert h2.server.sent == []
    with app.factory() as db:
        assert db.scalar(select(func.count()).select_from(SurveyAnswer)) == 1
