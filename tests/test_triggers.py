"""Escalation rules, both ways: what must go to a human and what must not."""

from __future__ import annotations

import pytest

from flows.helpers.triggers import (
    asks_for_person,
    bribery_terms,
    is_serious,
    low_survey,
    response_ikm,
)

BRIBERY = [
    ("ada pungli di loket", "pungli"),
    ("pungly di kantor camat", "pungli"),  # typo
    ("saya dipungli petugas", "pungli"),
    ("punglinya mahal sekali", "pungli"),
    ("petugas minta sogokan", "sogok"),
    ("petugas menyogok atasannya", "sogok"),
    ("saya disuap supaya diam", "suap"),
    ("minta uang rokoknya pak", "uang rokok"),
    ("minta duit rokok", "uang rokok"),
    ("kasih uang pelicin biar cepat", "uang pelicin"),
    ("uang bensin 50rb", "uang bensin"),
    ("banyak calonya di depan kantor", "calo"),
    ("ada percaloan", "calo"),
    ("bayar seikhlasnya kata petugas", "seikhlasnya"),
    ("bayar terserah bapak katanya", "terserah"),
    ("ada pungutan liar", "pungutan liar"),
    ("dugaan gratifikasi ke pejabat", "gratifikasi"),
    ("uang terima kasih 20 ribu", "uang terima kasih"),
    # English
    ("The clerk wanted a bribe before printing my ID card", "bribe"),
    ("they asked for bribes", "bribe"),
    ("this is bribary", "bribe"),  # typo
    ("the officer was bribed", "bribe"),
    ("he demanded a kickback", "kickback"),
    ("this is extortion", "extortion"),
    ("I was extorted at the counter", "extortion"),
    ("I had to pay extra to get it faster", "pay extra"),
    ("we paid extra 50k", "paid extra"),
    ("money under the table", "under the table"),
    ("they charge a facilitation fee", "facilitation fee"),
    ("an illegal fee of 100k", "illegal fee"),
    ("illegal fees everywhere", "illegal fees"),
]
ORDINARY = [
    "saya mau urus ktp",
    "calon pengantin daftar nikah",  # calon is not calo
    "pelayanannya gratis",  # gratis is not gratifikasi
    "petugas siap membantu",  # siap is not suap
    "terserah bapak mau jam berapa",  # terserah without money
    "sesuap nasi",
    "uang administrasi sesuai perda",  # a legal fee for a paid service
    "rokok di ruang tunggu",  # rokok without uang
    "petugas pungut formulir",
    "pelicin lantai licin",
    "uangnya kurang",
    "tips mengurus paspor",
    "antrian panjang sekali",
    # English words that look alike
    "my bride and I registered our marriage",
    "the bridge near the office is broken",
    "I had to pay the official fee at the bank",
    "the table under the window was dirty",
    "extra chairs are needed in the waiting room",
    "the staff were kind",
]


@pytest.mark.parametrize(("text", "term"), BRIBERY)
def test_bribery_words_are_found_with_typos_and_affixes(text: str, term: str) -> None:
    assert term in bribery_terms(text)


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_words_are_not_bribery(text: str) -> None:
    assert bribery_terms(text) == []


def test_administration_fee_counts_only_for_a_free_service() -> None:
    assert bribery_terms("diminta uang administrasi 100 ribu", free_service=True) == ["uang administrasi"]
    assert bribery_terms("diminta uang administrasi 100 ribu", free_service=False) == []


def test_serious_categories_and_terms_give_reasons() -> None:
    assert is_serious("pungli", "saya diminta bayar") == ["category:pungli"]
    assert is_serious("wewenang", "x") == ["category:wewenang"]
    assert is_serious("diskriminasi", "x") == ["category:diskriminasi"]
    assert is_serious("penundaan", "ktp belum jadi tiga bulan") == []
    assert is_serious("penundaan", "ktp belum jadi, ada calo") == ["term:calo"]


@pytest.mark.parametrize(
    "text",
    ["bicara dengan petugas", "mau ngomong sama orang", "bicara dgn petugas",
     "saya mau bicara sama petugasnya", "pengen ngomong sm org", "bicara dengan petugss",
     "petugas", "talk to a person"],
)
def test_asking_for_a_person(text: str) -> None:
    assert asks_for_person(text)


@pytest.mark.parametrize(
    "text", ["ktp", "petugas tidak ramah", "mau lapor petugas", "bicara", "dengan petugas", "x" * 300]
)
def test_not_asking_for_a_person(text: str) -> None:
    assert not asks_for_person(text)


def test_low_survey_rules() -> None:
    good = {e: 3 for e in range(1, 10)}
    one_bad = {**good, 4: 1}
    poor = {e: 2 for e in range(1, 10)}  # IKM 50.00: grade D, but no element scored 1
    assert low_survey(good) == []
    assert low_survey(one_bad, "any_one") == ["element:4"]
    assert low_survey(one_bad, "grade_d") == []  # 3 x 8 + 1 -> 69.44: grade C
    assert low_survey(poor, "any_one") == []
    assert low_survey(poor, "grade_d") == ["ikm:50.00"]
    assert low_survey(poor, "both") == ["ikm:50.00"]
    assert low_survey(one_bad, "off") == [] and low_survey(poor, "off") == []
    assert low_survey({e: None for e in range(1, 10)}) == []  # all "tidak tahu"
    with pytest.raises(ValueError, match="any_one"):
        low_survey(good, "sometimes")


def test_grade_boundary_uses_the_rounded_value() -> None:
    # 2.6 x 25 = 65.00 exactly: grade C, not D
    assert response_ikm({1: 3, 2: 3, 3: 3, 4: 2, 5: 2}) == pytest.approx(65)
    assert low_survey({1: 3, 2: 3, 3: 3, 4: 2, 5: 2}, "grade_d") == []
    assert low_survey({1: 3, 2: 3, 3: 2, 4: 2, 5: 2}, "grade_d") == ["ikm:60.00"]
