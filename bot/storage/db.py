"""Engine creation and migrations.

SQLite is the embedded default (one process, WAL mode); PostgreSQL is for several processes.
Any ``postgresql`` URL is driven by psycopg 3 so the synchronous core stays one code path.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from bot.config import ConfigError
from bot.storage import pgpipe

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def normalise_url(url: str) -> str:
    """Map asyncpg / bare postgres URLs onto psycopg and create the SQLite folder."""
    u = make_url(url)
    if u.drivername in ("postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg2"):
        u = u.set(drivername="postgresql+psycopg")
    if u.drivername.startswith("sqlite"):
        u = u.set(drivername="sqlite")
        if u.database and u.database != ":memory:":
            folder = Path(u.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                reason = "a file is in the way" if isinstance(exc, (FileExistsError, NotADirectoryError)) \
                    else (exc.strerror or str(exc))
                raise ConfigError(f"Configuration error: DATABASE_URL: cannot create the folder "
                                  f"{folder}: {reason}") from None
    return u.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _sqlite_begin)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # Take the write lock up front: a deferred transaction that reads and then writes can
    # fail at once with "database is locked" when another thread wrote in between.
    # Straight on the driver: this runs once per transaction, and exec_driver_sql's
    # execution machinery cost more than the statement.
    conn.connection.dbapi_connection.execute("BEGIN IMMEDIATE")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the settings each backend needs."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        ping = kwargs.pop("pool_pre_ping", None)
        # psycopg prepares nothing itself: the hot statements are prepared by
        # bot.storage.pgpipe, which psycopg's DEALLOCATE ALL after a rollback would undo.
        connect_args = {"prepare_threshold": None, **kwargs.pop("connect_args", {})}
        engine = create_engine(url, pool_pre_ping=bool(ping), connect_args=connect_args, **kwargs)
        pgpipe.watch(engine)
        if ping is None:
            _ping_when_idle(engine)
    return engine


PING_AFTER_IDLE = 1.0  # seconds a pooled connection rested before it is pinged on checkout


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled PostgreSQL connection on checkout only when it rested a while.

    ``pool_pre_ping`` pings on every checkout: a round trip per turn, one in twelve of a
    turn's. A connection that served a turn a moment ago is as alive as a ping would show;
    one that rested (a restart or a dropped link happens in the quiet, too) is pinged, and
    a dead one is replaced before the turn uses it, as ``pool_pre_ping`` would.
    """
    from sqlalchemy.exc import DisconnectionError

    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def rested(_dbapi: Any, record: Any) -> None:
        record.info["prima_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def ping(dbapi: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("prima_idle_since")
        if since is None or time.monotonic() - since <= PING_AFTER_IDLE:
            return  # fresh, or it served a turn a moment ago
        try:
            dialect.do_ping(dbapi)
        except Exception as exc:  # gone: the pool replaces it (up to two tries)
            raise DisconnectionError(str(exc)) from exc


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (safe to call on every start)."""
    command.upgrade(alembic_config(engine), "heads")


# Errors of an unusable database. sqlite3's own class too: the BEGIN IMMEDIATE listener
# (_sqlite_begin) runs on the driver directly, so "database is locked" is not wrapped.
DATABASE_ERRORS: tuple[type[Exception], ...] = (DBAPIError, sqlite3.Error)


def database_error(exc: Exception, url: str | None = None) -> ConfigError:
    """A database that cannot be used, as the one line the operator reads (no SQL, no parameters)."""
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    reason = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    if "locked" in reason.lower():
        reason += " (another process holds it; SQLite serves one bot process, see DATABASE_URL)"
    elif "unable to open database file" in reason and url:
        u = make_url(url)
        if u.database:
            reason += f" (is the folder {Path(u.database).parent} writable?)"
    return ConfigError(f"Configuration error: DATABASE_URL: cannot use the database: {reason}")


def open_database(url: str, **kwargs: Any) -> Engine:
    """Engine plus migrations, or :class:`ConfigError` in one line (unreachable, locked, unwritable)."""
    engine = make_engine(url, **kwargs)
    try:
        migrate(engine)
    except DATABASE_ERRORS as exc:
        engine.dispose()
        raise database_error(exc, url) from None
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with factory() as db, db.begin():
        yield db


def scratch_schema(url: str, prefix: str = "scratch_") -> tuple[str, Callable[[], None]]:
    """A throw-away PostgreSQL schema for tests and benchmarks, so they never touch real tables.

    Returns a URL whose connections use only that schema, and a function that drops it.
    """
    schema = prefix + uuid.uuid4().hex[:12]
    admin = create_engine(normalise_url(url))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}", drop


def database_unavailable(exc: BaseException) -> bool:
    """The database could not be reached or is busy (worth retrying), not a bug in a turn.

    A refused or dropped connection, a server shutting down, a pool timeout or SQLite's
    "database is locked" all surface as these SQLAlchemy errors; a constraint violation or a
    programming error does not, and retrying it would only repeat the failure.
    """
    from sqlalchemy import exc as sa

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa.OperationalError | sa.InterfaceError | sa.TimeoutError):
            return True
        if isinstance(current, sa.DBAPIError) and current.connection_invalidated:
            return True
        current = current.__cause__ or current.__context__
    return False


class DatabaseHealth:
    """Logs a database outage once when it starts and once when it ends.

    Every update that meets the outage waits and retries; without this each of them would
    log its own traceback (tens of thousands of lines in a 30-second outage).
    """

    def __init__(self, what: str = "polling paused") -> None:
        self.what = what
        self.down_since: float | None = None

    def failed(self, exc: BaseException) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            log.warning("database unavailable, %s: %s", self.what, reason[0] if reason else "")

    def ok(self) -> None:
        if self.down_since is not None:
            log.warning("database back after %.1f s", time.monotonic() - self.down_since)
            self.down_since = None
