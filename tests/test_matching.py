"""Real resident phrasings -> the service (or agency) they mean, against the bundled catalog."""

from __future__ import annotations

import pytest

from tests.engine_driver import CATALOG

DECIDED = [
    ("ktp", "ktp"),
    ("KTP", "ktp"),
    ("e ktp", "ktp"),
    ("e-ktp", "ktp"),
    ("ektp", "ktp"),
    ("ktp el", "ktp"),
    ("bikin ktp", "ktp"),
    ("ktp saya hilang", "ktp"),
    ("mengurus ktp di kantor capil lama sekali", "ktp"),
    ("akta lahir", "akta-lahir"),
    ("akte kelahiran", "akta-lahir"),
    ("akta lhir", "akta-lahir"),
    ("urus akte lahir anak", "akta-lahir"),
    ("kartu keluarga", "kk"),
    ("kk", "kk"),
    ("kia", "kia"),
    ("pbb", "pbb"),
    ("bayar pbb", "pbb"),
    ("pajak bumi dan bangunan", "pbb"),
    ("pajak motor", "pkb"),
    ("pajk motor", "pkb"),
    ("pajak mobil", "pkb"),
    ("pajak kendaraan", "pkb"),
    ("ganti plat", "stnk5"),
    ("perpanjang stnk", "stnk5"),
    ("igd", "igd"),
    ("ugd", "igd"),
    ("antri lama di poli", "rawat-jalan"),
    ("obat", "farmasi"),
    ("imb", "pbg"),
    ("izin usaha", "nib"),
    ("samsat", "@samsat"),
    ("dukcapil", "@disdukcapil"),
    ("capil", "@disdukcapil"),
    ("rumah sakit", "@rsud"),
    ("rsud", "@rsud"),
]

ASK = [  # two or more close candidates: the bot must ask with buttons
    ("pajak", {"pbb", "pkb"}),
    ("akta", {"akta-lahir", "akta-mati"}),
    ("stnk", {"pkb", "stnk5"}),
    ("balik nama", {"bphtb", "bbnkb"}),
    ("izin", {"pbg", "nib"}),
]


@pytest.mark.parametrize(("text", "expected"), DECIDED)
def test_phrasing_lands_on_the_right_service(text: str, expected: str) -> None:
    assert CATALOG.matcher.match(text).decided == expected


@pytest.mark.parametrize(("text", "expected"), ASK)
def test_close_candidates_are_asked(text: str, expected: set[str]) -> None:
    match = CATALOG.matcher.match(text)
    assert match.decided is None
    assert expected <= set(match.candidates)


@pytest.mark.parametrize("text", ["bpjs kesehatan", "xyzzy", "👍", ""])
def test_unrelated_text_matches_nothing_for_sure(text: str) -> None:
    assert CATALOG.matcher.match(text).decided is None
