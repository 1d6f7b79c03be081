"""Talking with residents as a helpful clerk would, through the real channels.

English service names, nothing-fits answers with a path for unlisted problems, asking for a
person, greetings and thanks, /status with a ticket, stale buttons in the chosen language,
the order of the survey-escalation notice, /batal wording, and acknowledgements.
"""

from __future__ import annotations

from sqlalchemy import select

from bot.app import App
from bot.storage.models import Complaint, Service
from tests.case_support import consent, press, say
from tests.conftest import FakeClock
from tests.fake_telegram import User
from tests.telegram_harness import harness
from tests.whatsapp_harness import harness as wa_harness

WARGA = User(id=5201, first_name="Rina", last_name="Sari", language_code="id")
TOURIST = User(id=5202, first_name="Anna", last_name="Berg", language_code="en")
SITI = "6281234500002"


def texts(sent: list) -> list[str]:
    return [m.text or "" for m in sent]


async def test_english_names_from_the_bots_own_examples(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        await say(h, TOURIST, "/start")
        await press(h, TOURIST, "I agree")
        ask = await say(h, TOURIST, "/rate")
        assert "birth certificate, vehicle tax" in (ask[-1].text or "")
        survey = await say(h, TOURIST, "birth certificate")
        assert "Birth Certificate" in (survey[-1].text or "") and "(1/9)" in (survey[-1].text or "")
        await say(h, TOURIST, "/menu")
        await say(h, TOURIST, "/rate")
        assert "Annual Motor Vehicle Tax" in ((await say(h, TOURIST, "vehicle tax"))[-1].text or "")
        await say(h, TOURIST, "/menu")
        await say(h, TOURIST, "/rate")
        assert "Land and Building Tax" in ((await say(h, TOURIST, "property tax"))[-1].text or "")
        await say(h, TOURIST, "/menu")
        await say(h, TOURIST, "/rate")
        hospital = await say(h, TOURIST, "hospital")  # the hospital's services, in English
        assert hospital[-1].labels()[:2] == ["1. Outpatient Clinic", "2. Emergency Room (IGD)"]


async def test_nothing_fits_offers_the_agencies_and_an_other_path(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        await consent(h, WARGA)
        await say(h, WARGA, "/lapor")
        replies = await say(h, WARGA, "jalan rusak depan rumah")
        assert "tidak ada di daftar layanan kami" in (replies[0].text or "")
        assert "Setda" in (replies[0].text or "")
        question = replies[-1]
        assert question.labels()[0] == "1. Disdukcapil"
        assert "7. Lainnya / tidak ada di daftar" in question.labels()
        replies = await say(h, WARGA, "sim")  # no guesses either ("sim" is not "sip dokter")
        assert "tidak ada di daftar layanan kami" in (replies[0].text or "")
        assert replies[-1].labels() == question.labels()
        replies = await press(h, WARGA, "Lainnya / tidak ada di daftar")
        assert "Ceritakan apa yang terjadi" in (replies[-1].text or "")
        await say(h, WARGA, "Jalan di depan rumah kami berlubang besar sejak dua bulan")
        await press(h, WARGA, "Lainnya")
        await press(h, WARGA, "Hari ini")
        await press(h, WARGA, "Lewati")
        located = await say(h, WARGA, location={"latitude": -1.4852, "longitude": 102.119})
        assert located[0].text == "📍 Lokasi diterima (-1.48520, 102.11900)."
        await press(h, WARGA, "Lewati")  # the public map question: skipped means no
        await press(h, WARGA, "Tidak")
        summary = await press(h, WARGA, "Ya")
        assert "Layanan lain (tidak ada di daftar)" in (summary[-1].text or "")
        await press(h, WARGA, "Kirim")
    with app.factory() as db:
        complaint = db.scalars(select(Complaint)).one()
        assert db.get(Service, complaint.service_id).code == "lainnya"  # type: ignore[union-attr]


async def test_a_typed_service_is_confirmed_and_bpjs_at_the_pick_shows_agencies(
        app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        await consent(h, WARGA)
        await say(h, WARGA, "/lapor")
        replies = await say(h, WARGA, "akte lahir anak saya")
        assert replies[0].text == "Baik, pengaduan tentang Akta Kelahiran, Disdukcapil."
        await say(h, WARGA, "/batal")
        await say(h, WARGA, "/lapor")
        pick = await say(h, WARGA, "akta")
        assert pick[-1].text == "Maksud Anda yang mana?"
        replies = await say(h, WARGA, "bpjs")
        assert "tidak ada di daftar layanan kami" in (replies[0].text or "")
        assert replies[-1].labels()[0] == "1. Disdukcapil"  # the agencies, not the old guesses


async def test_asking_for_a_person_in_other_words(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        await consent(h, WARGA)
        replies = await say(h, WARGA, "mau bicara sama orang")
        assert "instansi mana" in (replies[-1].text or "").lower() or "petugas" in (replies[-1].text or "")
        assert "1. Disdukcapil" in replies[-1].labels()


async def test_greetings_and_thanks_are_answered_and_the_question_shown(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        await consent(h, WARGA)
        replies = await say(h, WARGA, "halo")
        assert texts(replies)[0].startswith("Halo! Saya Prima")
        assert replies[-1].text == "Apa yang ingin Anda lakukan?"
        replies = await say(h, WARGA, "selamat pagi")
        assert texts(replies)[0].startswith("Selamat pagi!")
        await say(h, WARGA, "/nilai")
        await say(h, WARGA, "ktp")
        replies = await say(h, WARGA, "terima kasih pak")  # in the middle of a survey
        assert texts(replies)[0].startswith("Sama-sama")
        assert "(1/9)" in (replies[-1].text or "")
        assert "belum mengerti" not in " ".join(texts(replies))


async def test_status_with_a_ticket_looks_it_up(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        await consent(h, WARGA)
        await say(h, WARGA, "/lapor")
        await say(h, WARGA, "ktp")
        await say(h, WARGA, "Petugas tidak datang, loket tutup sepanjang pagi")
        await press(h, WARGA, "Penundaan berlarut")
        await press(h, WARGA, "Hari ini")
        await press(h, WARGA, "Lewati")
        await press(h, WARGA, "Lewati")
        await press(h, WARGA, "Tidak")
        await press(h, WARGA, "Ya")
        await press(h, WARGA, "Kirim")
        with app.factory() as db:
            ticket = db.scalars(select(Complaint.ticket)).one()
        replies = await say(h, WARGA, f"/status {ticket.lower()}")
        assert ticket in (replies[0].text or "") and "Diterima" in (replies[0].text or "")
        replies = await say(h, WARGA, "/status ZZZZ-9999")
        assert "tidak ditemukan" in (replies[0].text or "")


async def test_stale_rating_button_is_followed_by_the_question_in_the_chosen_language(
        app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        await say(h, TOURIST, "/start")  # the phone says English...
        await press(h, TOURIST, "I agree")
        await say(h, TOURIST, "/language")
        await press(h, TOURIST, "Bahasa Indonesia")  # ...but the resident chose Indonesian
        await say(h, TOURIST, "/nilai")
        first = (await say(h, TOURIST, "ktp"))[-1]
        old_data = first.data_for("Sangat sesuai")
        await press(h, TOURIST, "Sangat sesuai")
        before = len(h.server.callback_answers)
        stale = h.server.press_update(TOURIST, first, data=old_data)
        chat_before = len(h.server.chat(TOURIST.id))
        await h.feed(stale)  # the old question's button again
        replies = h.server.chat(TOURIST.id)[chat_before:]
        assert replies[0].text == "Tombol ini sudah tidak berlaku."
        assert "(2/9)" in (replies[-1].text or "") and replies[-1].buttons
        assert h.server.callback_answers[before:][-1]["text"] == "Tombol ini sudah tidak berlaku."


async def test_escalation_notice_comes_before_the_menu(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        await consent(h, WARGA)
        await say(h, WARGA, "/nilai")
        await say(h, WARGA, "pajak motor")  # not free by law: no fee question after the thanks
        for _ in range(9):
            await say(h, WARGA, "1")
        replies = await press(h, WARGA, "Lewati")  # no suggestion
        said = texts(replies)
        assert said[0].startswith("Terima kasih")
        assert said[1].startswith("Penilaian Anda menunjukkan pengalaman yang buruk")
        # a first survey ends with the respondent profile (flows/steps/profile.py), after the notice
        assert said[2].startswith("Terakhir, 4 pertanyaan singkat") and said[-1].startswith("Profil 1/4")


async def test_cancel_says_only_what_is_true(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        await consent(h, WARGA)
        await say(h, WARGA, "/nilai")
        await say(h, WARGA, "ktp")
        replies = await say(h, WARGA, "/batal")  # nothing answered yet
        assert replies[0].text == "Baik, dibatalkan."
        await say(h, WARGA, "/nilai")
        await say(h, WARGA, "ktp")
        await say(h, WARGA, "4")
        replies = await say(h, WARGA, "/batal")
        assert replies[0].text == "Dibatalkan. Jawaban yang sudah Anda kirim tetap tersimpan."


async def test_whatsapp_english_and_not_found(db_url: str, clock: FakeClock) -> None:
    async with wa_harness(db_url, clock) as h:
        await h.say(SITI, "halo")
        await h.tap(SITI, "English")
        await h.tap(SITI, "I agree")
        await h.say(SITI, "/rate")
        replies = await h.say(SITI, "family card")
        assert "Family Card (KK)" in replies[-1].text
        await h.say(SITI, "/complaint")
        replies = await h.say(SITI, "damaged road")
        assert "is not in our list of services" in replies[0].text
        assert "Other / not listed" in " ".join([*replies[-1].titles(), replies[-1].text or ""])
