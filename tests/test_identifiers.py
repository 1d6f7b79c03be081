"""Identifier columns hold what the platforms document, and widening them loses nothing.

Migration 0007 widens chat ids, user ids and message ids to VARCHAR(256). On SQLite that
rebuilds tables that other tables point at, so the test upgrades a database with rows in
them and checks every row and foreign key survived (and that keys are enforced again).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import inspect, select, text

from bot.storage.db import alembic_config, make_engine, migrate
from bot.storage.models import ID_LEN, Contact, ConversationSession, OutboxMessage, WhatsAppIdentity

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
BSUID = "ID." + "Z9" * 64  # 131 characters
TELEGRAM_MAX = str(2**63 - 1)  # chat and user ids are 64-bit


def test_upgrade_to_0007_keeps_rows_and_widens_identifiers(db_url: str) -> None:
    engine = make_engine(db_url)
    cfg = alembic_config(engine)
    command.upgrade(cfg, "0006_merge_heads")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO contacts (channel, external_id, language, created_at) "
                          "VALUES ('telegram', :tg, 'id', :now), ('whatsapp', '6281234567890', 'id', :now)"),
                     {"tg": TELEGRAM_MAX, "now": NOW})
        ids: dict[str, int] = {str(k): int(v) for k, v in conn.execute(text("SELECT external_id, id FROM contacts"))}
        conn.execute(text("INSERT INTO sessions (contact_id, state, updated_at) VALUES (:c, '{}', :now)"),
                     {"c": ids[TELEGRAM_MAX], "now": NOW})
        conn.execute(text(
            "INSERT INTO outbox (contact_id, channel, chat_id, kind, payload, status, due_at, attempts, "
            "created_at, dedupe_key, urgent, uncertain) VALUES (:c, 'whatsapp', '6281234567890', 'reply', "
            "'{}', 'pending', :now, 0, :now, 'k1', true, 0)"), {"c": ids["6281234567890"], "now": NOW})
    migrate(engine)
    widths = {c["name"]: getattr(c["type"], "length", None) for c in inspect(engine).get_columns("contacts")}
    assert widths["external_id"] == ID_LEN
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM sessions")).scalar() == 1  # no cascade
        assert conn.execute(text("SELECT chat_id FROM outbox")).scalar() == "6281234567890"
    from sqlalchemy.orm import Session

    with Session(engine) as db, db.begin():  # the longest documented ids now fit
        db.add(Contact(channel="whatsapp", external_id=BSUID, language="id", created_at=NOW))
        db.add(WhatsAppIdentity(user_id="ID.ENT." + "Q" * 128, wa_id="6281234567890", seen_at=NOW))
        db.add(OutboxMessage(channel="whatsapp", chat_id=BSUID, kind="reply", payload={}, status="pending",
                             due_at=NOW, created_at=NOW, provider_message_id="wamid." + "H" * 240))
    with Session(engine) as db:
        assert db.scalars(select(Contact.external_id).where(Contact.external_id == BSUID)).one() == BSUID
    if engine.dialect.name == "sqlite":  # foreign keys are enforced again after the rebuild
        with pytest.raises(Exception, match="FOREIGN KEY"), Session(engine) as db, db.begin():
            db.add(ConversationSession(contact_id=999_999, state={}, updated_at=NOW))
    engine.dispose()


async def test_scheduler_per_run_lines_are_quiet_unless_debug(caplog: pytest.LogCaptureFixture) -> None:
    """The outbox tick runs every second: APScheduler's two INFO lines per run were half the log."""
    import asyncio

    from apscheduler.events import EVENT_JOB_EXECUTED
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from bot.cli.main import _logging
    from bot.config import load_settings

    async def one_run(level: str) -> list[str]:
        _logging(load_settings(log_level=level), console=False)
        caplog.clear()
        done = asyncio.Event()
        scheduler = AsyncIOScheduler(timezone="UTC")
        scheduler.add_listener(lambda _event: done.set(), EVENT_JOB_EXECUTED)  # after its log lines
        scheduler.add_job(lambda: None, id="tick")  # no trigger: runs once, now
        scheduler.start()
        await asyncio.wait_for(done.wait(), 10)
        scheduler.shutdown(wait=False)
        return [r.getMessage() for r in caplog.records if r.name.startswith("apscheduler")]

    caplog.set_level(logging.DEBUG)
    try:
        assert await one_run("INFO") == []
        debug = await one_run("DEBUG")
        assert any("Running job" in line for line in debug)
    finally:
        for name in ("apscheduler.executors", "apscheduler.scheduler", "apscheduler", "alembic"):
            logging.getLogger(name).setLevel(logging.NOTSET)
