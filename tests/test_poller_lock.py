"""One Telegram poller per bot and database: a second is refused with one line (exit code 2).

Two processes calling getUpdates for one bot get 409 Conflict from Telegram; several
processes must use the webhook. The lock (bot/storage/locks.py) is a PostgreSQL advisory lock
or, on SQLite, a file lock next to the database.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path

import pytest

from bot.storage.db import open_database
from bot.storage.locks import LockHeld, ProcessLock, hold, poller_lock
from tests.fake_telegram import FakeTelegram, User

ROOT = Path(__file__).resolve().parent.parent
LINE = ("Another process is already polling Telegram for this bot (pid {pid} on {host}). "
        "Run one poller, or use TELEGRAM_WEBHOOK_URL for several processes.")


def test_a_second_poller_is_refused_until_the_first_lets_go(db_url: str) -> None:
    import socket

    engine = open_database(db_url)
    other = open_database(db_url)  # another process's engine: own connections
    bot_id = uuid.uuid4().int % 10**9  # PostgreSQL's advisory locks are per database, not schema
    try:
        first = poller_lock(engine, bot_id)
        with pytest.raises(LockHeld) as refused:
            poller_lock(other, bot_id)
        assert str(refused.value) == LINE.format(pid=os.getpid(), host=socket.gethostname())
        assert isinstance(poller_lock(other, bot_id + 1), ProcessLock)  # another bot: its own lock
        first.release()
        with poller_lock(other, bot_id) as second:  # released: the next poller starts
            assert second.held
            assert isinstance(hold(engine, f"telegram-poller:{bot_id}"), str)
        again = poller_lock(engine, bot_id)
        assert again.held
        again.release()
        again.release()  # twice is harmless
    finally:
        engine.dispose()
        other.dispose()


def test_an_in_memory_database_needs_no_lock() -> None:
    engine = open_database("sqlite://")
    with poller_lock(engine, 1), poller_lock(engine, 1):
        pass
    engine.dispose()


def _env(server: FakeTelegram, database: str) -> dict[str, str]:
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": server.token, "TELEGRAM_API_BASE": server.base_url,
           "DATABASE_URL": database, "LOG_LEVEL": "WARNING"}
    env.pop("TELEGRAM_WEBHOOK_URL", None)
    return env


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_two_bot_processes_one_polls_the_other_exits_2(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    database = (f"sqlite:///{tmp_path / 'prima.db'}" if backend == "sqlite"
                else request.getfixturevalue("pg_url"))
    token = f"{uuid.uuid4().int % 10**9 + 1}:TEST-token-for-the-fake-bot-api"  # a lock of its own
    server = FakeTelegram(token=token)
    await server.start()
    env = _env(server, database)
    first = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bot.py"), cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await server.wait_for(lambda: bool(server.calls("deleteWebhook")), timeout=60)  # locked
        second = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "bot.py"), cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(second.communicate(), 60)
        assert second.returncode == 2, err.decode()
        last = err.decode().strip().splitlines()[-1]
        assert last.startswith("Another process is already polling Telegram for this bot (pid "
                               f"{first.pid} on "), last
        assert last.endswith("Run one poller, or use TELEGRAM_WEBHOOK_URL for several processes.")
        assert first.returncode is None  # the first goes on answering
        server.message(User(id=4242, first_name="Ani", language_code="en"), "/start")
        await server.wait_for(lambda: len(server.chat(4242)) >= 2, timeout=30)
    finally:
        if first.returncode is None:
            first.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(first.communicate(), 30)
        await server.stop()
    assert first.returncode == 0, err.decode()
    engine = open_database(database)
    try:  # stopped: the lock is free again
        with poller_lock(engine, int(token.split(":")[0])) as lock:
            assert lock.held
    finally:
        engine.dispose()


def test_releasing_a_lock_whose_connection_died_is_harmless(pg_url: str) -> None:
    """A database restart ends the holder's connection (and its lock); a graceful stop then
    must not fail on the unlock."""
    from sqlalchemy import text

    engine = open_database(pg_url)
    bot_id = uuid.uuid4().int % 10**9
    try:
        lock = poller_lock(engine, bot_id)
        with engine.connect() as conn:  # what a restart does to the holder's connection
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE application_name LIKE :n"), {"n": f"prima telegram-poller:{bot_id} %"})
        lock.release()
        poller_lock(engine, bot_id).release()  # and the lock is free
    finally:
        engine.dispose()
