"""``LOG_FORMAT=json``: one JSON object per line, structured fields, never what residents wrote."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from bot import logs
from tests.conftest import ROOT


def test_json_lines_carry_only_whitelisted_fields() -> None:
    out = io.StringIO()
    logs.configure(logging.INFO, "json", out)
    try:
        log = logging.getLogger("bot.outbox.dispatcher")
        log.info("sent %d rows", 3, extra={"channel": "telegram", "outbox_id": 42, "text": "Halo Budi"})
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("send failed", extra={"case_id": 7})
    finally:
        logs.configure(logging.WARNING, "text")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["event"] == "sent 3 rows" and first["level"] == "INFO"
    assert first["logger"] == "bot.outbox.dispatcher"
    assert first["channel"] == "telegram" and first["outbox_id"] == 42
    assert "text" not in first and "Halo Budi" not in out.getvalue()
    assert first["time"].endswith("Z") and first["time"][10] == "T"
    assert second["case_id"] == 7 and "RuntimeError: boom" in second["exc_info"]


def test_text_stays_the_default() -> None:
    out = io.StringIO()
    logs.configure(logging.INFO, "text", out)
    try:
        logging.getLogger("bot.x").info("hello")
    finally:
        logs.configure(logging.WARNING, "text")
    assert out.getvalue().rstrip().endswith("INFO bot.x: hello")


def test_the_bot_logs_json_and_keeps_residents_words_out(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WHATSAPP_", "LOG_"))}
    env.update(LOG_FORMAT="json", LOG_LEVEL="DEBUG", DATABASE_URL=f"sqlite:///{tmp_path / 'prima.db'}")
    chat = "/start\n1\n2\nKTP saya hilang, nama saya Budi Santoso 081234567890\n"
    result = subprocess.run([sys.executable, str(ROOT / "bot.py")], cwd=tmp_path, env=env, input=chat,
                            capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines, "DEBUG should log at least the migrations"
    for line in lines:
        record = json.loads(line)
        assert {"time", "level", "logger", "event"} <= record.keys()
    assert "Budi" not in result.stderr and "081234567890" not in result.stderr
