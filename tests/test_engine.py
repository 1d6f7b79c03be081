"""The pure engine, step by step: what the resident sees and what would be stored."""

from __future__ import annotations

import json

from flows.engine import clean_text, match_choice, parse_command
from flows.helpers.skm import ELEMENTS
from flows.machine.types import Choice, Event, UpsertSurvey
from tests.engine_driver import Driver


def texts(replies: list) -> str:
    return "\n---\n".join(r.text for r in replies)


def test_first_contact_shows_consent_and_menu_after_yes() -> None:
    d = Driver()
    replies = d.text("halo")
    assert "Halo! Saya Prima" in replies[0].text
    assert "UU 27/2022" in replies[1].text
    assert [c.id for c in replies[1].choices] == ["agree", "decline", "lang:en"]
    replies = d.press("Setuju")
    assert d.consented
    assert "Persetujuan Anda sudah dicatat" in replies[0].text
    assert [c.label for c in replies[-1].choices][:3] == ["Nilai layanan", "Buat pengaduan", "Cek status pengaduan"]


def test_declining_consent_stores_nothing_and_start_asks_again() -> None:
    d = Driver()
    d.text("/start")
    replies = d.press("decline")
    assert "Kami tidak menyimpan data Anda" in replies[0].text
    assert not d.consented
    assert len(replies) == 1  # no menu behind a refusal
    replies = d.text("1")  # typing anything shows the consent question again
    assert replies[-1].choices[0].id == "agree"
    replies = d.text("/start")
    assert "UU 27/2022" in replies[-1].text


def test_consent_screen_can_switch_to_english() -> None:
    d = Driver()
    d.text("/start")
    replies = d.press("English")
    assert d.language == "en"
    assert "Do you agree?" in replies[-1].text


def answer_all(d: Driver, picks: list[str]) -> None:
    for pick in picks:
        d.text(pick)


def test_full_survey_with_buttons_numbers_labels_and_skip() -> None:
    d = Driver()
    d.onboard()
    d.press("survey")
    replies = d.text("pajak motor")
    assert "Pajak Kendaraan Bermotor Tahunan" in replies[-1].text
    assert "(1/9) Persyaratan" in replies[-1].text
    d.press("4")  # button: Sangat sesuai
    d.text("3")  # typed number: the score shown beside Mudah (3)
    d.text("kurang cepat")  # typed label (2)
    d.press("skip")  # Tidak tahu
    for _ in range(5):
        d.text("4")
    replies = d.text("Loket tambahan di pagi hari")
    assert "Terima kasih" in replies[0].text
    survey = next(iter(d.surveys.values()))
    assert survey.status == "complete"
    assert survey.service == "pkb"
    assert survey.answers == {1: 4, 2: 3, 3: 2, 4: None, 5: 4, 6: 4, 7: 4, 8: 4, 9: 4}
    assert survey.suggestion == "Loket tambahan di pagi hari"
    assert d.state["flow"] == "menu"


def test_every_answer_is_saved_as_it_comes_and_back_replaces_it() -> None:
    d = Driver()
    d.onboard()
    d.press("survey")
    d.text("ktp")
    d.text("4")
    d.text("4")
    upserts = [e for e in d.effects if isinstance(e, UpsertSurvey)]
    assert upserts[-1].answers == {1: 4, 2: 4} and upserts[-1].status == "partial"
    replies = d.press("nav:back")
    assert "(2/9)" in replies[-1].text
    d.text("1")  # now "Tidak mudah" (1)
    upserts = [e for e in d.effects if isinstance(e, UpsertSurvey)]
    assert upserts[-1].answers == {1: 4, 2: 1}


def test_cancel_keeps_partial_answers_and_returns_to_menu() -> None:
    d = Driver()
    d.onboard()
    d.press("survey")
    d.text("akta lahir")
    d.text("4")
    replies = d.text("/batal")
    assert "Dibatalkan" in replies[0].text
    assert replies[-1].text == "Apa yang ingin Anda lakukan?"
    survey = next(iter(d.surveys.values()))
    assert survey.status == "partial" and survey.answers == {1: 4}


def test_ambiguous_service_asks_with_buttons() -> None:
    d = Driver()
    d.onboard()
    d.press("survey")
    replies = d.text("pajak")
    labels = [c.label for c in replies[-1].choices]
    assert replies[-1].text == "Maksud Anda yang mana?"
    assert any("PBB" in label for label in labels) and any("Kendaraan" in label for label in labels)
    replies = d.press("s:pbb")
    assert "(1/9)" in replies[-1].text


def test_agency_name_lists_its_services_and_unknown_text_is_answered() -> None:
    d = Driver()
    d.onboard()
    d.press("survey")
    replies = d.text("samsat")
    assert "Samsat Kabupaten Bungo" in replies[-1].text
    assert "s:pkb" in [c.id for c in replies[-1].choices]
    d.press("nav:back")
    replies = d.text("xyzzy qwerty")
    assert "tidak ada di daftar layanan" in replies[0].text
    assert replies[-1].choices[0].id == "a:disdukcapil"


def complaint_until_confirm(d: Driver) -> list:
    d.press("complaint")
    d.text("ktp")
    d.text("Petugas meminta uang 50 ribu untuk mempercepat cetak KTP saya")
    d.press("pungli")
    d.press("today")
    d.send(Event("photo", "p1", media={"type": "photo", "file_id": "F1"}))
    d.press("done")
    d.send(Event("location", "l1", location=(-1.4852, 102.1190)))
    d.press("yes")  # may be shown on the public map
    d.press("yes")  # confidential
    return d.press("no")  # may not be contacted


def test_complaint_end_to_end_with_photo_location_edit_and_ticket() -> None:
    d = Driver()
    d.onboard()
    replies = complaint_until_confirm(d)
    summary = replies[-1].text
    assert "KTP Elektronik" in summary and "pungli" in summary
    assert "Waktu: 23 November 2026" in summary  # today in Asia/Jakarta
    assert "Foto: 1" in summary and "-1.48520, 102.11900" in summary
    assert "Identitas dirahasiakan: Ya" in summary
    d.press("edit")
    d.press("category")
    replies = d.press("penundaan")
    assert "Penundaan berlarut" in replies[-1].text  # straight back to the summary
    replies = d.press("send")
    assert "Nomor tiket: T" in replies[0].text
    (data,) = d.complaints.values()
    assert data["category"] == "penundaan"
    assert data["photos"] == [{"type": "photo", "file_id": "F1"}]
    assert data["location"] == [-1.4852, 102.119] and data["location_public"] is True
    assert data["confidential"] is True and data["contact_ok"] is False
    assert d.state["flow"] == "menu"


def test_complaint_description_too_short_or_too_long_is_asked_again() -> None:
    d = Driver()
    d.onboard()
    d.press("complaint")
    d.text("kk")
    replies = d.text("jelek")
    assert "lebih lengkap" in replies[0].text and "Ceritakan" in replies[-1].text
    replies = d.text("x" * 10_000)
    assert "10000 karakter" in replies[0].text and "Ceritakan" in replies[-1].text
    assert d.state["step"] == "description"


def test_unexpected_inputs_get_a_reply_and_the_question_again() -> None:
    d = Driver()
    d.onboard()
    d.press("survey")
    d.text("ktp")
    q_before = d.state["q"]
    for event, expected in [
        (Event("photo", "x1", media={"file_id": "P"}), "perlu jawaban teks"),
        (Event("unsupported", "x2"), "hanya bisa membaca"),
        (Event("text", "x3", text="👍👍"), "belum mengerti"),
        (Event("location", "x4", location=(1.0, 2.0)), "Lokasi belum diperlukan"),
    ]:
        replies = d.send(event)
        assert expected in replies[0].text
        assert "(1/9)" in replies[-1].text
    assert d.state["q"] > q_before
    assert d.state["data"]["answers"] == {}


def test_control_characters_are_ignored() -> None:
    assert clean_text("\x00\x1b1\u200b ") == "1"
    d = Driver()
    d.onboard()
    replies = d.text("\x00\x071\x1f")
    assert "Layanan mana" in replies[-1].text


def test_stale_and_forged_buttons_change_nothing() -> None:
    d = Driver()
    d.onboard()
    d.press("survey")
    d.text("ktp")
    old_q = d.last_question().q
    d.press("4")
    state = json.dumps(d.state, sort_keys=True)
    replies = d.send(Event("choice", "s1", choice="4", q=old_q))
    assert "sudah tidak berlaku" in replies[0].text
    replies = d.send(Event("choice", "s2", choice="drop-table", q=d.state["q"]))
    assert "sudah tidak berlaku" in replies[0].text
    after = json.loads(json.dumps(d.state, sort_keys=True))
    before = json.loads(state)
    for key in ("flow", "step", "data"):
        assert after[key] == before[key]


def test_idle_session_expires_politely() -> None:
    d = Driver()
    d.onboard()
    d.press("survey")
    d.text("ktp")
    d.later(minutes=31)
    replies = d.text("1")
    assert "tidak aktif" in replies[0].text
    assert replies[-1].text == "Apa yang ingin Anda lakukan?"


def test_help_and_language_switch_keep_the_place() -> None:
    d = Driver()
    d.onboard()
    d.press("survey")
    d.text("ktp")
    d.text("1")
    replies = d.text("/bantuan")
    assert "/batal" in replies[0].text and "(2/9)" in replies[-1].text
    d.text("/bahasa")
    replies = d.press("English")
    assert "Language set to English" in replies[0].text
    assert "(2/9) System, mechanism and procedure" in replies[-1].text
    assert d.language == "en"


def test_deep_link_opens_the_survey_after_consent() -> None:
    d = Driver()
    d.text("/start akta-lahir")
    replies = d.press("agree")
    assert "Akta Kelahiran" in replies[-1].text and "(1/9)" in replies[-1].text
    d2 = Driver()
    d2.onboard()
    replies = d2.text("/start ktp")
    assert "(1/9)" in replies[-1].text


def test_status_check_own_ticket_unknown_and_bad_format() -> None:
    d = Driver()
    d.onboard()
    complaint_until_confirm(d)
    d.press("send")
    (ticket,) = d.complaints
    replies = d.press("status")
    assert replies[-1].choices[0].id == f"t:{ticket}"
    replies = d.press(f"t:{ticket}")
    assert ticket in replies[0].text and "Diterima" in replies[0].text
    d.press("status")
    replies = d.text("nomornya lupa")
    assert "8 huruf/angka" in replies[0].text
    replies = d.text("ZZZZ-9999")
    assert "tidak ditemukan" in replies[0].text


def test_data_rights_show_and_delete() -> None:
    d = Driver()
    d.onboard()
    replies = d.press("data")
    assert "Survei: 0" in replies[-1].text
    d.press("delete")
    replies = d.press("yes")
    assert "sudah dihapus" in replies[0].text
    assert not d.consented
    replies = d.text("halo")
    assert "UU 27/2022" in replies[-1].text


def test_fee_on_a_free_service_offers_a_report_without_asking_the_category() -> None:
    d = Driver()
    d.onboard()
    d.press("survey")
    d.text("ktp")
    for pick in ["1", "1", "1", "3", "1", "1", "1", "1", "1"]:  # Biaya: "Cukup mahal"
        d.text(pick)
    replies = d.press("skip")
    assert "GRATIS" in replies[-1].text
    replies = d.press("report")
    assert "Ceritakan" in replies[-1].text
    d.text("Diminta bayar 100 ribu di loket untuk KTP")
    replies = d.press("yesterday")  # category was skipped: already known
    assert "foto" in replies[-1].text.lower()


def test_menu_understands_typed_intents() -> None:
    d = Driver()
    d.onboard()
    replies = d.text("ktp")
    assert "KTP Elektronik: Anda ingin menilai" in replies[-1].text
    d.text("/menu")
    replies = d.text("mau lapor soal kk")
    assert "Ceritakan" in replies[-1].text
    d.text("/menu")
    replies = d.text("apa kabar")
    assert "belum mengerti" in replies[0].text


def test_start_mid_flow_returns_to_menu_without_losing_answers() -> None:
    d = Driver()
    d.onboard()
    d.press("survey")
    d.text("kk")
    d.text("4")
    replies = d.text("/start")
    assert "Yang sudah Anda kirim tetap tersimpan" in replies[0].text
    assert next(iter(d.surveys.values())).answers == {1: 4}


def test_every_element_has_four_labelled_answers_in_both_languages() -> None:
    for lang in ("id", "en"):
        d = Driver(language=lang)
        d.onboard()
        d.press("survey")
        d.text("ktp")
        for n, _key in enumerate(ELEMENTS, start=1):
            q = d.last_question()
            assert f"({n}/9)" in q.text
            assert [c.id for c in q.choices[:5]] == ["4", "3", "2", "1", "skip"]
            d.press("skip")


def test_parse_command_and_match_choice() -> None:
    assert parse_command("/start ktp") == ("start", "ktp")
    assert parse_command("/batal@PrimaBot") == ("cancel", "")
    assert parse_command("Batal!") == ("cancel", "")
    assert parse_command("batalkan saja") is None
    choices = (Choice("a", "Sangat mudah", key="1"), Choice("b", "Mudah", key="2"))
    assert match_choice("2", choices) == "b"
    assert match_choice("sangat mudah", choices) == "a"
    assert match_choice("mudah", choices) == "b"
    assert match_choice("3", choices) is None


def test_a_plain_yes_or_no_answers_a_yes_no_question() -> None:
    """Residents type "iya", "ok", "gak usah": the question's own yes or no, echoed."""
    for word in ("ya", "iya pak", "ok", "oke", "saya setuju", "yes"):
        d = Driver()
        d.text("halo")
        replies = d.text(word)
        assert d.consented, word
        assert replies[0].text == "✅ Setuju", word
    for word in ("tidak", "gak", "nggak usah", "no"):
        d = Driver()
        d.text("halo")
        replies = d.text(word)
        assert not d.consented and "Kami tidak menyimpan data Anda" in texts(replies), word
    d = Driver(consented=True)
    d.text("/nilai")
    d.text("ktp")
    replies = d.text("iya")  # a rating has no yes: not taken as any score
    assert d.surveys == {} or all(not s.answers for s in d.surveys.values())
    assert "✅" not in texts(replies)


def test_a_word_standing_in_one_label_picks_it() -> None:
    choices = (Choice("a", "Permintaan imbalan uang/barang (pungli)", key="1"),
               Choice("b", "Penundaan berlarut", key="2"),
               Choice("c", "Tidak memberikan pelayanan", key="3"),
               Choice("nav:back", "« Kembali", nav=True, key="4"))
    assert match_choice("pungli", choices) == "a"
    assert match_choice("Pungli!", choices) == "a"
    assert match_choice("berlarut", choices) == "b"
    assert match_choice("pelayanan", choices) == "c"
    assert match_choice("uang", choices) == "a"
    assert match_choice("pung", choices) is None  # a piece of a word is no word
    ratings = (Choice("4", "Sangat sesuai", key="4"), Choice("3", "Sesuai", key="3"),
               Choice("2", "Kurang sesuai", key="2"), Choice("1", "Tidak sesuai", key="1"))
    assert match_choice("sesuai", ratings) == "3"  # the whole label, as before
    assert match_choice("tidak", ratings) == "1"  # stands in one label only
    assert match_choice("tahu", ratings) is None
