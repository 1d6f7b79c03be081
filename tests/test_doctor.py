"""``python bot.py doctor`` against the fake Bot API and the fake Graph API, good and bad settings."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from alembic import command

from bot.cli import doctor, doctor_whatsapp
from bot.cli import main as cli
from bot.config import Settings
from bot.storage.db import alembic_config, make_engine
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
    make_app(url, FakeClock()).engine.dispose()  # migrated, catalog loaded
    values: dict[str, Any] = {
        "database_url": url, "catalog_path": ROOT / "catalog.yaml",
        "digest_dir": tmp_path / "digests", "whatsapp_media_dir": tmp_path / "media",
        "telegram_bot_token": telegram.token, "telegram_api_base": telegram.base_url,
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
                 "whatsapp api version", "PUBLIC_BASE_URL"):
        line(lines, name)
    assert "@PrimaTestBot" in line(lines, "telegram")
    assert "outbox-dispatcher" in line(lines, "scheduler") and "digest:" in line(lines, "scheduler")
    assert sum("writable" in x for x in lines) == (3 if db_url.startswith("sqlite") else 2)


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
                                      digest_dir=blocker / "digests"), capsys)
    assert rc == 1
    assert line(lines, f"DIGEST_DIR {blocker / 'digests'}").startswith("FAIL")


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
