"""Defects a tester found using the bot as a resident, each pinned through the real runtime.

English names in queued messages and digests, English bribery words, photos kept when a
complaint is edited, an honest timeout for a complaint draft, agency names typed at the menu,
the ways residents write "don't know", /status and "Data saya" for "talk to a person"
requests, and a few wording details.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.app import App
from bot.desk import intake
from bot.outbox.followups import KIND_CHECKIN, KIND_SURVEY
from bot.storage.models import OutboxMessage
from tests.conftest import FakeClock
from tests.test_console_e2e import Chat

ENGLISH = ["/start", "1", "5", "2"]  # agree, then Language -> English


def payload_texts(app: App, kind: str) -> list[str]:
    with app.factory() as db:
        return [str(r.payload.get("text", "")) for r in
                db.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind))]


def test_queued_english_messages_name_the_service_in_english(
        sqlite_app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(intake, "on_complaint", lambda *args, **kwargs: None)  # the blind check-in
    chat = Chat(sqlite_app)
    chat.say(*ENGLISH, "1", "1", "1", "4")  # rate KTP, one answer, then leave
    [reminder] = payload_texts(sqlite_app, KIND_SURVEY)
    assert "rating Electronic ID Card (KTP)" in reminder and "KTP Elektronik" not in reminder
    chat.say("/menu", "2", "1", "1", "The counter was closed all day without any notice", "11",
             "1", "1", "1", "2", "1", "1")
    [checkin] = payload_texts(sqlite_app, KIND_CHECKIN)
    assert "about Electronic ID Card (KTP)" in checkin and "KTP Elektronik" not in checkin


def test_the_english_digest_names_services_in_english(app: App) -> None:
    from datetime import UTC, datetime

    from bot.reports.digest.data import collect, find_agency
    from bot.reports.digest.text import render_text
    from tests.digest_data import add_complaint, add_response

    monday = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)
    add_response(app, "ktp", monday, [4] * 9)
    add_complaint(app, "ktp", monday, "Antrean sangat panjang dan tidak ada nomor urut")
    with app.factory() as db:
        data = collect(db, find_agency(db, "disdukcapil"), "2026-W47")
    en, id_ = render_text(data, "en"), render_text(data, "id")
    assert "• Electronic ID Card (KTP):" in en and "By service: Electronic ID Card (KTP) 1." in en
    assert "KTP Elektronik" not in en
    assert "• KTP Elektronik:" in id_


def test_an_english_bribery_report_goes_straight_to_staff(app: App) -> None:
    out = Chat(app).say(*ENGLISH, "2", "1", "1", "The clerk wanted a bribe before printing my ID card",
                        "11", "1", "1", "1", "2", "1", "1")
    assert "has gone straight to staff for review" in out


COMPLAINT_TO_PHOTOS = ["/start", "1", "2", "pajak motor",
                       "Petugas loket meminta uang tambahan tanpa kuitansi resmi", "4", "1"]


def test_photos_already_sent_are_kept_until_removed(app: App) -> None:
    chat = Chat(app)
    assert "Foto diterima (2)" in chat.say(*COMPLAINT_TO_PHOTOS, "#foto a.jpg", "#foto b.jpg")
    chat.say("kembali")  # back to "Kapan", and answer it again
    again = chat.say("1")
    assert "tetap tersimpan (2)" in again and "Hapus foto" in again
    summary = chat.say("1", "1", "2", "1")  # Lanjut, no location, not confidential, may contact
    assert "Foto: 2" in summary
    chat.say("2", "5")  # Ubah -> Foto: the photos are still there
    assert "Foto: 2" in chat.say("Lanjut")
    chat.say("2", "5", "Hapus foto")  # removed only when asked
    assert "Foto: 0" in chat.say("Lewati")


def test_an_expired_complaint_draft_is_not_said_to_be_kept(app: App, clock: FakeClock) -> None:
    chat = Chat(app)
    chat.say(*COMPLAINT_TO_PHOTOS)
    clock.advance(hours=3)
    out = chat.say("1")
    assert "Pengaduan yang belum dikirim tidak tersimpan" in out and "tetap tersimpan" not in out


def test_an_unknown_qr_code_is_said_before_the_menu(app: App) -> None:
    chat = Chat(app)
    first = chat.say("/start xyz", "1")  # a new resident: consent first
    assert "tidak kami kenali" in first
    again = chat.say("/start xyz")
    assert "tidak kami kenali" in again and "Nilai layanan" in again
    assert "tidak kami kenali" not in chat.say("/start")


def test_an_agency_or_a_typo_typed_at_the_menu_is_understood(app: App) -> None:
    chat = Chat(app)
    out = chat.say("/start", "1", "rsud")
    assert "RSUD H. Hanafie Muara Bungo: Anda ingin menilai salah satu layanannya" in out
    assert "Rawat Jalan (Poliklinik)" in chat.say("1")  # Nilai layanan: the hospital's services
    out = chat.say("/menu", "samsat", "2")
    assert "Pajak Kendaraan" in out and "belum mengerti" not in out
    assert "RSUD H. Hanafie" in chat.say("/menu", "hospital")
    assert "KTP Elektronik: Anda ingin menilai layanan ini" in chat.say("/menu", "ktpp")
    # a typed service is confirmed with one pair of brackets at most
    en = Chat(app, "warga-2").say(*ENGLISH, "2", "ktp")
    assert "All right, a complaint about Electronic ID Card (KTP), Disdukcapil." in en


DONT_KNOW = ["gak tau", "tdk tahu", "ga tahu", "nggak tahu", "ndak tahu", "kurang tahu", "g tau",
             "dont know", "not sure"]


def test_the_ways_residents_write_dont_know_and_a_bracketed_score(app: App) -> None:
    from bot.storage.models import SurveyAnswer

    chat = Chat(app)
    chat.say("/start", "1", "1", "1", "1")  # Nilai layanan -> Disdukcapil -> KTP Elektronik
    for n, said in enumerate(DONT_KNOW[:8], start=1):
        out = chat.say(said)
        assert "✅ Tidak tahu" in out and f"({n + 1}/9)" in out, said
    out = chat.say("(3)")
    assert "✅ Baik" in out and "ada saran" in out  # element 9 scored 3 ("Baik")
    with app.factory() as db:
        scores = sorted((a.element, a.score) for a in db.scalars(select(SurveyAnswer)))
    assert scores == [*((e, None) for e in range(1, 9)), (9, 3)]
    assert "Angka itu tidak ada di pilihan" in chat.say("4")  # at the suggestion: not a suggestion
    en = Chat(app, "warga-2").say(*ENGLISH, "1", "1", "1", "not sure")
    assert "✅ Don't know" in en and "(2/9)" in en
    assert "Angka itu" not in chat.say("Antrean perlu nomor urut")


def test_a_talk_to_a_person_request_in_status_and_in_my_data(app: App) -> None:
    import re

    chat = Chat(app)
    opened = chat.say("/start", "1", "7", "4")  # Bicara dengan petugas -> RSUD
    ticket = re.search(r"nomor ([A-Z0-9]{4}-[A-Z0-9]{4})", opened)
    assert ticket is not None, opened
    chat.say("Saya ingin bertanya jadwal dokter anak minggu depan")
    status = chat.say(f"/status {ticket.group(1)}")
    assert "Layanan: -" not in status and "RSUD H. Hanafie Muara Bungo" in status
    data = chat.say("/menu", "4")
    assert f"• {ticket.group(1)}: RSUD, " in data and "1 pesan Anda, 0 balasan petugas" in data


def test_a_message_to_staff_that_names_a_service_reaches_staff(app: App) -> None:
    """Asked to write to staff, a resident of Disdukcapil naturally writes "KTP": that message is
    for staff, not the start of a survey of the KTP service."""
    chat = Chat(app)
    opened = chat.say("/start", "1", "7", "1")  # Bicara dengan petugas -> Disdukcapil
    assert "Silakan tulis pertanyaan" in opened or "Tulis pesan Anda" in opened
    out = chat.say("Halo, saya mau tanya syarat KTP hilang")
    assert "menilai layanan ini atau membuat pengaduan" not in out
    assert "diteruskan ke petugas" in out
    data = chat.say("/menu", "4")
    assert "1 pesan Anda, 0 balasan petugas" in data


@pytest.mark.parametrize(("pressed", "shown"), [
    ("1", "Waktu: 1 Desember 2026"),
    ("3", "Waktu: 24 November - 1 Desember 2026"),
    ("4", "Waktu: sebelum 24 November 2026"),
])
def test_the_summary_shows_dates_as_people_write_them(
        sqlite_app: App, clock: FakeClock, pressed: str, shown: str) -> None:
    clock.now = clock.now.replace(year=2026, month=12, day=1, hour=3)
    out = Chat(sqlite_app).say(*COMPLAINT_TO_PHOTOS[:-1], pressed, "1", "1", "2", "1")
    assert shown in out and ".." not in out and "2026-1" not in out


def test_a_range_inside_one_month_names_the_month_once() -> None:
    from tests.engine_driver import Driver

    d = Driver(language="en")  # Monday 23 November 2026
    d.onboard()
    d.text("/lapor")
    d.text("ktp")
    d.text("The counter was closed all day without any notice")
    d.press("lainnya")
    d.press("week")
    d.press("done")
    d.press("skip")
    d.press("no")
    summary = d.press("yes")[-1].text
    assert "When: 16-23 November 2026" in summary


def test_a_ticket_among_words_at_the_menu_is_looked_up(app: App) -> None:
    """"cek tiket k7qm 3xhd" at the menu looked only for the status question; the ticket in it
    is read as residents write it, while plain words and other numbers are never a ticket."""
    import re

    from flows.helpers.tickets import find_ticket

    chat = Chat(app)
    opened = chat.say("/start", "1", "7", "4")  # Bicara dengan petugas -> RSUD
    ticket = re.search(r"nomor ([A-Z0-9]{4})-([A-Z0-9]{4})", opened)
    assert ticket is not None, opened
    status = chat.say("/menu", f"cek tiket {ticket.group(1).lower()} {ticket.group(2).lower()}")
    if any(ch.isdigit() for ch in ticket.group(0)):  # tickets among words need a digit (1 in 20 has none)
        assert f"{ticket.group(1)}-{ticket.group(2)}" in status and "RSUD H. Hanafie Muara Bungo" in status
    assert find_ticket("cek tiket k7qm 3xhd") == "K7QM-3XHD"
    assert find_ticket("status K7QM-3XHD ya") == "K7QM-3XHD"
    assert find_ticket("ktp 12345") is None and find_ticket("jam 10.00 tadi") is None
    assert find_ticket("mau lapor pajak motor") is None
