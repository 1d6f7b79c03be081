"""Fewer waits for PostgreSQL: transactions whose BEGIN and COMMIT travel with their statements.

Why it exists: on PostgreSQL every round trip is a wake-up of both processes, and psycopg
sends BEGIN before a transaction's first statement and waits for it (even in pipeline mode),
then COMMIT is one more wait. For the hot paths (a turn, marking sent rows, the WhatsApp
bookkeeping, a language lookup) those waits were up to half the round trips. Here the
connection is put in autocommit mode for the duration, the caller's own BEGIN and COMMIT make
the same transaction inside :func:`bot.storage.hotsql.batch` pipelines, and the connection is
always handed back to the pool in psycopg's ordinary mode (or invalidated). On SQLite nothing
changes: it has no round trips to save.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine

from bot.storage.pgpipe import batch, plain

BEGIN = b"BEGIN"
COMMIT = b"COMMIT"


class _PipelineExitNoise(logging.Filter):
    """psycopg warns "error ignored terminating <Pipeline>" when a block it closes raised and the
    sync at its end failed too (the link is gone). The error of the block is the one that goes
    on (the turn fails and the outage is logged once, see storage/db.py), so the warning is a
    duplicate per pooled connection: it is kept, at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("error ignored terminating"):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


logging.getLogger("psycopg").addFilter(_PipelineExitNoise())


def own_transaction(cur: Any) -> bool:
    """PostgreSQL: let the caller send BEGIN with its first :func:`batch` and COMMIT with its
    last, instead of psycopg's own. Returns whether it may (False on SQLite, or on a connection
    that is not idle); :func:`end_own_transaction` must follow (:func:`transaction` pairs them).

    Why: psycopg sends BEGIN before a transaction's first statement and waits for it even in
    pipeline mode, and COMMIT is one more wait: two of a turn's four or five round trips, each
    a wake-up of both processes. With the connection in autocommit mode for the turn, the
    caller's explicit BEGIN and COMMIT make the same transaction and travel in its batches.
    """
    connection = cur.connection
    if (not _idle_psycopg(connection) or not psycopg.Pipeline.is_supported()
            # a plain BEGIN would drop an isolation level or read-only mode psycopg would apply
            or connection.isolation_level is not None or connection.read_only is not None
            or connection.deferrable is not None):
        return False
    connection.autocommit = True  # an attribute: nothing is sent
    return True


def end_own_transaction(cur: Any, invalidate: Callable[[], None]) -> None:
    """Give psycopg its transactions back before the connection returns to the pool.

    A transaction still open here (its COMMIT failed or never went) is rolled back first;
    a connection that cannot be brought back is invalidated (``invalidate()``, the pool then
    replaces it) rather than handed on in autocommit mode.
    """
    _restore(cur.connection, invalidate)


def _idle_psycopg(connection: Any) -> bool:
    return (isinstance(connection, psycopg.Connection)
            and connection.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE)


def _restore(connection: psycopg.Connection[Any], invalidate: Callable[[], None]) -> None:
    try:
        if connection.pgconn.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            connection.rollback()
        connection.autocommit = False
    except Exception:  # a broken link: closed by the pool rather than reused
        invalidate()


@contextmanager
def transaction(conn: Connection) -> Iterator[tuple[Any, bool]]:
    """``conn.begin()`` with :func:`own_transaction` taken and given back around it: yields the
    driver cursor and whether the caller sends BEGIN and COMMIT itself (PostgreSQL)."""
    cur = conn.connection.cursor()
    own = own_transaction(cur)
    try:
        with conn.begin():
            yield cur, own
    finally:
        if own:
            end_own_transaction(cur, conn.invalidate)


def begin(cur: Any) -> None:
    """Queue the BEGIN of a transaction taken with :func:`own_transaction` (in a :func:`batch`)."""
    plain(cur, BEGIN)


def commit(cur: Any) -> None:
    """Queue its COMMIT (in the last :func:`batch`: it travels with those statements)."""
    plain(cur, COMMIT)


@contextmanager
def single_read(raw: Any) -> Iterator[None]:
    """One read on a pooled driver connection (``engine.raw_connection()``) outside a transaction.

    On PostgreSQL psycopg would send BEGIN before it and the pool a ROLLBACK after it: three
    round trips for one SELECT. In autocommit mode for the read it is one. A connection that
    cannot be switched back is invalidated, never pooled in autocommit mode.
    """
    driver = raw.driver_connection
    single = _idle_psycopg(driver)
    if single:
        driver.autocommit = True
    try:
        yield
    finally:
        if single:
            _restore(driver, raw.invalidate)


@contextmanager
def pipelined(conn: Connection) -> Iterator[None]:
    """A transaction on ``conn`` (which is in none) whose statements, BEGIN and COMMIT travel
    together on PostgreSQL: one round trip. On SQLite, ``conn.begin()`` as usual.

    For :class:`bot.storage.hotsql.Prepared` statements (queued, read after the block); a
    statement through SQLAlchemy inside sends what was queued before it and then takes a round
    trip of its own. A queued statement's error surfaces at the end of the block, as
    psycopg's own exception.
    """
    with transaction(conn) as (cur, own):
        if not own:
            yield
            return
        with batch(cur):
            begin(cur)
            yield
            commit(cur)


@contextmanager
def short_transaction(engine: Engine) -> Iterator[Connection]:
    """A write transaction for statements that read nothing back (:func:`pipelined` on a
    pooled connection): yields its connection.

    On PostgreSQL its statements, BEGIN and COMMIT go out as one pipeline: one round trip
    instead of one each. On SQLite, an ordinary transaction (BEGIN IMMEDIATE, see storage/db.py).
    """
    with engine.connect() as conn, pipelined(conn):
        yield conn
