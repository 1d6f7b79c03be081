"""The weekly digest: SQL aggregation against hand-computed IKM, text, chart, spreadsheet, delivery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook
from PIL import Image
from sqlalchemy import select, update

from bot.app import App
from bot.cli import main as cli
from bot.reports import ikm
from bot.reports.digest.data import collect as collect_digest
from bot.reports.digest.data import find_agency
from bot.reports.digest.files import write_files
from bot.reports.digest.job import produce_digest
from bot.reports.digest.mask import mask_personal
from bot.reports.digest.model import DigestData
from bot.reports.digest.period import parse_week, previous_week, week_bounds
from bot.reports.digest.text import render_text
from bot.storage.models import Agency, Digest, OutboxMessage, SurveyResponse
from tests.conftest import FakeClock
from tests.digest_data import add_complaint, add_head, add_response

MON_W47 = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)  # Monday 08:00 WIB, inside 2026-W47
DIGEST_TIME = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)  # Monday 07:30 WIB


def collect(app: App, slug: str = "disdukcapil", week: str = "2026-W47") -> DigestData:
    with app.factory() as db:
        return collect_digest(db, find_agency(db, slug), week)


def set_timezone(app: App, slug: str, tz: str) -> None:
    with app.factory() as db, db.begin():
        db.execute(update(Agency).where(Agency.slug == slug).values(timezone=tz))


def test_week_bounds_are_agency_local() -> None:
    assert week_bounds("2026-W47", "Asia/Jakarta") == (
        datetime(2026, 11, 15, 17, tzinfo=UTC), datetime(2026, 11, 22, 17, tzinfo=UTC))
    assert week_bounds("2026-W47", "Asia/Makassar")[0] == datetime(2026, 11, 15, 16, tzinfo=UTC)
    assert week_bounds("2026-W47", "Asia/Jayapura")[0] == datetime(2026, 11, 15, 15, tzinfo=UTC)
    # Sunday 23:30 WIB is already Monday 01:30 WIT: the last complete week differs by zone
    sunday_night = datetime(2026, 11, 22, 16, 30, tzinfo=UTC)
    assert previous_week(sunday_night, "Asia/Jakarta") == "2026-W46"
    assert previous_week(sunday_night, "Asia/Jayapura") == "2026-W47"
    assert previous_week(datetime(2027, 1, 4, 0, 30, tzinfo=UTC), "Asia/Jakarta") == "2026-W53"
    with pytest.raises(ValueError, match="has no ISO week 54"):
        parse_week("2026-W54")
    with pytest.raises(ValueError, match="must look like"):
        parse_week("minggu lalu")


def test_sql_ikm_matches_the_hand_computation(app: App) -> None:
    week_rows: list[list[int | None]] = [
        [4, 3, 2, 1, 4, 3, 2, 1, 4],
        [None, 3, 4, 1, 2, None, 2, 3, 4],  # two "tidak tahu"
    ]
    add_response(app, "ktp", MON_W47, week_rows[0], "antrian terlalu lama")
    add_response(app, "kk", MON_W47 + timedelta(days=2), week_rows[1])
    add_response(app, "kk", MON_W47 + timedelta(days=3), [1, 1, 1])  # stopped after three
    add_response(app, "ktp", MON_W47 - timedelta(days=7), [3] * 9)  # last week
    add_response(app, "pbb", MON_W47, [1] * 9)  # another agency: not counted
    data = collect(app)
    expected = ikm.from_scores([*week_rows, [1, 1, 1]])
    # NRR: 5/2, 7/3, 7/3, 2/2, 6/2, 3/1, 4/2, 4/2, 8/2 -> sum 22.1667 -> x 25/9 = 61.574
    assert data.week_ikm.nrr == expected.nrr
    assert data.week_ikm.value == expected.value == Decimal("61.57")
    assert data.week_ikm.grade == "D"
    assert data.respondents_week == 3 and data.respondents_prev == 1
    assert data.prev_ikm.value == Decimal("75.00")
    assert {e: n for e, n in data.skipped_week.items() if n} == {1: 1, 6: 1}
    assert data.respondents_ytd == 4
    assert data.ytd_ikm.value == ikm.from_scores([*week_rows, [1, 1, 1], [3] * 9]).value
    ktp = next(s for s in data.services if s.code == "ktp")
    assert ktp.week.value == ikm.from_scores([week_rows[0]]).value == Decimal("66.67")
    assert ktp.respondents_week == 1 and ktp.respondents_ytd == 2
    assert [f.element for f in data.focus] == [4, 7, 8]  # NRR 1, 2, 2 (ties: official order)
    text = render_text(data)
    assert "IKM minggu ini: 61,57 (mutu D, Tidak Baik), dari 3 responden." in text
    # 3 and 1 respondents: no change is claimed from so few (bot/reports/sample.py TREND_FLOOR)
    assert "Minggu lalu 75,00. Perubahan tidak disimpulkan" in text and "poin" not in text
    assert "1. Biaya/Tarif: NRR 1,00" in text
    en = render_text(data, "en")
    assert "IKM this week: 61.57 (grade D, Poor), from 3 respondents." in en


@pytest.mark.parametrize(("tz", "utc_hour"), [("Asia/Jakarta", 17), ("Asia/Makassar", 16), ("Asia/Jayapura", 15)])
def test_week_membership_follows_the_agency_zone(app: App, tz: str, utc_hour: int) -> None:
    set_timezone(app, "rsud", tz)
    boundary = datetime(2026, 11, 22, utc_hour, tzinfo=UTC)  # Monday 00:00 local of W48
    add_response(app, "rawat-jalan", boundary - timedelta(seconds=1), [4] * 9)  # Sunday 23:59:59
    add_response(app, "rawat-jalan", boundary, [1] * 9)  # Monday 00:00:00: next week
    add_response(app, "rawat-jalan", boundary - timedelta(days=7), [2] * 9)  # first second of W47
    data = collect(app, "rsud")
    assert data.respondents_week == 2
    assert data.week_ikm.value == Decimal("75.00")  # (4 + 2) / 2 = NRR 3 -> 75
    assert collect(app, "rsud", "2026-W48").week_ikm.value == Decimal("25.00")


def test_empty_week_says_so_and_the_head_still_gets_it(sqlite_app: App, clock: FakeClock, tmp_path: Path) -> None:
    app = sqlite_app
    add_head(app, "samsat", "9001", clock())
    app.settings.digest_dir = tmp_path
    data = collect(app, "samsat")
    assert data.week_ikm.value is None and data.respondents_week == 0
    text = render_text(data)
    assert "Minggu ini belum ada penilaian dari warga" in text
    assert "Fokus perbaikan" not in text
    produced = produce_digest(app, "samsat", "2026-W47", clock())
    assert produced is not None and produced.recipients == 1
    with app.factory() as db:
        rows = list(db.scalars(select(OutboxMessage).where(OutboxMessage.kind == "digest")))
    assert rows[0].payload["photo"]["caption"].startswith(
        "IKM Samsat minggu 16-22 November 2026: belum dapat dihitung; belum ada responden.")
    assert "belum ada penilaian" in rows[1].payload["text"]
    assert rows[-1].payload["document"]["filename"] == "prima-samsat-2026-W47-id.xlsx"


def test_missing_element_is_named_instead_of_divided_by_zero(sqlite_app: App) -> None:
    app = sqlite_app
    add_response(app, "ktp", MON_W47, [4, 4, 4, None, 4, 4, 4, 4, 4])
    data = collect(app)
    assert data.week_ikm.value is None and data.week_ikm.missing == (4,)
    text = render_text(data)
    assert "IKM minggu ini: belum dapat dihitung, dari 1 responden." in text
    assert "belum dinilai siapa pun minggu ini: Biaya/Tarif." in text
    assert "4. Biaya/Tarif: belum ada jawaban" in text
    assert "Fokus perbaikan: tidak ada" not in text  # an unrated element is not "all grade A"


def test_complaints_section_and_bribery_first(app: App) -> None:
    start = MON_W47
    add_complaint(app, "ktp", start, "Petugas minta uang rokok 50 ribu, hubungi saya 0812-3456-7890",
                  category="lainnya")
    add_complaint(app, "kk", start + timedelta(hours=1), "KK tidak jadi jadi sudah sebulan",
                  resolved_at=start + timedelta(hours=1, days=2))
    add_complaint(app, "kk", start + timedelta(hours=2), "Lama sekali prosesnya tanpa kabar",
                  resolved_at=start + timedelta(hours=2, days=4))
    add_complaint(app, "ktp", start - timedelta(days=30), "Masih menunggu sejak bulan lalu")  # overdue
    add_complaint(app, "ktp", start + timedelta(days=8), "Minggu depan")  # not this week
    c = collect(app).complaints
    assert (c.new, c.resolved, c.open, c.overdue) == (3, 2, 2, 1)
    assert c.median_days == 3.0
    assert c.by_category == [("penundaan", 2), ("lainnya", 1)]
    assert c.by_service == [("Kartu Keluarga", 2), ("KTP Elektronik", 1)]
    text = render_text(collect(app))
    lines = text.split("\n")
    assert lines[3] == "⚠️ 1 laporan pungli/suap minggu ini, mohon ditindaklanjuti lebih dulu:"
    assert "0812******90" in lines[4] and "3456-7890" not in text
    assert text.index("pungli/suap") < text.index("IKM minggu ini")
    assert "📨 Pengaduan: 3 baru, 2 selesai, 2 masih terbuka, 1 melewati batas waktu penyelesaian." in text
    assert "Median waktu penyelesaian: 3,0 hari." in text


def test_focus_themes_group_similar_suggestions(sqlite_app: App) -> None:
    app = sqlite_app
    for i, s in enumerate(["antrian terlalu lama di loket", "antrian lama sekali di loket ini",
                           "Antrian di loket lama!", "toilet kotor", None]):
        add_response(app, "ktp", MON_W47 + timedelta(hours=i), [4, 4, 1, 4, 4, 4, 4, 4, 4], s)
    add_response(app, "ktp", MON_W47, [4, 4, 4, 4, 4, 4, 4, 4, 3], "ruang tunggu panas")
    data = collect(app)
    waktu = data.focus[0]
    assert waktu.element == 3
    assert waktu.words[:3] == ["antrian", "lama", "loket"]
    assert waktu.themes[0][1] == 3 and "loket" in waktu.themes[0][0]
    assert "ruang tunggu" not in str(waktu.themes)  # that resident did not rate Waktu low


def test_masking_nik_and_phone_numbers() -> None:
    text = ("NIK 3201234567890001, hp 081234567890 / +62 812-3456-7890 / 6281234567890, "
            "tiket PRM-AB12CD34, biaya 50000, tahun 2026")
    masked = mask_personal(text)
    assert "3201********0001" in masked
    assert masked.count("0812******90") == 1
    assert "+62812******90" in masked and " 62812******90" in masked
    for raw in ("3201234567890001", "081234567890", "812-3456-7890", "6281234567890"):
        assert raw not in masked
    assert "PRM-AB12CD34" in masked and "50000" in masked and "2026" in masked



def test_chart_and_spreadsheet_are_valid_files(sqlite_app: App, tmp_path: Path) -> None:
    app = sqlite_app
    for week in range(12):
        at = MON_W47 - timedelta(weeks=week)
        add_response(app, "ktp", at, [3, 3, 2, 4, 3, 3, 4, 2, 3], "Hubungi 081298765432, NIK 3509876543210002")
        kk = add_response(app, "kk", at + timedelta(hours=3), [4, None, 3, 4, 4, 3, 4, 3, 4])
        if week == 0:
            with app.factory() as db, db.begin():  # this week's answered at the counter tablet
                db.execute(update(SurveyResponse).where(SurveyResponse.id == kk).values(channel="kiosk"))
    add_complaint(app, "ktp", MON_W47, "Diminta uang pelicin oleh calo, NIK 3201234567890001")
    data = collect(app)
    with app.factory() as db:
        files = write_files(db, data, tmp_path, "id")
    with Image.open(files.chart) as img:
        assert img.format == "PNG" and img.size == (900, 1350)
        colours = img.convert("RGB").getcolors(maxcolors=1_000_000) or []
        assert len(colours) > 50  # a drawn chart, not a blank canvas
    wb = load_workbook(files.xlsx, read_only=True)
    assert wb.sheetnames == ["Ringkasan", "Responden", "Pengaduan", "Keterangan"]
    summary = list(wb["Ringkasan"].iter_rows(values_only=True))
    assert summary[4][:3] == ("IKM", float(data.week_ikm.value or 0), data.week_ikm.grade)
    assert summary[9][:4] == ("U1. Persyaratan", 3.5, 2, 0)
    assert summary[10][:4] == ("U2. Sistem, Mekanisme, dan Prosedur", 3.0, 1, 1)
    responses = list(wb["Responden"].iter_rows(values_only=True))
    assert responses[0][5:14] == tuple(f"U{e}" for e in range(1, 10))
    assert len(responses) == 3
    first = responses[1]
    assert first[1] == datetime(2026, 11, 16, 8, 0)  # local WIB time
    assert first[5:14] == (3, 3, 2, 4, 3, 3, 4, 2, 3)
    assert first[14] == "Hubungi 0812******32, NIK 3509********0002"
    assert responses[2][5:14] == (4, None, 3, 4, 4, 3, 4, 3, 4)
    assert "Kios (tablet loket)" in responses[2] and "Telegram" in responses[1]  # words, not codes
    complaints = list(wb["Pengaduan"].iter_rows(values_only=True))
    assert complaints[1][5] == "Diminta uang pelicin oleh calo, NIK 3201********0001"
    assert complaints[1][6] == "Ya"
    wb.close()
    assert "3201234567890001" not in files.xlsx.read_bytes().decode("latin-1")


def test_cli_digest_prints_or_writes_files(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    app: App,
) -> None:
    add_response(app, "ktp", MON_W47, [4] * 9)
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert cli.main(["digest", "--agency", "disdukcapil", "--week", "2026-W47"]) == 0
    out = capsys.readouterr().out
    assert "IKM minggu ini: 100,00 (mutu A, Sangat Baik), dari 1 responden." in out
    assert cli.main(["digest", "--agency", "disdukcapil", "--week", "2026-W47", "--out",
                     str(tmp_path / "o"), "--lang", "en"]) == 0
    paths = capsys.readouterr().out.split()
    assert [Path(p).suffix for p in paths] == [".txt", ".png", ".xlsx"]
    assert all(Path(p).stat().st_size > 0 for p in paths)
    assert "IKM this week: 100.00" in Path(paths[0]).read_text()
    assert cli.main(["digest", "--agency", "disdukcapil", "--week", "2026-W99"]) == 2
    assert "2026 has no ISO week 99" in capsys.readouterr().err
    assert cli.main(["digest", "--agency", "dinas-x"]) == 2
    assert "Unknown agency 'dinas-x'" in capsys.readouterr().err
    with app.factory() as db:  # building by hand is not producing: nothing recorded or queued
        assert db.scalars(select(Digest)).first() is None


async def test_head_receives_photo_text_and_spreadsheet_over_telegram(
    sqlite_app: App, clock: FakeClock, tmp_path: Path
) -> None:
    app = sqlite_app
    from bot.channels.telegram.sender import TelegramSender
    from bot.scheduler import build_dispatcher
    from tests.fake_telegram import User
    from tests.telegram_harness import harness

    app.settings.digest_dir = tmp_path
    add_response(app, "ktp", MON_W47, [4, 3, 3, 2, 4, 3, 4, 3, 4], "loket ramah")
    head = User(id=8001, first_name="Kadis", language_code="id")
    with app.factory() as db, db.begin():
        from bot.desk import staff

        code = staff.create_invite(db, "disdukcapil", "head", clock())
    clock.now = DIGEST_TIME
    async with harness(app, clock) as h:
        async with h.polling():
            await h.say(head, f"/daftar {code}")
        produced = produce_digest(app, "disdukcapil", None, clock())
        assert produced is not None and produced.week == "2026-W47"
        before = len(h.server.requests)
        dispatcher = build_dispatcher(app, {"telegram": TelegramSender(h.bot)}, clock)
        await dispatcher.drain(max_ticks=5)
        sends = [(m, p) for m, p in h.server.requests[before:] if str(p.get("chat_id")) == str(head.id)]
    # Judged on the requests the Bot API received, in order.
    assert [m for m, _ in sends][:3] == ["sendPhoto", "sendMessage", "sendDocument"]
    photo, text, document = (p for _, p in sends[:3])
    assert len(photo["caption"]) <= 1024
    assert photo["caption"].startswith(
        "IKM Disdukcapil minggu 16-22 November 2026: 83,33 (mutu B, Baik); 1 responden.")
    assert text["text"].startswith("📊 Ringkasan mingguan Disdukcapil") and len(text["text"]) <= 4096
    uploads = [v for v in document.values() if isinstance(v, dict) and "filename" in v]
    assert [u["filename"] for u in uploads] == ["prima-disdukcapil-2026-W47-id.xlsx"]
    assert uploads[0]["size"] > 1000
    assert document["caption"].startswith("Rekap minggu 16-22 November 2026: 1 responden")


def test_bribery_is_one_rule_with_the_case_trigger(app: App) -> None:
    """The digest flags bribery with the same rule that makes a case urgent (the periodic
    report uses it too): English words and affixed forms count; look-alike words do not."""
    start = MON_W47
    add_complaint(app, "ktp", start, "The officer asked me for a bribe to finish my ID card", category="lainnya")
    add_complaint(app, "ktp", start + timedelta(hours=1), "Saya disogok eh diminta sogokan di loket", category="lainnya")
    add_complaint(app, "kk", start + timedelta(hours=2), "Calon pegawai baru belum paham prosedur", category="lainnya")
    add_complaint(app, "kk", start + timedelta(hours=3), "Antrean lama, my bride waited too", category="lainnya")
    flagged = [r.description for r in collect(app).complaints.bribery]
    assert flagged == ["The officer asked me for a bribe to finish my ID card",
                       "Saya disogok eh diminta sogokan di loket"]
