"""A typed number is recorded as the answer the resident saw it beside, on every channel.

Ratings list the best answer first, so a number read as a position reversed the score
("4" stored as "Tidak sesuai"). The number is now the score shown on the choice, and every
typed answer is echoed.
"""

from __future__ import annotations

import io

from sqlalchemy import select

from bot.app import App
from bot.channels.console import ConsoleChannel
from bot.storage.models import SurveyAnswer, SurveyResponse
from tests.conftest import FakeClock
from tests.fake_telegram import User
from tests.telegram_harness import harness as tg_harness
from tests.whatsapp_harness import harness as wa_harness

WARGA = User(id=5101, first_name="Siti", last_name="Aminah", language_code="id")
SITI = "6281234500001"
LONG_DIGITS = "7" * 5000


def scores(app: App) -> dict[int, int | None]:
    with app.factory() as db:
        return {a.element: a.score for a in db.scalars(select(SurveyAnswer).order_by(SurveyAnswer.element))}


async def test_telegram_typed_digits_are_the_scores_shown(app: App, clock: FakeClock) -> None:
    async with tg_harness(app, clock) as h, h.polling():
        await h.say(WARGA, "/start")
        await h.press(WARGA, "Setuju")
        await h.say(WARGA, "/nilai")
        question = (await h.say(WARGA, "ktp"))[-1]
        assert "(1/9) Persyaratan" in (question.text or "")
        # the score is printed on each button, next to the words
        assert question.labels()[:5] == ["4. Sangat sesuai", "3. Sesuai", "2. Kurang sesuai",
                                         "1. Tidak sesuai", "Tidak tahu"]
        replies = await h.say(WARGA, "4")
        assert replies[0].text == "✅ Sangat sesuai"
        assert "(2/9)" in (replies[-1].text or "")
        replies = await h.say(WARGA, "1")
        assert replies[0].text == "✅ Tidak mudah"
        replies = await h.say(WARGA, "5")  # not a score: nothing is stored, the question again
        assert "Angka itu tidak ada di pilihan" in (replies[0].text or "")
        assert "4, 3, 2, 1" in (replies[0].text or "")
        assert "(3/9)" in (replies[-1].text or "")
        replies = await h.say(WARGA, LONG_DIGITS)
        assert "Angka itu tidak ada di pilihan" in (replies[0].text or "")
        assert "(3/9)" in (replies[-1].text or "")
        replies = await h.say(WARGA, "kurang cepat")  # typed words are echoed too
        assert replies[0].text == "✅ Kurang cepat"
        fee = h.last_question(WARGA)
        assert fee.labels()[0] == "4. Gratis"
        await h.press(WARGA, "4. Gratis")
        # a pressed button shows the same words as a typed answer, without the number
        assert fee.edits and fee.edits[-1].endswith("\n\n✅ Gratis")
    assert scores(app) == {1: 4, 2: 1, 3: 2, 4: 4}
    with app.factory() as db:
        assert db.scalars(select(SurveyResponse.status)).one() == "partial"


async def test_whatsapp_typed_digits_are_the_scores_shown(db_url: str, clock: FakeClock) -> None:
    async with wa_harness(db_url, clock) as h:
        await h.say(SITI, "halo")
        await h.tap(SITI, "Setuju")
        await h.say(SITI, "/nilai")
        question = (await h.say(SITI, "ktp"))[-1]
        titles = question.titles()
        assert titles[:4] == ["4. Sangat sesuai", "3. Sesuai", "2. Kurang sesuai", "1. Tidak sesuai"]
        replies = await h.say(SITI, "4")
        assert replies[0].text == "✅ Sangat sesuai"
        replies = await h.say(SITI, "1")
        assert replies[0].text == "✅ Tidak mudah"
        replies = await h.say(SITI, "5")
        assert "Angka itu tidak ada di pilihan" in replies[0].text
        replies = await h.say(SITI, LONG_DIGITS)
        assert "Angka itu tidak ada di pilihan" in replies[0].text
        replies = await h.say(SITI, "3")
        assert replies[0].text == "✅ Cepat"
        assert scores(h.app) == {1: 4, 2: 1, 3: 3}


class Chat:
    def __init__(self, app: App) -> None:
        self.out = io.StringIO()
        self.channel = ConsoleChannel(app.runtime, app.texts, stdin=io.StringIO(), stdout=self.out,
                                      user_id="warga-digits")

    def say(self, *lines: str) -> str:
        start = self.out.tell()
        for line in lines:
            self.channel.send(line)
        return self.out.getvalue()[start:]


def test_console_typed_digits_are_the_scores_shown(app: App) -> None:
    chat = Chat(app)
    out = chat.say("/start", "1", "/nilai", "ktp")
    assert "  4) Sangat sesuai\n  3) Sesuai\n  2) Kurang sesuai\n  1) Tidak sesuai\n  -  Tidak tahu" in out
    out = chat.say("4")
    assert "Prima: ✅ Sangat sesuai" in out
    out = chat.say("1")
    assert "Prima: ✅ Tidak mudah" in out
    out = chat.say("5")
    assert "Angka itu tidak ada di pilihan" in out and "(3/9)" in out
    out = chat.say("tidak tahu")
    assert "Prima: ✅ Tidak tahu" in out
    assert scores(app) == {1: 4, 2: 1, 3: None}


def test_console_a_number_and_words_that_disagree_record_nothing(app: App) -> None:
    """"3 kurang sesuai": 3 is Sesuai, the words are Kurang sesuai. Neither is guessed."""
    chat = Chat(app)
    chat.say("/start", "1", "/nilai", "ktp")
    out = chat.say("3 kurang sesuai")
    assert "✅" not in out and "(1/9)" in out
    out = chat.say("4. sangat sesuai")  # number and words agree
    assert "Prima: ✅ Sangat sesuai" in out
    out = chat.say("2 mantap")  # a number with words that are no answer: the number
    assert "Prima: ✅ Kurang mudah" in out
    assert scores(app) == {1: 4, 2: 2}


def test_console_a_number_starting_the_residents_own_words_is_their_text(app: App) -> None:
    """Where a question takes the resident's own words, "2 kali saya datang..." is a
    description, not the choice numbered 2 (Batal): a number with words that name no answer
    was read as that choice, which cancelled complaints and dropped suggestions."""
    chat = Chat(app)
    chat.say("/start", "1", "/lapor", "ktp")
    out = chat.say("2 kali saya datang ke kantor tapi KTP belum jadi juga")
    assert "dibatalkan" not in out and "Masalahnya termasuk jenis apa?" in out
    chat.say("1")  # Penundaan berlarut
    out = chat.say("5 november")  # a date, not the 5th choice (« Kembali)
    assert "Ada foto bukti?" in out
    with app.factory() as db:
        from bot.storage.models import ConversationSession

        state = db.scalars(select(ConversationSession)).one().state
    draft = state.get("data") or state
    assert "2 kali saya datang" in str(draft)
    chat.say("/batal", "/nilai", "akta kelahiran", *["4"] * 9)
    out = chat.say("1 loket saja yang buka, tolong ditambah")  # a suggestion, not Lewati
    assert "Lewati" not in out.split("\n")[1]
    with app.factory() as db:
        suggestion = db.scalars(select(SurveyResponse.suggestion).where(
            SurveyResponse.suggestion.is_not(None))).all()
    assert suggestion == ["1 loket saja yang buka, tolong ditambah"]


def test_console_navigation_numbers_work_in_free_text_steps(app: App) -> None:
    chat = Chat(app)
    chat.say("/start", "1", "/lapor", "ktp")
    out = chat.say("rusak")  # too short for a description: asked again
    assert "  1) « Kembali\n  2) Batal" in out
    out = chat.say("1")  # the number shown beside « Kembali
    assert "belum mengerti" not in out
    assert "Pilih instansi" in out
    chat.say("/lapor", "ktp")
    out = chat.say("2")  # the number shown beside Batal
    assert "Apa yang ingin Anda lakukan?" in out


def test_console_a_5000_digit_message_gets_an_answer_everywhere(app: App) -> None:
    chat = Chat(app)
    chat.say("/start", "1")
    out = chat.say(LONG_DIGITS)  # at the menu (free text)
    assert "Prima:" in out and "gangguan" not in out
    assert "Apa yang ingin Anda lakukan?" in out
    chat.say("/lapor", "ktp")
    out = chat.say(LONG_DIGITS)  # a description made only of digits
    assert "Prima:" in out and "gangguan" not in out
