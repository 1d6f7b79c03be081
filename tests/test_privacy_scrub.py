"""The scrubber: Indonesian NIK, phone and e-mail forms go; tickets, dates and amounts stay."""

from __future__ import annotations

import pytest

from bot.privacy.scrub import Scrubber, scrub, typed_names


@pytest.mark.parametrize(("text", "expected"), [
    # NIK: 16 digits however they are grouped
    ("NIK 3201010101010001", "NIK [NIK]"),
    ("NIK: 3201 0101 0101 0001.", "NIK: [NIK]."),
    ("nik 3201.0101.0101.0001", "nik [NIK]"),
    ("3201-01-010101-0001 punya saya", "[NIK] punya saya"),
    # mobile numbers in every common form
    ("hubungi 081234567890", "hubungi [telepon]"),
    ("hp 0812-3456-7890 ya", "hp [telepon] ya"),
    ("hp 0812 3456 7890", "hp [telepon]"),
    ("wa 0812.3456.7890", "wa [telepon]"),
    ("+6281234567890", "[telepon]"),
    ("+62 812-3456-7890", "[telepon]"),
    ("+62 812 3456 7890", "[telepon]"),
    ("6281234567890", "[telepon]"),
    ("62 812 3456 7890", "[telepon]"),
    ("(+62) 812 3456 7890", "[telepon]"),
    ("0857 1234 567", "[telepon]"),
    # landlines with an area code
    ("kantor 021-5551234", "kantor [telepon]"),
    ("telp (0274) 512345", "telp [telepon]"),
    # e-mail addresses
    ("email siti.aminah+lapor@mail.co.id ya", "email [email] ya"),
    ("SITI_A@Example.COM", "[email]"),
    # a typed name is removed wherever it appears in the same text
    ("nama saya Siti Aminah, warga Bungo. Siti minta tolong", "nama saya [nama], warga Bungo. [nama] minta tolong"),
    ("Nama saya: budi santoso dan saya kecewa", "Nama saya: [nama] dan saya kecewa"),
])
def test_personal_data_is_removed(text: str, expected: str) -> None:
    assert scrub(text) == expected


@pytest.mark.parametrize("text", [
    "Tiket K7QM-3XHD belum selesai",
    "tiket k7qm3xhd",
    "Datang tanggal 12-03-2026 jam 09.30",
    "tanggal 12/03/2026",
    "Bayar Rp 50.000 padahal gratis",
    "diminta Rp50.000,- dan Rp 1.250.000",
    "antrian nomor 125, loket 3",
    "tahun 2025 dan 2026",
    "RT 003 RW 012",
    "kode pos 37211",
    "Pukul 08.00 sampai 16.00 WIB",
    "Nilai 3.5 dari 4",
])
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert scrub(text) == text


def test_known_names_and_numbers_in_any_case_and_grouping() -> None:
    s = Scrubber(names=["Siti Aminah", "siti_bungo"], numbers=["6281234567890"])
    assert s.scrub("Bu SITI aminah (@siti_bungo) di 0812 3456 7890") == "Bu [nama] ([nama]) di [telepon]"
    assert s.scrub("Aminah saja") == "[nama] saja"
    # parts shorter than three letters are not removed on their own
    assert Scrubber(names=["Al Wu"]).scrub("Al datang, Al Wu pergi") == "Al datang, [nama] pergi"


def test_json_values_and_keys() -> None:
    s = Scrubber(names=["Siti Aminah"])
    value = {"text": "Pelapor: Siti Aminah", "photos": [{"caption": "NIK 3201010101010001"}], "n": 3}
    assert s.scrub_value(value) == {"text": "Pelapor: [nama]", "photos": [{"caption": "NIK [NIK]"}],
                                    "n": 3}


def test_typed_names_stop_at_ordinary_words() -> None:
    assert typed_names("nama saya Siti Aminah dan saya mau lapor") == ["Siti Aminah"]
    assert typed_names("My name is John Doe, from Bungo") == ["John Doe"]
    assert typed_names("saya bernama Budi. NIK ...") == ["Budi"]
    assert typed_names("tidak ada nama di sini") == []


def test_words_of_the_bot_and_catalog_are_not_a_name_alone() -> None:
    s = Scrubber(names=["Budi Pajak"], keep_words=frozenset({"pajak"}))
    assert s.scrub("Budi Pajak lapor pajak motor, Budi") == "[nama] lapor pajak motor, [nama]"


def test_the_persons_ids_as_json_numbers() -> None:
    s = Scrubber(numbers=["7345012345"])
    raw = {"update_id": 901, "message": {"from": {"id": 7345012345, "is_bot": False}, "text": "7345012345"}}
    assert s.scrub_value(raw) == {"update_id": 901, "message": {"from": {"id": None, "is_bot": False},
                                                                "text": "[telepon]"}}
