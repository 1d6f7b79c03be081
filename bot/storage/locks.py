"""Locks held for a process's life, so that a second process does not do what only one may.

Today: Telegram long polling. Two processes calling getUpdates for one bot get 409 Conflict
from Telegram and steal each other's updates; several processes must use the webhook
instead. :func:`poller_lock` is taken when polling starts and refuses a second poller of the
same bot against the same database with one line naming the holder.

- PostgreSQL: a session advisory lock on a connection of its own (outside the pool), kept
  open while the lock is held; the holder's pid and host are its ``application_name``, which
  the refused process reads from ``pg_stat_activity``. If the holder dies its connection
  closes and the lock goes with it. (So does a database restart: until the poller restarts,
  a second one would not be refused; releasing a lock so lost is harmless.)
- SQLite: an exclusive ``flock`` on a file next to the database file, holding the holder's
  pid and host; the kernel drops it when the process dies. An in-memory database is never
  shared, so nothing is locked.
"""

from __future__ import annotations

import os
import socket
import zlib
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from bot.config import ConfigError

LOCK_CLASS = 20579  # first key of Prima's session advisory locks (the budget's is 20578)


class LockHeld(ConfigError):
    """Another process holds the lock; the message is the one line the operator sees."""


def _me() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()}"


def lock_key(name: str) -> int:
    """The lock's second advisory key: a stable positive int4 from its name."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


class ProcessLock:
    """A held lock; :meth:`release` (or leaving the ``with`` block, or exiting) gives it back."""

    def __init__(self, name: str, release: Any = None) -> None:
        self.name = name
        self._release = release

    @property
    def held(self) -> bool:
        return self._release is not None

    def release(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()

    async def aclose(self) -> None:
        self.release()

    def __enter__(self) -> ProcessLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def hold(engine: Engine, name: str) -> ProcessLock | str:
    """Take the lock ``name`` for this process: the lock, or who holds it ("pid 12 on host")."""
    if engine.dialect.name == "postgresql":
        return _hold_postgres(engine, name)
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return ProcessLock(name, release=lambda: None)  # nobody else can open this database
    return _hold_file(Path(f"{database}.{name.replace(':', '-')}.lock"), name)


def _hold_postgres(engine: Engine, name: str) -> ProcessLock | str:
    own = create_engine(engine.url, poolclass=NullPool)
    conn = own.connect().execution_options(isolation_level="AUTOCOMMIT")
    key = lock_key(name)
    try:
        conn.execute(text("SELECT set_config('application_name', :n, false)"),
                     {"n": f"prima {name} {_me()}"[:63]})
        if conn.scalar(text("SELECT pg_try_advisory_lock(:c, :k)"), {"c": LOCK_CLASS, "k": key}):
            def release() -> None:
                try:
                    conn.execute(text("SELECT pg_advisory_unlock(:c, :k)"), {"c": LOCK_CLASS, "k": key})
                except DBAPIError:
                    pass  # the connection is gone (a database restart), and the lock with it
                finally:
                    conn.close()
                    own.dispose()

            return ProcessLock(name, release)
        app_name = conn.scalar(text(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.classid = :c AND l.objid = :k AND l.objsubid = 2 "
            "AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"),
            {"c": LOCK_CLASS, "k": key})
    except BaseException:
        conn.close()
        own.dispose()
        raise
    conn.close()
    own.dispose()
    head = f"prima {name} "
    if app_name and app_name.startswith(head):
        return app_name[len(head):]
    return "pid unknown"


def _hold_file(path: Path, name: str) -> ProcessLock | str:
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
        os.close(fd)
        return holder or "pid unknown"
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, (_me() + "\n").encode(), 0)

    def release() -> None:
        try:
            os.ftruncate(fd, 0)  # the file stays (removing it would race a newcomer's open)
        finally:
            os.close(fd)  # closing drops the flock

    return ProcessLock(name, release)


def poller_lock(engine: Engine, bot_id: int | str) -> ProcessLock:
    """Hold "this process polls Telegram for this bot", or raise :class:`LockHeld` with the line."""
    got = hold(engine, f"telegram-poller:{bot_id}")
    if isinstance(got, ProcessLock):
        return got
    raise LockHeld(f"Another process is already polling Telegram for this bot ({got}). "
                   "Run one poller, or use TELEGRAM_WEBHOOK_URL for several processes.")
