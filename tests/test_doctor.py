"""``python bot.py doctor`` against the fake Bot API and the fake Graph API, good and bad settings."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import delete, select, update

from bot.cli import doctor, doctor_whatsapp
from bot.cli import main as cli
from bot.config import Settings
from bot.storage.db import alembic_config, make_engine
from bot.storage.models import Agency, StaffRoom
from tests import fake_graph as fg
from tests import fake_telegram as ft
from tests.conftest import ROOT, FakeClock, make_app
from tests.whatsapp_harness import wa_settings

TEMPLATE = "prima_followup"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def telegram() -> AsyncIterator[ft.FakeTelegram]:
    server = ft.FakeTelegram()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def graph() -> AsyncIterator[fg.FakeGraph]:
    server = fg.FakeGraph(templates=[
        {"name": TEMPLATE, "language": "id", "status": "APPROVED", "id": "1"},
        {"name": TEMPLATE, "language": "en", "status": "APPROVED", "id": "2"},
    ])
    await server.start()
    yield server
    await server.stop()


def good(url: str, tmp_path: Path, telegram: ft.FakeTelegram, graph: fg.FakeGraph, **extra: Any) -> Settings:
    """A deployment as it should be: a migrated database, writable folders, both channels."""
    app = make_app(url, FakeClock())  # migrated, catalog loaded
    try:
        with app.factory() as db, db.begin():  # every agency has a staff room
            roomed = set(db.scalars(select(StaffRoom.agency_id)))
            for agency in db.scalars(select(Agency).where(Agency.id.not_in(roomed))):
                db.add(StaffRoom(agency_id=agency.id, channel="telegram",
                                 chat_id=f"-100{agency.id}", linked_at=datetime.now(UTC)))
    finally:
        app.engine.dispose()
    values: dict[str, Any] = {
        "database_url": url, "catalog_path": ROOT / "catalog.yaml",
        "digest_dir": tmp_path / "digests", "whatsapp_media_dir": tmp_path / "media",
        "report_dir": tmp_path / "reports", "telegram_bot_token": telegram.token, "telegram_api_base": telegram.base_url,
        **wa_settings(graph), "whatsapp_business_account_id": graph.business_account_id,
        "whatsapp_template_followup": TEMPLATE,
    }
    values.update(extra)
    return Settings(**values)


async def doctor_run(settings: Settings, capsys: pytest.CaptureFixture[str],
                     today: date = date(2026, 12, 1)) -> tuple[int, list[str]]:
    """The doctor in a thread (it runs its own event loop) while the fakes serve on this one."""
    rc = await asyncio.to_thread(doctor.run, settings, today)
    return rc, capsys.readouterr().out.splitlines()


def line(lines: list[str], name: str) -> str:
    found = [x for x in lines if x.split(None, 1)[1].startswith(name + ":")]
    assert found, f"no line {name!r} in:\n" + "\n".join(lines)
    return found[0]


async def test_good_settings_all_ok(db_url: str, tmp_path: Path, telegram: ft.FakeTelegram,
                                    graph: fg.FakeGraph, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLIC_BASE_URL", telegram.base_url + "/")
    rc, lines = await doctor_run(good(db_url, tmp_path, telegram, graph), capsys)
    assert rc == 0, "\n".join(lines)
    assert all(x.startswith("OK ") for x in lines), "\n".join(lines)
    for name in ("settings", "database", "catalog", "clock", "outbox", "scheduler", "telegram",
                 "telegram webhook", "telegram updates", "whatsapp", "whatsapp template",
                 "whatsapp api version", "PUBLIC_BASE_URL", "agencies"):
        line(lines, name)
    assert "@PrimaTestBot" in line(lines, "telegram")
    assert "outbox-dispatcher" in line(lines, "scheduler") and "digest:" in line(lines, "scheduler")
    assert sum("writable" in x for x in lines) == (4 if db_url.startswith("sqlite") else 3)  # digests, reports, media (+ the SQLite folder)


async def test_webhook_mode_matching_and_reachable(sqlite_url: str, tmp_path: Path,
                                                   telegram: ft.FakeTelegram, graph: fg.FakeGraph,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    hook = telegram.base_url + "/hook"  # something that answers HTTP
    telegram.webhook = {"url": hook}
    rc, lines = await doctor_run(good(sqlite_url, tmp_path, telegram, graph, telegram_webhook_url=hook), capsys)
    assert rc == 0
    assert line(lines, "telegram webhook").startswith("OK") and hook in line(lines, "telegram webhook")
    assert line(lines, "telegram webhook reachable").startswith("OK")


class FailingWebhook(ft.FakeTelegram):
    async def _m_getwebhookinfo(self, params: dict[str, Any]) -> Any:
        info = await super()._m_getwebhookinfo(params)
        return {**info, "last_error_date": 1764036000, "last_error_message": "Connection refused"}


async def test_webhook_delivery_error_is_shown(sqlite_url: str, tmp_path: Path, graph: fg.FakeGraph,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    telegram = FailingWebhook()
    await telegram.start()
    try:
        hook = telegram.base_url + "/hook"
        telegram.webhook = {"url": hook}
        rc, lines = await doctor_run(good(sqlite_url, tmp_path, telegram, graph,
                                          telegram_webhook_url=hook), capsys)
    finally:
        await telegram.stop()
    errors = [x for x in lines if "last delivery error" in x]
    assert rc == 0 and len(errors) == 1
    assert errors[0].startswith("WARN") and "Connection refused" in errors[0]
    assert line(lines, "telegram webhook url").startswith("WARN")  # http://, not https://


async def test_webhook_mismatch_warns(sqlite_url: str, tmp_path: Path, telegram: ft.FakeTelegram,
                                      graph: fg.FakeGraph, capsys: pytest.CaptureFixture[str]) -> None:
    telegram.webhook = {"url": "https://other.example/telegram/webhook"}
    mine = f"http://127.0.0.1:{free_port()}/telegram/webhook"  # nothing listens there
    rc, lines = await doctor_run(good(sqlite_url, tmp_path, telegram, graph, telegram_webhook_url=mine), capsys)
    hook = line(lines, "telegram webhook")
    assert hook.startswith("WARN") and "other.example" in hook and mine in hook
    assert line(lines, "telegram webhook reachable").startswith("WARN")
    assert rc == 0  # a warning alone does not fail the run


async def test_webhook_left_set_while_polling_warns(sqlite_url: str, tmp_path: Path,
                                                    telegram: ft.FakeTelegram, graph: fg.FakeGraph,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    telegram.webhook = {"url": "https://old.example/hook"}
    _, lines = await doctor_run(good(sqlite_url, tmp_path, telegram, graph), capsys)
    assert line(lines, "telegram webhook").startswith("WARN")
    assert "polls" in line(lines, "telegram webhook")


async def test_wrong_telegram_token_fails(sqlite_url: str, tmp_path: Path, telegram: ft.FakeTelegram,
                                          graph: fg.FakeGraph, capsys: pytest.CaptureFixture[str]) -> None:
    settings = good(sqlite_url, tmp_path, telegram, graph, telegram_bot_token="987654321:WRONG-token-abcdef")
    rc, lines = await doctor_run(settings, capsys)
    assert rc == 1
    assert line(lines, "telegram").startswith("FAIL") and "@BotFather" in line(lines, "telegram")


async def test_whatsapp_bad_token_secret_and_phone_fail(sqlite_url: str, tmp_path: Path,
                                                        telegram: ft.FakeTelegram, graph: fg.FakeGraph,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    for bad, setting in (({"whatsapp_token": "EAAG-wrong"}, "WHATSAPP_TOKEN"),
                         ({"whatsapp_app_secret": "not-the-secret"}, "WHATSAPP_APP_SECRET"),
                         ({"whatsapp_phone_number_id": "999"}, "WHATSAPP_PHONE_NUMBER_ID")):
        rc, lines = await doctor_run(good(sqlite_url, tmp_path, telegram, graph, **bad), capsys)
        assert rc == 1, bad
        assert line(lines, "whatsapp").startswith("FAIL") and setting in line(lines, "whatsapp")


async def test_whatsapp_template_missing_or_unapproved(sqlite_url: str, tmp_path: Path,
                                                       telegram: ft.FakeTelegram, graph: fg.FakeGraph,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    rc, lines = await doctor_run(good(sqlite_url, tmp_path, telegram, graph,
                                      whatsapp_template_followup="no_such_template"), capsys)
    assert rc == 1 and line(lines, "whatsapp template").startswith("FAIL")
    graph.templates[1]["status"] = "PENDING"
    rc, lines = await doctor_run(good(sqlite_url, tmp_path, telegram, graph), capsys)
    assert rc == 0 and line(lines, "whatsapp template").startswith("WARN")
    assert "en PENDING" in line(lines, "whatsapp template")


def test_graph_version_end_of_life() -> None:
    today = date(2026, 12, 1)
    assert doctor_whatsapp.version_line("v26.0", today)[0] == doctor_whatsapp.OK
    assert doctor_whatsapp.version_line("v21.0", today)[0] == doctor_whatsapp.WARN  # 21 January 2027: 51 days
    assert doctor_whatsapp.version_line("v20.0", today)[0] == doctor_whatsapp.FAIL
    level, _, detail = doctor_whatsapp.version_line("v99.0", today)
    assert level == doctor_whatsapp.WARN and "not known" in detail


async def test_unwritable_directory_fails(sqlite_url: str, tmp_path: Path, telegram: ft.FakeTelegram,
                                          graph: fg.FakeGraph, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    rc, lines = await doctor_run(good(sqlite_url, tmp_path, telegram, graph,
                                      digest_dir=blocker / "digests", report_dir=blocker / "reports"),
                             capsys)
    assert rc == 1
    assert line(lines, f"DIGEST_DIR {blocker / 'digests'}").startswith("FAIL")
    assert line(lines, f"REPORT_DIR {blocker / 'reports'}").startswith("FAIL")


def test_unwritable_directory_by_permission(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Root passes every permission check, so the write is tried: a refused write is a FAIL."""
    def refuse(*_: Any, **__: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(doctor.tempfile, "NamedTemporaryFile", refuse)
    level, _, detail = doctor._directory("DIGEST_DIR", tmp_path)
    assert level == doctor.FAIL and "Permission denied" in detail


async def test_old_migrations_fail(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    engine = make_engine(db_url)
    command.upgrade(alembic_config(engine), "0007_reliability")
    engine.dispose()
    settings = Settings(database_url=db_url, catalog_path=ROOT / "catalog.yaml", digest_dir=tmp_path / "d")
    rc, lines = await doctor_run(settings, capsys)
    assert rc == 1
    migrations = line(lines, "migrations")
    assert migrations.startswith("FAIL") and "0007_reliability" in migrations and "migrate" in migrations
    assert not any(x.split(None, 1)[1].startswith("scheduler:") for x in lines)  # nothing built on it


async def test_missing_sqlite_file_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'none.db'}", digest_dir=tmp_path / "d")
    rc, lines = await doctor_run(settings, capsys)
    assert rc == 1 and line(lines, "database").startswith("FAIL")
    assert not (tmp_path / "none.db").exists()  # the doctor does not create it


async def test_unreachable_database_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(database_url=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/prima",
                        digest_dir=tmp_path / "d")
    rc, lines = await doctor_run(settings, capsys)
    assert rc == 1
    assert line(lines, "database").startswith("FAIL") and "cannot use the database" in line(lines, "database")


def test_bad_setting_is_a_fail_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.setenv("DATABASE_URL", "mysql://nope")
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL  settings:") and "DATABASE_URL" in out


async def test_no_channel_fails(sqlite_url: str, tmp_path: Path, telegram: ft.FakeTelegram,
                                graph: fg.FakeGraph, capsys: pytest.CaptureFixture[str]) -> None:
    """`python bot.py` would open the console chat and end: a service that stops at once."""
    settings = good(sqlite_url, tmp_path, telegram, graph, telegram_bot_token=None,
                    whatsapp_token=None, whatsapp_phone_number_id=None, whatsapp_app_secret=None,
                    whatsapp_verify_token=None)
    rc, lines = await doctor_run(settings, capsys)
    assert rc == 1
    channels = line(lines, "channels")
    assert channels.startswith("FAIL") and "no channel configured" in channels
    assert "TELEGRAM_BOT_TOKEN" in channels and "WHATSAPP_TOKEN" in channels


async def test_bad_agency_values_warn(sqlite_url: str, tmp_path: Path, telegram: ft.FakeTelegram,
                                      graph: fg.FakeGraph, capsys: pytest.CaptureFixture[str]) -> None:
    """Values written by hand (an UPDATE) that the bot would replace by defaults: one WARN each."""
    settings = good(sqlite_url, tmp_path, telegram, graph)
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        row = conn.execute(select(Agency.settings).where(Agency.slug == "samsat")).scalar_one()
        conn.execute(update(Agency).where(Agency.slug == "samsat").values(
            settings={**row, "office_hours": "garbage", "digest_time": "99:99"}, quiet_end="7"))
    engine.dispose()
    rc, lines = await doctor_run(settings, capsys)
    assert rc == 0, "\n".join(lines)
    samsat = [x for x in lines if x.split(None, 1)[1].startswith("agency samsat:")]
    assert all(x.startswith("WARN") for x in samsat) and len(samsat) == 3, "\n".join(lines)
    assert any("digest_time '99:99'" in x and "07:30" in x for x in samsat)
    assert any("office_hours" in x and "'garbage'" in x for x in samsat)
    assert any("quiet hours" in x and "21:00-07:00" in x for x in samsat)
    assert not any(x.startswith("OK    agencies:") for x in lines)


async def test_agency_nobody_answers_for_warns(sqlite_url: str, tmp_path: Path,
                                               telegram: ft.FakeTelegram, graph: fg.FakeGraph,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    settings = good(sqlite_url, tmp_path, telegram, graph)
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        bpprd_id = conn.execute(select(Agency.id).where(Agency.slug == "bpprd")).scalar_one()
        conn.execute(delete(StaffRoom).where(StaffRoom.agency_id == bpprd_id))
    engine.dispose()
    rc, lines = await doctor_run(settings, capsys)
    assert rc == 0
    bpprd = line(lines, "agency bpprd")
    assert bpprd.startswith("WARN") and "no staff registered and no staff room" in bpprd
    assert "staff invite --agency bpprd" in bpprd


def test_http_webhook_url() -> None:
    """Telegram's Bot API delivers only to https://; a local Bot API server (--local) also to http."""
    hook = "http://bot.example.go.id/telegram/webhook"
    official = Settings(telegram_bot_token="123456:ABCDEFGHIJKL", telegram_webhook_url=hook)
    level, name, detail = doctor.webhook_scheme_line(official) or ("", "", "")
    assert (level, name) == (doctor.FAIL, "telegram webhook url") and "https://" in detail
    local = Settings(telegram_bot_token="123456:ABCDEFGHIJKL", telegram_webhook_url=hook,
                     telegram_api_base="http://127.0.0.1:8081")
    assert (doctor.webhook_scheme_line(local) or ("",))[0] == doctor.WARN
    secure = Settings(telegram_bot_token="123456:ABCDEFGHIJKL", telegram_webhook_url="https://x.example/h")
    assert doctor.webhook_scheme_line(secure) is None


def test_doctor_logs_in_the_configured_format(sqlite_url: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """LOG_FORMAT=json: what the doctor's checks log (a bad digest_time) is JSON too."""
    app = make_app(sqlite_url, FakeClock())
    with app.factory() as db, db.begin():
        agency = db.scalars(select(Agency).where(Agency.slug == "samsat")).one()
        agency.settings = {**agency.settings, "digest_time": "99:99"}
    app.engine.dispose()
    monkeypatch.chdir(tmp_path)  # no .env
    for name in ("TELEGRAM_BOT_TOKEN", "WHATSAPP_TOKEN", "WHATSAPP_PHONE_NUMBER_ID",
                 "WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN", "PUBLIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("CATALOG_PATH", str(ROOT / "catalog.yaml"))
    monkeypatch.setenv("DIGEST_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("LOG_FORMAT", "json")
    capsys.readouterr()
    cli.main(["doctor"])
    err = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert any("digest_time" in x for x in err), err
    for x in err:
        assert json.loads(x)["level"], x
