"""Operator commands: QR codes per service (deep links into the survey) and the outbox report."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import pytest
import qrcode
from PIL import Image, ImageChops
from sqlalchemy import select, update

from bot.app import App
from bot.cli.main import main
from bot.storage.models import Contact, OutboxMessage, Service
from tests.conftest import ROOT, FakeClock, make_app
from tests.outbox_support import add_rows


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, sqlite_app: App, sqlite_url: str) -> App:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("CATALOG_PATH", str(ROOT / "catalog.yaml"))
    monkeypatch.delenv("TELEGRAM_BOT_USERNAME", raising=False)
    return sqlite_app


def test_qr_codes_open_the_survey_of_each_service(
    env: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with env.factory() as db, db.begin():
        db.execute(update(Service).where(Service.code == "kia").values(active=False))
        codes = list(db.scalars(select(Service.code).where(Service.active).order_by(Service.id)))
    out = tmp_path / "qr"
    assert main(["qr", "--out", str(out), "--bot-username", "@PrimaBungoBot"]) == 0
    assert f"{len(codes)} QR code(s)" in capsys.readouterr().out
    assert sorted(p.stem for p in out.glob("*.png")) == sorted(codes)  # inactive ones left out
    with (out / "links.csv").open(encoding="utf-8") as fh:
        links = {row["code"]: row for row in csv.DictReader(fh)}
    assert links["ktp"]["link"] == "https://t.me/PrimaBungoBot?start=ktp"
    assert links["ktp"]["service"] == "KTP Elektronik" and links["ktp"]["agency"] == "Disdukcapil"
    # The picture is the QR code of exactly that link.
    expected = qrcode.make(links["pbb"]["link"], error_correction=qrcode.constants.ERROR_CORRECT_M,
                           box_size=10, border=4).get_image().convert("L")
    with Image.open(out / "pbb.png") as png:
        assert ImageChops.difference(png.convert("L"), expected).getbbox() is None


def test_qr_needs_a_username(env: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["qr", "--out", str(tmp_path)]) == 2
    assert "--bot-username" in capsys.readouterr().err
    assert main(["qr", "--out", str(tmp_path), "--bot-username", "not a name!"]) == 2
    assert not list(tmp_path.glob("*.png"))


def test_outbox_report_lists_stuck_rows_and_requeue_resends(
    env: App, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime

    long_ago = datetime.now(UTC) - timedelta(hours=2)  # the CLI runs on the real clock
    add_rows(env.factory, 3, lambda i: long_ago, long_ago)
    with env.factory() as db, db.begin():
        ids = list(db.scalars(select(OutboxMessage.id).order_by(OutboxMessage.id)))
        db.execute(update(OutboxMessage).where(OutboxMessage.id == ids[0])
                   .values(status="claimed", claimed_at=long_ago))
        db.execute(update(OutboxMessage).where(OutboxMessage.id == ids[1])
                   .values(status="unknown", last_error="TelegramNetworkError: Request timeout error"))
    assert main(["outbox", "report"]) == 0
    out = capsys.readouterr().out
    assert "claimed 1" in out and "pending 1" in out and "unknown 1" in out
    assert f"#{ids[0]} telegram followup_checkin claimed" in out
    assert f"#{ids[1]}" in out and "Request timeout" in out
    assert "outbox requeue" in out
    assert main(["outbox", "requeue", str(ids[0]), str(ids[2])]) == 0  # ids[2] is not stuck
    assert "1 of 2 message(s) queued again" in capsys.readouterr().out
    with env.factory() as db:
        assert db.get(OutboxMessage, ids[0]).status == "pending"  # type: ignore[union-attr]


def test_drain_without_a_channel_names_both(env: App, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("TELEGRAM_BOT_TOKEN", "WHATSAPP_TOKEN", "WHATSAPP_PHONE_NUMBER_ID",
                 "WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert main(["outbox", "drain"]) == 2
    err = capsys.readouterr().err
    assert "TELEGRAM_BOT_TOKEN" in err and "WHATSAPP_TOKEN" in err
    monkeypatch.setenv("WHATSAPP_TOKEN", "t")  # WhatsApp half configured: say what is missing
    assert main(["outbox", "drain"]) == 2
    err = capsys.readouterr().err
    assert "missing: WHATSAPP_PHONE_NUMBER_ID, WHATSAPP_APP_SECRET, WHATSAPP_VERIFY_TOKEN" in err


async def test_drain_sends_whatsapp_rows_too(sqlite_url: str, clock: FakeClock,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """``outbox drain`` with only WhatsApp configured sends WhatsApp's due rows through Graph."""
    from bot.cli.outbox import _drain
    from tests import fake_graph as fg
    from tests.whatsapp_harness import wa_settings

    graph = fg.FakeGraph()
    await graph.start()
    app = make_app(sqlite_url, clock, **wa_settings(graph))
    try:
        now = clock()
        with app.factory() as db, db.begin():
            contact = Contact(channel="whatsapp", external_id="6281234567890", language="id",
                              consent_at=now, created_at=now, last_inbound_at=now)
            db.add(contact)
            db.flush()
            db.add(OutboxMessage(channel="whatsapp", chat_id="6281234567890", contact_id=contact.id,
                                 kind="reply", payload={"text": "Terima kasih, laporan diterima."},
                                 status="pending", due_at=now, created_at=now, ref="drain-wa"))
        assert await _drain(app) == 0
        assert "sent 1," in capsys.readouterr().out
        assert [s.to for s in graph.sent] == ["6281234567890"]
        assert graph.sent[0].text == "Terima kasih, laporan diterima."
        with app.factory() as db:
            assert db.scalars(select(OutboxMessage.status)).one() == "sent"
    finally:
        app.engine.dispose()
        await graph.stop()


def test_qr_writes_the_web_chat_link_beside_telegram_and_alone(
    env: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://prima.example.go.id/")
    both = tmp_path / "both"
    assert main(["qr", "--out", str(both), "--bot-username", "PrimaBungoBot"]) == 0
    with (both / "links.csv").open(encoding="utf-8") as fh:
        links = {row["code"]: row for row in csv.DictReader(fh)}
    assert links["ktp"]["link"] == "https://t.me/PrimaBungoBot?start=ktp"
    assert links["ktp"]["web_link"] == "https://prima.example.go.id/chat/ktp"
    expected = qrcode.make(links["ktp"]["web_link"], error_correction=qrcode.constants.ERROR_CORRECT_M,
                           box_size=10, border=4).get_image().convert("L")
    with Image.open(both / links["ktp"]["web_file"]) as png:
        assert ImageChops.difference(png.convert("L"), expected).getbbox() is None
    web_only = tmp_path / "web"  # no Telegram username: the web chat's codes only
    assert main(["qr", "--out", str(web_only)]) == 0
    assert "web chat" in capsys.readouterr().out
    assert sorted(p.name for p in web_only.glob("*.png")) == sorted(f"{c}-web.png" for c in links)
    monkeypatch.setenv("WEB_CHAT", "off")
    assert main(["qr", "--out", str(tmp_path / "none")]) == 2
