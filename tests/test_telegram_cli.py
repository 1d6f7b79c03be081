"""``python bot.py`` with TELEGRAM_BOT_TOKEN set runs the Telegram channel (a real process)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.conftest import free_port
from tests.fake_telegram import FakeTelegram, User

ROOT = Path(__file__).resolve().parent.parent


async def test_bot_py_polls_a_custom_bot_api_server(tmp_path: Path) -> None:
    server = FakeTelegram()
    await server.start()
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": server.token, "TELEGRAM_API_BASE": server.base_url,
           "DATABASE_URL": f"sqlite:///{tmp_path / 'prima.db'}", "LOG_LEVEL": "WARNING",
           "HTTP_PORT": str(free_port())}
    env.pop("TELEGRAM_WEBHOOK_URL", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bot.py"), cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await server.wait_for(lambda: bool(server.calls("deleteWebhook")), timeout=30)
        server.message(User(id=42, first_name="Ani", language_code="en"), "/start")
        await server.wait_for(lambda: len(server.chat(42)) >= 2, timeout=15)
        assert server.chat(42)[-1].labels()[0] == "1. I agree"
        assert set(server.commands) == {"", "id", "en"}
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
        await server.stop()
    assert proc.returncode == 0, err.decode()
