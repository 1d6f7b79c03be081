"""The Telegram channel end to end: aiogram's real Bot, long polling, a fake Bot API over HTTP."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.app import App
from bot.models import Complaint, Contact, InboundEvent, SurveyAnswer, SurveyResponse
from tests.conftest import FakeClock
from tests.fake_telegram import User
from tests.telegram_harness import harness

WARGA = User(id=5001, first_name="Siti", last_name="Aminah", language_code="id")


async def test_survey_by_buttons_and_typed_text(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h, h.polling():
        first = await h.say(WARGA, "/start")
        assert first[-1].labels() == ["Setuju", "Tidak setuju", "English"]
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
        assert sorted(a.score for a in resp.answers) == [4] * 9
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
