"""Running: WhatsApp and Telegram in one process on one aiohttp server; clear configuration errors."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp
import pytest

from bot.channels.telegram import run as _tg  # noqa: F401  aiogram loads slowly: import it before serve()
from bot.channels.whatsapp.channel import WEBHOOK_PATH
from bot.channels.whatsapp.serve import serve
from bot.cli import main as cli
from tests import fake_graph as fg
from tests import fake_telegram as ft
from tests.conftest import FakeClock, make_app
from tests.whatsapp_harness import wa_settings

SITI = "6281234567890"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_whatsapp_and_telegram_in_one_process(sqlite_url: str, clock: FakeClock) -> None:
    graph = fg.FakeGraph()
    telegram = ft.FakeTelegram()
    await graph.start()
    await telegram.start()
    port = free_port()
    app = make_app(sqlite_url, clock, **wa_settings(graph), telegram_bot_token=ft.TOKEN,
                   telegram_api_base=telegram.base_url, http_port=port)
    stop, started = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(app, stop=stop, started=started))
    try:
        waiter = asyncio.create_task(started.wait())
        await asyncio.wait({task, waiter}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # serve() stopped early: show why
        assert started.is_set()
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as resp:
                assert resp.status == 200 and (await resp.json())["status"] == "ok"
            params = {"hub.mode": "subscribe", "hub.verify_token": fg.VERIFY_TOKEN, "hub.challenge": "42"}
            async with http.get(f"{base}{WEBHOOK_PATH}", params=params) as resp:
                assert resp.status == 200 and await resp.text() == "42"
            raw = fg.encode(fg.webhook(messages=[fg.text_message(SITI, "halo")], contacts=[fg.contact(SITI)]))
            async with http.post(f"{base}{WEBHOOK_PATH}", data=raw,
                                 headers={"X-Hub-Signature-256": fg.sign(raw)}) as resp:
                assert resp.status == 200
        await graph.wait_for(lambda: len(graph.to(SITI)) >= 2)
        assert graph.last_to(SITI).titles() == ["1. Setuju", "2. Tidak setuju", "3. English"]
        # Telegram, long polling in the same process
        warga = ft.User(id=7001, first_name="Budi")
        telegram.message(warga, "/start")
        await telegram.wait_for(lambda: len(telegram.chat(warga.id)) >= 2)
        assert telegram.last(warga.id).labels() == ["1. Setuju", "2. Tidak setuju", "3. English"]
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        await graph.stop()
        await telegram.stop()
        app.engine.dispose()


def test_incomplete_whatsapp_settings_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # no .env from the working directory
    for name in ("TELEGRAM_BOT_TOKEN", "WHATSAPP_PHONE_NUMBER_ID", "WHATSAPP_APP_SECRET",
                 "WHATSAPP_VERIFY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'prima.db'}")
    monkeypatch.setenv("WHATSAPP_TOKEN", "EAAG-token")
    assert cli.main([]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("Configuration error: WHATSAPP_PHONE_NUMBER_ID:")
    assert "WHATSAPP_APP_SECRET" in err and "WHATSAPP_VERIFY_TOKEN" in err
