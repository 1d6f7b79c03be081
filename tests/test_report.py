"""The periodic SKM report: worked examples with exact figures, period boundaries per zone."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from openpyxl import load_workbook
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import update

from bot.app import App
from bot.reports.periodic.data import ALL, collect
from bot.reports.periodic.files import write_files
from bot.reports.periodic.model import ReportData
from bot.reports.periodic.pdf import render_pdf
from bot.reports.periodic.period import Period, last_complete, parse_period, period_of
from bot.reports.periodic.text import render_text
from bot.storage.models import Agency, SurveyAnswer, SurveyResponse
from tests.digest_data import add_complaint, add_response

WIB = timedelta(hours=7)
Q4 = parse_period("2026-Q4")
KTP: list[list[int | None]] = [
    [4, 4, 3, 3, 4, 4, 4, 3, 4],
    [3, 3, 3, 2, 3, 4, 4, 3, 3],
    [4, 3, 2, 2, 3, 3, 4, None, 3],
    [3, 4, 3, 3, 4, 4, 3, 3, 4],
]
KK: list[list[int | None]] = [
    [2, 3, 2, 3, 3, 3, 3, 2, 2],
    [3, 3, 3, 4, 3, 3, 4, 3, 3],
]


def wib(y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=UTC) - WIB


def seed_q4(app: App) -> None:
    for i, scores in enumerate(KTP):
        add_response(app, "ktp", wib(2026, 10, 5 + i), scores, suggestion="antrian lama sekali" if i < 2 else None)
    # the last questionnaire of the quarter starts at 23:30 WIB on 31 December: Q4
    add_response(app, "kk", wib(2026, 11, 2), KK[0])
    add_response(app, "kk", wib(2026, 12, 31, 23, 30), KK[1])
    add_response(app, "ktp", wib(2027, 1, 1, 0, 10), [1] * 9)  # Q1 2027: not in Q4
    add_response(app, "ktp", wib(2026, 9, 30, 23, 59), [3] * 9)  # Q3: the previous period
    add_response(app, "pbb", wib(2026, 12, 1), [4] * 9)  # another agency


def report(app: App, scope: str = "disdukcapil", period: Period = Q4) -> ReportData:
    with app.factory() as db:
        return collect(db, scope, period)


def test_periods_parse_and_step() -> None:
    assert parse_period("2026-q4") == Period(2026, "Q", 4)
    assert parse_period("2026-S2").first_day == date(2026, 7, 1)
    assert parse_period("2026").last_day == date(2026, 12, 31)
    assert parse_period("2026-Q1").previous() == Period(2025, "Q", 4)
    assert parse_period("2026-S1").previous() == Period(2025, "S", 2)
    assert parse_period("2026").previous(2).label == "2024"
    assert Period(2026, "Q", 4).previous(5).label == "2025-Q3"
    for bad in ("2026-Q5", "2026-S3", "Q4", "2026-W47"):
        with pytest.raises(ValueError):
            parse_period(bad)


@pytest.mark.parametrize(("zone", "offset"), [("Asia/Jakarta", 7), ("Asia/Makassar", 8), ("Asia/Jayapura", 9)])
def test_period_bounds_in_each_zone(zone: str, offset: int) -> None:
    start, end = parse_period("2026-Q1").bounds(zone)
    assert start == datetime(2026, 1, 1, tzinfo=UTC) - timedelta(hours=offset)
    assert end == datetime(2026, 4, 1, tzinfo=UTC) - timedelta(hours=offset)
    # 23:30 local on 31 March is still Q1; 00:10 local on 1 April is Q2
    late = datetime(2026, 3, 31, 23, 30, tzinfo=UTC) - timedelta(hours=offset)
    assert start <= late < end and period_of(late, zone, "Q").label == "2026-Q1"
    early = datetime(2026, 4, 1, 0, 10, tzinfo=UTC) - timedelta(hours=offset)
    assert period_of(early, zone, "Q").label == "2026-Q2"
    assert last_complete(early, zone, "Q").label == "2026-Q1"
    assert last_complete(early, zone, "S").label == "2025-S2"


def test_a_questionnaire_at_2330_wib_on_31_march_is_in_q1_also_for_wit(app: App) -> None:
    add_response(app, "ktp", wib(2026, 3, 31, 23, 30), [4] * 9)
    assert report(app, period=parse_period("2026-Q1")).respondents == 1
    assert report(app, period=parse_period("2026-Q2")).respondents == 0
    with app.factory() as db, db.begin():  # in WIT the same instant is 01:30 on 1 April: Q2
        db.execute(update(Agency).where(Agency.slug == "disdukcapil").values(timezone="Asia/Jayapura"))
    assert report(app, period=parse_period("2026-Q1")).respondents == 0
    assert report(app, period=parse_period("2026-Q2")).respondents == 1


def test_worked_example_agency(app: App) -> None:
    seed_q4(app)
    data = report(app)
    assert data.respondents == 6 and data.complete == 6
    # hand computation: element sums over six questionnaires (U8 has a "tidak tahu")
    assert data.ikm.nrr == (Fraction(19, 6), Fraction(20, 6), Fraction(16, 6), Fraction(17, 6),
                            Fraction(20, 6), Fraction(21, 6), Fraction(22, 6), Fraction(14, 5),
                            Fraction(19, 6))
    assert data.skipped[8] == 1
    # (154/6 + 14/5) / 9 x 25 = 79.074...
    assert data.ikm.value == Decimal("79.07") and data.ikm.grade == "B"
    services = {s.code: s for s in data.services}
    assert services["ktp"].ikm.value == Decimal("82.64") and services["ktp"].ikm.grade == "B"
    assert services["ktp"].respondents == 4
    assert services["kk"].ikm.value == Decimal("72.22") and services["kk"].ikm.grade == "C"
    assert services["akta-lahir"].respondents == 0 and services["akta-lahir"].ikm.value is None
    # the previous quarter: one questionnaire of 3s (started 23:59 WIB on 30 September)
    assert data.prev_respondents == 1 and data.prev_ikm.value == Decimal("75.00")
    assert [p.label for p, _, _ in data.trend] == ["2025-Q3", "2025-Q4", "2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"]
    assert data.trend[-1][1] == Decimal("79.07") and data.trend[-2][1] == Decimal("75.00")
    # weakest elements: below A, lowest first (U3 16/6, U8 14/5=2.8, U4 17/6)
    assert [w.element for w in data.weak] == [3, 8, 4]
    text = render_text(data, "id")
    assert "79,07" in text and "Triwulan IV 2026" in text and "naik 4,07 poin" in text


def test_worked_example_regency(app: App) -> None:
    seed_q4(app)
    data = report(app, ALL)
    assert data.respondents == 7
    # (186/7 + 3) / 9 x 25 = 82.142...
    assert data.ikm.value == Decimal("82.14") and data.ikm.grade == "B"
    by_agency = {a.scope: a for a in data.agencies}
    assert by_agency["disdukcapil"].ikm.value == Decimal("79.07")
    assert by_agency["bpprd"].ikm.value == Decimal("100.00") and by_agency["bpprd"].ikm.grade == "A"
    assert "Seluruh perangkat daerah" in render_text(data, "id")


def test_complaints_of_the_period(app: App) -> None:
    add_complaint(app, "ktp", wib(2026, 10, 1), "antrian lama", resolved_at=wib(2026, 10, 3))
    add_complaint(app, "ktp", wib(2026, 10, 2), "antrian lama", resolved_at=wib(2026, 10, 30))
    add_complaint(app, "ktp", wib(2026, 12, 30), "belum selesai", resolved_at=wib(2027, 1, 2))
    add_complaint(app, "ktp", wib(2026, 9, 30), "kuartal lalu")
    c = report(app).complaints
    assert (c.received, c.resolved, c.within_deadline) == (3, 2, 1)
    assert c.median_resolution_days == 15.0


def test_pdf_pages_and_text(app: App, tmp_path: Path) -> None:
    seed_q4(app)
    add_complaint(app, "ktp", wib(2026, 11, 3), "Saya Budi NIK 3201.1234.5678.0002 antrian lama",
                  category="penundaan", reporter_name="Budi", confidential=True)
    data = report(app)
    with app.factory() as db:
        files = write_files(db, data, tmp_path, "id")
    text = "\n".join(page.extract_text() for page in PdfReader(files.pdf).pages)
    for needle in ("LAPORAN SURVEI KEPUASAN MASYARAKAT", "Triwulan IV 2026", "1 Oktober - 31 Desember 2026",
                   "79,07", "Baik", "Persyaratan", "Sistem, Mekanisme, dan Prosedur", "Sarana dan Prasarana",
                   "KTP Elektronik", "82,64", "72,22", "Rencana tindak lanjut", "NIP"):
        assert needle in text, needle
    assert "3201" not in text and "Budi" not in text  # the confidential complaint is only counted
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-r", "40", "-png", str(files.pdf), str(tmp_path / "page")], check=True)
        pages = sorted(tmp_path.glob("page-*.png"))
        assert len(pages) >= 3
        with Image.open(pages[0]) as im:
            assert im.size[0] > 300 and im.convert("L").getextrema() != (255, 255)  # not blank
    english = render_pdf(data, tmp_path / "en.pdf", "en")
    text_en = "\n".join(page.extract_text() for page in PdfReader(english).pages)
    assert "Quarter IV 2026" in text_en and "79.07" in text_en and "Good" in text_en


def test_xlsx_holds_the_data_without_personal_data(app: App, tmp_path: Path) -> None:
    seed_q4(app)
    add_response(app, "ktp", wib(2026, 10, 20), [4] * 9, suggestion="Saya Budi 081234567890",
                 display_name="Budi Santoso")
    with app.factory() as db:
        files = write_files(db, report(app), tmp_path, "id")
    wb = load_workbook(files.xlsx)
    assert wb.sheetnames == ["Ringkasan", "NRR per unsur", "IKM per layanan", "Profil responden", "Kuesioner",
                             "Rencana tindak lanjut", "Keterangan"]
    summary = {row[0]: row[1] for row in wb["Ringkasan"].iter_rows(values_only=True)}
    assert summary["Periode"] == "Triwulan IV 2026" and summary["Responden (kuesioner)"] == 7
    elements = list(wb["NRR per unsur"].iter_rows(values_only=True))
    assert elements[1][:5] == ("U1", "Persyaratan", 7, 0, 23)
    services = {row[1]: row for row in wb["IKM per layanan"].iter_rows(values_only=True)}
    assert services["Kartu Keluarga"][2:5] == (2, 72.22, "C")
    rows = list(wb["Kuesioner"].iter_rows(values_only=True))
    assert len(rows) == 1 + 7 and rows[1][6:15] == (4, 4, 3, 3, 4, 4, 4, 3, 4)
    everything = " ".join(str(v) for ws in wb for row in ws.iter_rows(values_only=True) for v in row)
    assert "Budi" not in everything and "0812" not in everything


def test_a_questionnaire_crossing_the_boundary_counts_whole_in_its_start_period(app: App) -> None:
    """Started 23:50 WIB on 31 December, finished after midnight (a reminder, or a slow
    resident): all nine answers belong to Q4, none to Q1 of the next year."""
    rid = add_response(app, "ktp", wib(2026, 12, 31, 23, 50), [4] * 9)
    late = wib(2027, 1, 1, 0, 20)
    with app.factory() as db, db.begin():
        db.execute(update(SurveyAnswer).where(SurveyAnswer.response_id == rid, SurveyAnswer.element >= 5)
                   .values(answered_at=late, score=2))
        db.execute(update(SurveyResponse).where(SurveyResponse.id == rid).values(updated_at=late))
    add_response(app, "ktp", wib(2027, 1, 2), [3] * 9)
    q4, q1 = report(app), report(app, period=parse_period("2027-Q1"))
    assert q4.respondents == 1 and q4.ikm.nrr == (4, 4, 4, 4, 2, 2, 2, 2, 2) and q4.complete == 1
    assert q1.respondents == 1 and q1.ikm.nrr == (3,) * 9
    # and one from the previous quarter still answered inside Q4 does not leak into Q4
    early = add_response(app, "kk", wib(2026, 9, 30, 23, 55), [1] * 9)
    with app.factory() as db, db.begin():
        db.execute(update(SurveyAnswer).where(SurveyAnswer.response_id == early, SurveyAnswer.element >= 3)
                   .values(answered_at=wib(2026, 10, 1, 0, 5)))
        db.execute(update(SurveyResponse).where(SurveyResponse.id == early).values(updated_at=wib(2026, 10, 1, 0, 5)))
    q4 = report(app)
    assert q4.respondents == 1 and q4.ikm.nrr == (4, 4, 4, 4, 2, 2, 2, 2, 2)
    assert report(app, period=parse_period("2026-Q3")).ikm.nrr == (1,) * 9


def test_rebuilt_from_the_database_the_report_is_the_same(app: App, tmp_path: Path) -> None:
    seed_q4(app)
    add_complaint(app, "ktp", wib(2026, 10, 1), "antrian lama", resolved_at=wib(2026, 10, 3))
    first = report(app)
    # later events do not change a closed period's survey figures; a complaint of Q4 resolved
    # in January is counted as received but not resolved by the period's end
    add_complaint(app, "ktp", wib(2026, 12, 30), "belum", resolved_at=wib(2027, 1, 5))
    add_response(app, "ktp", wib(2027, 1, 3), [1] * 9)
    again = report(app)
    assert again.ikm == first.ikm and again.services == first.services and again.trend == first.trend
    assert (again.complaints.received, again.complaints.resolved) == (2, 1)
    created = datetime(2027, 1, 1, tzinfo=UTC)
    b = render_pdf(report(app), tmp_path / "b.pdf", created=created).read_bytes()
    c = render_pdf(report(app), tmp_path / "c.pdf", created=created + timedelta(days=30)).read_bytes()
    assert b == render_pdf(report(app), tmp_path / "d.pdf", created=created).read_bytes()
    assert len(b) == len(c) and sum(x != y for x, y in zip(b, c, strict=True)) < 100  # the timestamps only


def test_profile_tables_and_minimum_sample(app: App, tmp_path: Path) -> None:
    """Method and sample: the Krejcie-Morgan minimum from the catalog's population; the
    respondent profile per group, a group under 5 hidden together with the next smallest."""
    from bot.storage.models import Service

    with app.factory() as db, db.begin():
        # 4,000 users a year of KTP: 4,000 x 92/365 = 1,008.2, so 1,009 in Q4; minimum 279
        db.execute(update(Service).where(Service.code == "ktp").values(population=4000, population_per="year"))
    for i in range(7):  # seven women, three men, two who preferred not to say
        add_response(app, "ktp", wib(2026, 10, 5 + i), [4] * 9, profile={"gender": "p", "age": "30-39"})
    for i in range(3):
        add_response(app, "ktp", wib(2026, 11, 5 + i), [3] * 9, profile={"gender": "l", "age": "30-39"})
    for i in range(2):
        add_response(app, "ktp", wib(2026, 12, 5 + i), [2] * 9)
    data = report(app)
    assert data.sample is not None
    assert (data.sample.respondents, data.sample.population, data.sample.minimum) == (12, 1009, 279)
    assert not data.sample.enough
    gender = {g.code: g for g in data.profile["gender"]}
    assert gender["p"].respondents == 7 and gender["p"].ikm is not None
    assert gender["p"].ikm.value == Decimal("100.00")
    # men (3) and "not stated" (2) are both under 5: hidden, no IKM shown
    assert gender["l"].suppressed and gender[""].suppressed and gender["l"].ikm is None
    age = {g.code: g for g in data.profile["age"]}
    # only "not stated" (2) is under 5, so the next smallest group (30-39, 10) goes with it:
    # otherwise 12 - 10 would give it away
    assert age[""].suppressed and age["30-39"].suppressed and age["20-29"].respondents == 0
    pdf = render_pdf(data, tmp_path / "r.pdf")
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(pdf).pages).split())
    assert "Profil responden" in text and "Jenis kelamin" in text and "< 5" in text
    assert "12 dari 279 responden minimum" in text and "belum representatif" in text
    assert "Sampel minimum (Krejcie dan Morgan) 279" in text
    lines = render_text(data).splitlines()
    assert any("12 dari 279 responden minimum" in line for line in lines)
