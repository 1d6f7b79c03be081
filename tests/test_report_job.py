"""The periodic report's job: due periods, produced once per (scope, period), sent to heads and admins."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from bot.app import App
from bot.cli import main as cli
from bot.reports.periodic.job import due_periods, run_report_job, run_reports
from bot.scheduler import build_scheduler
from bot.storage.models import Agency, OutboxMessage, PeriodicReport, StaffMember
from tests.conftest import FakeClock
from tests.digest_data import add_head, add_response
from tests.test_report import wib

# 08:00 WIB on 1 January 2027: Q4, S2 and the year 2026 have just ended
NEW_YEAR = datetime(2027, 1, 1, 1, 0, tzinfo=UTC)


def test_due_periods() -> None:
    assert [p.label for p in due_periods(NEW_YEAR, "Asia/Jakarta")] == ["2026-Q4", "2026-S2", "2026"]
    assert [p.label for p in due_periods(datetime(2026, 4, 2, 1, tzinfo=UTC), "Asia/Jakarta")] == ["2026-Q1"]
    assert due_periods(datetime(2026, 5, 20, tzinfo=UTC), "Asia/Jakarta") == []  # nothing ended lately
    # 23:30 WIB on 31 December is already 1 January in WIT: only there has the year ended
    late = datetime(2026, 12, 31, 16, 30, tzinfo=UTC)
    assert due_periods(late, "Asia/Jakarta") == []
    assert [p.label for p in due_periods(late, "Asia/Jayapura")] == ["2026-Q4", "2026-S2", "2026"]


def _admin(app: App, user_id: str) -> None:
    contact_id = add_head(app, "setda", user_id, NEW_YEAR)
    with app.factory() as db, db.begin():
        member = db.scalars(select(StaffMember).where(StaffMember.contact_id == contact_id)).one()
        member.role = "admin"


async def test_the_job_produces_each_report_once_and_sends_it(app: App, clock: FakeClock, tmp_path: Path) -> None:
    clock.now = NEW_YEAR
    app.settings.report_dir = tmp_path / "reports"
    with app.factory() as db, db.begin():  # two agencies are enough (and render quicker)
        db.execute(update(Agency).where(Agency.slug.not_in(("disdukcapil", "setda"))).values(active=False))
    add_head(app, "disdukcapil", "701", NEW_YEAR)
    add_head(app, "disdukcapil", "702", NEW_YEAR, language="en")
    _admin(app, "703")
    add_response(app, "ktp", wib(2026, 11, 2), [4, 3, 3, 3, 4, 3, 3, 3, 4])
    produced = await run_report_job(app)
    with app.factory() as db:
        n_agencies = db.scalar(select(func.count()).select_from(Agency).where(Agency.active)) or 0
        rows = db.scalars(select(PeriodicReport)).all()
        assert n_agencies == 2 and len(rows) == 3 * (n_agencies + 1)  # Q4, S2, year for every agency and the regency
        assert {r.period for r in rows if r.scope == "disdukcapil"} == {"2026-Q4", "2026-S2", "2026"}
        messages = db.scalars(select(OutboxMessage).where(OutboxMessage.kind == "report")).all()
    by_chat: dict[str, list[OutboxMessage]] = {}
    for m in messages:
        by_chat.setdefault(m.chat_id, []).append(m)
    # two heads x 3 periods x (PDF, XLSX); the admin gets the regency's 3 x 2
    assert len(by_chat["701"]) == 6 and len(by_chat["702"]) == 6 and len(by_chat["703"]) == 6
    english = [m.payload["document"]["filename"] for m in by_chat["702"]]
    assert "prima-skm-disdukcapil-2026-Q4-en.pdf" in english
    assert all("kabupaten" in m.payload["document"]["filename"] for m in by_chat["703"])
    pdf = Path(by_chat["701"][0].payload["document"]["path"])
    assert pdf.exists() and pdf.parent == tmp_path / "reports" / "disdukcapil" / "2026-Q4"
    assert "IKM" in by_chat["701"][0].payload["document"]["caption"]
    assert sum(p.messages for p in produced) == len(messages)
    # the next day's run (or a second process) does nothing again
    assert run_reports(app, NEW_YEAR.replace(day=2)) == []
    with app.factory() as db:
        assert db.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.kind == "report")) == len(messages)


def test_the_scheduler_registers_the_job(sqlite_app: App) -> None:
    scheduler = build_scheduler(sqlite_app, {})
    assert "periodic-reports" in {j.id for j in scheduler.get_jobs()}


def test_cli_report_text_and_files(
    sqlite_app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    add_response(sqlite_app, "ktp", wib(2026, 11, 2), [4, 3, 3, 3, 4, 3, 3, 3, 4])
    monkeypatch.setenv("DATABASE_URL", sqlite_app.settings.database_url)
    monkeypatch.setenv("CATALOG_PATH", str(sqlite_app.settings.catalog_path))
    assert cli.main(["report", "--agency", "disdukcapil", "--period", "2026-Q4"]) == 0
    out = capsys.readouterr().out
    assert "Triwulan IV 2026" in out and "IKM: 83,33" in out
    assert cli.main(["report", "--all", "--period", "2026", "--out", str(tmp_path), "--lang", "en"]) == 0
    out = capsys.readouterr().out
    assert "prima-skm-kabupaten-2026-en.pdf" in out and (tmp_path / "prima-skm-kabupaten-2026-en.xlsx").exists()
    assert cli.main(["report", "--agency", "nope", "--period", "2026"]) == 2
    assert cli.main(["report", "--agency", "disdukcapil", "--period", "2026-Q7"]) == 2
