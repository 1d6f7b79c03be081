"""The digest defects of issue 14: weights, rounding, focus, masking, words, chart, XLSX, wording."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, update

from bot.app import App
from bot.catalog import CatalogError, load_catalog, read_catalog
from bot.cli import main as cli
from bot.i18n import TEXTS
from bot.reports import ikm
from bot.reports.digest import chart as chart_module
from bot.reports.digest.data import collect as collect_digest
from bot.reports.digest.data import find_agency
from bot.reports.digest.files import write_files
from bot.reports.digest.fmt import Fmt
from bot.reports.digest.job import payloads, produce_digest
from bot.reports.digest.mask import mask_personal
from bot.reports.digest.model import DigestData
from bot.reports.digest.text import caption, render_text
from bot.reports.digest.themes import top_words
from bot.storage.db import transaction
from bot.storage.models import Agency, Digest
from tests.conftest import ROOT, FakeClock
from tests.digest_data import add_complaint, add_response

MON_W47 = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)  # Monday 08:00 WIB, inside 2026-W47
SAMSAT = "  - slug: samsat\n"
DISDUK = "  - slug: disdukcapil\n"
BASE = (ROOT / "catalog.yaml").read_text(encoding="utf-8")


def collect(app: App, slug: str = "disdukcapil", week: str = "2026-W47") -> DigestData:
    with app.factory() as db:
        return collect_digest(db, find_agency(db, slug), week)


def set_settings(app: App, slug: str, **values: Any) -> None:
    with app.factory() as db, db.begin():
        agency = db.scalars(select(Agency).where(Agency.slug == slug)).one()
        db.execute(update(Agency).where(Agency.id == agency.id).values(
            settings={**(agency.settings or {}), **values}))


# ---------------------------------------------------------------- ikm_weights


@pytest.mark.parametrize(
    ("written", "accepted"),
    [("0.111", "0.111"), ('"0.111"', "0.111"), ("0.11", "0.11"), ("exact", "exact"),
     ("0.1110", None), ('"0,111"', None), ("0,111", None), ("0.110", None), ("1", None)],
)
def test_ikm_weights_are_taken_as_written_or_refused(tmp_path: Path, written: str, accepted: str | None) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(BASE.replace(SAMSAT, SAMSAT + f"    ikm_weights: {written}\n", 1), encoding="utf-8")
    if accepted is None:
        with pytest.raises(CatalogError) as err:
            read_catalog(path)
        assert "\n" not in str(err.value)
        assert str(err.value).startswith(f"{path}: agency 'samsat': ikm_weights: must be one of exact, 0.111, 0.11")
    else:
        spec = read_catalog(path)
        assert next(a for a in spec.agencies if a.slug == "samsat").ikm_weights == accepted


def test_cli_and_monday_job_print_one_official_number(
    sqlite_app: App, sqlite_url: str, clock: FakeClock, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    app = sqlite_app
    path = tmp_path / "catalog.yaml"
    path.write_text(BASE.replace(DISDUK, DISDUK + "    ikm_weights: \"0.111\"\n", 1), encoding="utf-8")
    with transaction(app.factory) as db:
        load_catalog(db, path)
    rows: list[list[int | None]] = [[4, 4, 4, 4, 4, 4, 4, 4, 3], [4, 3, 4, 4, 3, 4, 4, 4, 4]]
    for r in rows:
        add_response(app, "ktp", MON_W47, r)
    official = ikm.from_scores(rows, "0.111").value
    assert official == Decimal("95.74") and ikm.from_scores(rows).value == Decimal("95.83")
    app.settings.digest_dir = tmp_path / "digests"
    produced = produce_digest(app, "disdukcapil", "2026-W47", clock())
    assert produced is not None
    with app.factory() as db:
        assert db.scalars(select(Digest)).one().summary["ikm"] == "95.74"
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    assert cli.main(["digest", "--agency", "disdukcapil", "--week", "2026-W47"]) == 0
    out = capsys.readouterr().out
    assert "IKM minggu ini: 95,74 (mutu A, Sangat Baik)" in out
    assert "Pembobotan IKM instansi: bobot dibulatkan 0,111 per unsur." in out
    assert "bot.py digest" not in out
    data = collect(app)
    assert "The agency's IKM weighting: rounded weight 0.111 per element." in render_text(data, "en")
    with app.factory() as db:
        files = write_files(db, data, tmp_path / "x", "id")
    summary = list(load_workbook(files.xlsx, read_only=True)["Ringkasan"].iter_rows(values_only=True))
    assert ("Pembobotan", "bobot dibulatkan 0,111 per unsur") in [r[:2] for r in summary]
    set_settings(app, "disdukcapil", ikm_weights="0.11")
    assert collect(app).week_ikm.value == Decimal("94.88")
    set_settings(app, "disdukcapil", ikm_weights=None)
    exact = collect(app)
    assert exact.week_ikm.value == Decimal("95.83")
    assert "bobot tepat 1/9 per unsur" in render_text(exact)


# ---------------------------------------------------------------- rounding


def test_nrr_is_rounded_half_up_in_text_chart_and_xlsx(
    sqlite_app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = sqlite_app
    # Element 1: 25 / 8 = 3.125 (half-even would print 3,12)
    for s in [4, 4, 4, 4, 3, 2, 2, 2]:
        add_response(app, "ktp", MON_W47, [s, 4, 4, 4, 4, 4, 4, 4, 4])
    data = collect(app)
    assert data.week_ikm.nrr[0] == Fraction(25, 8)
    assert "1. Persyaratan: 3,13" in render_text(data)
    assert "1. Requirements: 3.13" in render_text(data, "en")
    texts = chart_texts(monkeypatch, data, tmp_path)
    assert "3,13" in texts and "3,12" not in texts
    with app.factory() as db:
        files = write_files(db, data, tmp_path, "id")
    ws = load_workbook(files.xlsx)["Ringkasan"]
    nrr = next(row[1] for row in ws.iter_rows() if row[0].value == "U1. Persyaratan")
    assert nrr.value == 3.125 and nrr.number_format == "0.00"


# ---------------------------------------------------------------- focus


def test_focus_lists_only_elements_below_grade_a(sqlite_app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = sqlite_app
    add_response(app, "ktp", MON_W47, [4] * 9)
    data = collect(app)
    assert data.focus == []
    text = render_text(data)
    assert "🎯 Fokus perbaikan: tidak ada, semua unsur sudah mencapai mutu A (IKM 88,31) minggu ini." in text
    assert "terendah" not in text
    assert "#c0392b" not in chart_bar_colours(monkeypatch, data, tmp_path)


def test_focus_ties_and_grade_boundary(sqlite_app: App) -> None:
    app = sqlite_app
    # NRR 3,5 (B: 87,50) for elements 2, 5, 8, 9 and 4 elsewhere: the tie at the cut is kept whole
    add_response(app, "ktp", MON_W47, [4, 4, 4, 4, 4, 4, 4, 4, 4])
    add_response(app, "ktp", MON_W47, [4, 3, 4, 4, 3, 4, 4, 3, 3])
    data = collect(app)
    assert [(f.element, f.nrr) for f in data.focus] == [(e, Fraction(7, 2)) for e in (2, 5, 8, 9)]
    assert "🎯 Fokus perbaikan: unsur di bawah mutu A (IKM 88,31), terendah lebih dulu." in render_text(data)


# ---------------------------------------------------------------- masking


@pytest.mark.parametrize(
    ("raw", "gone"),
    [
        ("NIK 3201.1234.5678.0002 ya", "3201.1234.5678.0002"),
        ("NIK 3201 1234 5678 0002 ya", "1234 5678"),
        ("NIK 3201-1234-5678-0002 ya", "1234-5678"),
        ("kirim ke budi.santoso@gmail.com ya", "budi.santoso@gmail.com"),
        ("telp (0747) 21234 kantor", "21234"),
        ("telp 0747-21234 kantor", "21234"),
        ("telp 021 555 1234 kantor", "555 1234"),
        ("Saya Budi Santoso (NIK 3201.1234.5678.0002) antri lama", "Budi"),
        ("nama saya Siti Aminah, antri lama", "Siti"),
    ],
)
def test_masking_cases(raw: str, gone: str) -> None:
    masked = mask_personal(raw)
    assert gone not in masked
    assert masked.split()[0] == raw.split()[0] and masked.split()[-1] == raw.split()[-1]


def test_masking_keeps_ordinary_numbers_and_words() -> None:
    text = "Saya sudah antri jam 08.00-12.00 tanggal 12-11-2026, biaya Rp 50.000, tiket PRM-AB12CD34"
    assert mask_personal(text) == text
    assert mask_personal("Saya Kecewa sekali") == "Saya Kecewa sekali"
    assert "3201********0002" in mask_personal("NIK 3201.1234.5678.0002")


def test_names_and_confidential_reports_never_reach_the_head(sqlite_app: App, tmp_path: Path) -> None:
    app = sqlite_app
    # "Saya Wahyuningsih ..." three times: the name would be a frequent word if not masked
    for i in range(3):
        add_complaint(app, "ktp", MON_W47 + timedelta(hours=i),
                      f"Saya Wahyuningsih (NIK 3201.1234.5678.000{i} menunggu blanko, loket tutup",
                      category="penundaan", reporter_name="Wahyuningsih", display_name="Ning")
    add_response(app, "ktp", MON_W47, [4, 4, 1, 4, 4, 4, 4, 4, 4], "Ning di sini, loket tutup terus",
                 display_name="Ning")
    add_complaint(app, "ktp", MON_W47, "Petugas Pak Darmawan minta uang rokok, saya Joko Susilo",
                  category="pungli", reporter_name="Joko Susilo", confidential=True)
    add_complaint(app, "ktp", MON_W47, "Ada calo di depan kantor, hubungi andi@example.com",
                  category="pungli", reporter_name="Andi Wirawan")
    data = collect(app)
    text = render_text(data)
    with app.factory() as db:
        files = write_files(db, data, tmp_path, "id")
    wb = load_workbook(files.xlsx, read_only=True)
    cells = " ".join(str(v) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for v in row if v)
    waktu = next(f for f in data.focus if f.element == 3)
    assert "loket" in waktu.words and "tutup" in waktu.words
    for secret in ("Wahyuningsih", "wahyuningsih", "Ning", "ning", "1234.5678", "Joko", "Darmawan",
                   "uang rokok", "andi@example.com"):
        assert secret not in text, secret
        assert secret not in cells, secret
        assert secret not in " ".join(waktu.words + [t for t, _ in waktu.themes]), secret
    assert "⚠️ 2 laporan pungli/suap minggu ini" in text
    assert "Ada calo di depan kantor, hubungi [email]" in text
    assert "1 laporan bersifat rahasia: hanya dihitung, isinya tidak ditampilkan di sini." in text
    assert "(rahasia, tidak ditampilkan)" in cells
    assert "NIK, nomor telepon, e-mail dan nama warga disamarkan" in text


# ---------------------------------------------------------------- frequent words


def test_frequent_words_count_stems_and_show_the_common_form() -> None:
    texts = ["Antrian terlalu lama", "antriannya panjang, kurang kursi", "harus mengantri sampai sore",
             "antrian lagi, sudah 2 hari", "toilet kotor, kurang bersih", "petugas ramah"]
    words = top_words(texts)
    assert words[0] == "antrian"  # 4 of 6 texts, written "antrian" twice
    assert "kurang" in words  # our stoplist keeps the words that matter
    assert top_words(["sudah 2 hari", "tiga hari menunggu", "lama sekali", "lama"])[:2] == ["hari", "lama"]


# ---------------------------------------------------------------- chart


def _capture(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    import matplotlib.figure

    figures: list[Any] = []
    original = matplotlib.figure.Figure.savefig

    def savefig(fig: Any, *args: Any, **kwargs: Any) -> None:
        original(fig, *args, **kwargs)
        figures.append(fig)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    return figures


def chart_texts(monkeypatch: pytest.MonkeyPatch, data: DigestData, tmp_path: Path, lang: str = "id") -> str:
    import matplotlib.text

    figures = _capture(monkeypatch)
    chart_module.render_chart(data, tmp_path / f"c-{lang}.png", lang)
    fig = figures[-1]
    parts = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
    for ax in fig.axes:
        parts += [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
    return "\n".join(parts)


def chart_bar_colours(monkeypatch: pytest.MonkeyPatch, data: DigestData, tmp_path: Path) -> set[str]:
    from matplotlib.colors import to_hex

    figures = _capture(monkeypatch)
    chart_module.render_chart(data, tmp_path / "bars.png")
    return {to_hex(p.get_facecolor()) for p in figures[-1].axes[0].patches}


def test_chart_names_ikm_grade_respondents_and_leaves_gaps(
    sqlite_app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = sqlite_app
    for weeks_ago in (0, 1, 4, 5):  # nothing 2 and 3 weeks ago
        add_response(app, "ktp", MON_W47 - timedelta(weeks=weeks_ago), [4, 3, 3, 4, 3, 3, 4, 3, 4])
    data = collect(app)
    texts = chart_texts(monkeypatch, data, tmp_path)
    assert "Disdukcapil · 16-22 November 2026" in texts
    assert "IKM 86,11 (mutu B, Baik) · 1 responden" in texts
    assert "2026-W" not in texts
    assert "3,5" in texts and "3.5" not in texts  # NRR axis ticks with a decimal comma
    en = chart_texts(monkeypatch, data, tmp_path, "en")
    assert "3.5" in en and "IKM 86.11 (grade B, Good) · 1 respondents" in en
    figures = _capture(monkeypatch)
    chart_module.render_chart(data, tmp_path / "gap.png")
    line = figures[-1].axes[1].lines[0]
    ys = list(line.get_ydata())
    assert [math.isnan(y) for y in ys[-6:]] == [False, False, True, True, False, False]
    assert all(math.isnan(y) for y in ys[:-6])


def test_grade_band_colours_are_distinct() -> None:
    from matplotlib.colors import to_rgb

    colours = {k: to_rgb(v) for k, v in chart_module.BAND_COLORS.items()}
    for a, b in (("A", "B"), ("B", "C"), ("C", "D")):
        distance = math.dist([c * 255 for c in colours[a]], [c * 255 for c in colours[b]])
        assert distance > 60, (a, b, distance)


# ---------------------------------------------------------------- XLSX


def test_xlsx_has_widths_legend_local_values_dates_and_services(sqlite_app: App, tmp_path: Path) -> None:
    app = sqlite_app
    add_response(app, "ktp", MON_W47, [4, 3, 3, 4, 3, 3, 4, 3, 4])
    add_response(app, "kk", MON_W47, [4, 3])
    add_complaint(app, "ktp", MON_W47, "KTP belum jadi")
    data = collect(app)
    with app.factory() as db:
        files = write_files(db, data, tmp_path, "id")
    wb = load_workbook(files.xlsx)
    assert wb.sheetnames == ["Ringkasan", "Responden", "Pengaduan", "Keterangan"]
    summary = [tuple(c.value for c in row) for row in wb["Ringkasan"].iter_rows()]
    assert summary[1][:2] == ("Periode", "16-22 November 2026")
    assert summary[2][1].date() == date(2026, 11, 16) and summary[3][1].date() == date(2026, 11, 22)
    services = {r[0]: r for r in summary if r[0] in ("KTP Elektronik", "Kartu Keluarga")}
    assert services["KTP Elektronik"][1:4] == (86.11, "B", 1)
    assert services["Kartu Keluarga"][1:4] == ("belum ada data", None, 1)
    assert wb["Ringkasan"].column_dimensions["A"].width >= 30
    assert wb["Responden"].column_dimensions["O"].width >= 40
    legend = [tuple(c.value for c in row) for row in wb["Keterangan"].iter_rows()]
    assert legend[1] == ("U1", "Persyaratan") and legend[9][0] == "U9" and len(legend) == 10
    responses = [tuple(c.value for c in row) for row in wb["Responden"].iter_rows()]
    assert {r[3] for r in responses[1:]} == {"Telegram"}
    assert {r[4] for r in responses[1:]} == {"lengkap", "sebagian"}
    complaints = [tuple(c.value for c in row) for row in wb["Pengaduan"].iter_rows()]
    assert complaints[1][4] == "baru"
    values = " ".join(str(c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row)
    for english in ("complete", "partial", "new", "console", "2026-W47", "n/a"):
        assert english not in values.split(), english


# ---------------------------------------------------------------- wording


def test_no_na_no_zero_respondents_no_iso_weeks(sqlite_app: App, tmp_path: Path) -> None:
    app = sqlite_app
    add_response(app, "kk", MON_W47 - timedelta(weeks=1), [4, 4, 4, 4, 4, 4, 4, 4])  # no U9: no IKM
    add_response(app, "rawat-jalan", MON_W47, [4] * 9)  # another agency
    data = collect(app)
    with app.factory() as db:
        files = write_files(db, data, tmp_path, "id")
        files_en = write_files(db, data, tmp_path, "en")
    everything = "\n".join([
        render_text(data), render_text(data, "en"), caption(data), caption(data, "en"),
        *(str(p.get("text", "")) + str(p.get("photo", "")) + str(p.get("document", ""))
          for p in payloads(data, files, "id") + payloads(data, files_en, "en")),
    ])
    assert "n/a" not in everything
    assert "dari 0 responden" not in everything and "from 0 respondents" not in everything
    assert "2026-W" not in everything.replace("prima-disdukcapil-2026-W47", "")
    assert "Minggu 16-22 November 2026 (WIB)" in everything
    assert "Week of 16-22 November 2026 (WIB)" in everything
    assert "IKM sejak awal tahun (29 Desember 2025 s.d. minggu ini): belum dapat dihitung, dari 1 responden." in everything
    assert "• Kartu Keluarga: belum ada responden · belum ada data (1)" in everything


@pytest.mark.parametrize(
    ("monday", "lang", "shown"),
    [
        (date(2026, 11, 23), "id", "23-29 November 2026"),
        (date(2026, 11, 23), "en", "23-29 November 2026"),
        (date(2026, 11, 30), "id", "30 November - 6 Desember 2026"),
        (date(2026, 11, 30), "en", "30 November - 6 December 2026"),
        (date(2026, 12, 28), "id", "28 Desember 2026 - 3 Januari 2027"),
    ],
)
def test_weeks_are_written_as_dates(monday: date, lang: str, shown: str) -> None:
    assert Fmt(TEXTS, lang).week(monday) == shown

