"""PostgreSQL: the hot statements through libpq's pipeline mode directly, values bound on the server.

Why it exists: a turn's statements are cheap for the server, but psycopg's cursor and its
pipeline mode spend their own Python on every statement (query conversion, prepared-statement
bookkeeping, a flush and a poll of the socket after each statement queued, result objects).
On a host where the bot's process is bound by its CPU that was most of a turn's database cost:
three INSERTs with BEGIN and COMMIT in one pipeline cost the bot's thread 340-400 us of CPU
through psycopg and under 100 us here (``bench/bench_roundtrips.py``), the same single round
trip. The values still travel as bound parameters (never in the SQL text, so a failing
statement's values never reach the server's log), adapted by psycopg's own ``Transformer``
(the connection's adapters, the same dumpers and loaders a cursor would use), and errors are
psycopg's own exceptions, built from the server's result.

Statements are prepared on the server once per connection (``send_prepare``) when psycopg
itself prepares nothing on that connection (``prepare_threshold=None``, set by
``storage/db.py``): psycopg answers a ROLLBACK by deallocating every prepared statement of the
session when it had prepared some, which would drop ours from under us. On a connection where
psycopg may prepare, the statements go unnamed (parsed by the server each time).

What it relies on: libpq's pipeline API as psycopg's ``pq`` module exposes it (``PGconn``),
``psycopg.adapt.Transformer`` and ``psycopg.errors.error_from_result``, all public; psycopg's
own state lives in libpq (transaction status) and is left as psycopg would leave it.
"""

from __future__ import annotations

import re
import select
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import pq
from psycopg.adapt import PyFormat, Transformer
from psycopg.errors import error_from_result
from sqlalchemy import Engine, event

IDLE = pq.TransactionStatus.IDLE
INTRANS = pq.TransactionStatus.INTRANS
SYNC = pq.ExecStatus.PIPELINE_SYNC
TUPLES_OK = pq.ExecStatus.TUPLES_OK
COMMAND_OK = pq.ExecStatus.COMMAND_OK
FATAL = pq.ExecStatus.FATAL_ERROR
PIPELINE_OFF = pq.PipelineStatus.OFF

# Prepared statements gone from the server (a DEALLOCATE, a pooler), or outdated by a schema
# change: the connection's names are forgotten, so the next use prepares them again.
STALE = ("26000", "0A000")
PREPARED_MAX = 200  # statements prepared per connection; beyond that, sent unnamed
_AUTO: dict[int, list[PyFormat]] = {}
_PLACEHOLDER = re.compile(r"%\(([^)]+)\)s|%%|%")


def numbered(sql: str, names: list[str]) -> bytes | None:
    """SQLAlchemy's psycopg SQL (``%(name)s``, ``%%``) with libpq's ``$n`` placeholders, ``$n``
    being the n-th of ``names``; None when the text holds a placeholder of another kind."""
    index = {name: i + 1 for i, name in enumerate(names)}
    bad = False

    def swap(m: re.Match[str]) -> str:
        nonlocal bad
        if m.group(0) == "%%":
            return "%"
        if m.group(1) is None or m.group(1) not in index:
            bad = True
            return m.group(0)
        return f"${index[m.group(1)]}"

    out = _PLACEHOLDER.sub(swap, sql)
    return None if bad else out.encode()


def usable(connection: Any) -> bool:
    """Whether statements on this driver connection may take this path now.

    A psycopg connection, with libpq's pipeline mode, in no pipeline, and either in a
    transaction, in autocommit mode, or idle where psycopg's own BEGIN would be a plain one
    (no isolation level, read-only or deferrable mode to apply). Otherwise the caller uses
    psycopg's cursor, as before.
    """
    if not isinstance(connection, psycopg.Connection) or not psycopg.Pipeline.is_supported():
        return False
    pg = connection.pgconn
    if pg.pipeline_status != PIPELINE_OFF:
        return False
    status = pg.transaction_status
    if status == INTRANS or (status == IDLE and connection.autocommit):
        return True
    return (status == IDLE and connection.isolation_level is None
            and connection.read_only is None and connection.deferrable is None)


class Result:
    """The rows of one queued statement; reading them sends what its pipe queued so far."""

    __slots__ = ("_at", "_pipe", "rows")

    def __init__(self, pipe: Pipe) -> None:
        self._pipe: Pipe | None = pipe
        self.rows: list[tuple[Any, ...]] | None = None
        self._at = 0

    def _ready(self) -> list[tuple[Any, ...]]:
        if self.rows is None:
            assert self._pipe is not None
            self._pipe.send()
            if self.rows is None:  # its pipe was dropped: the block it was queued in failed
                raise psycopg.InterfaceError("the statement was not sent: its batch failed")
        return self.rows

    def fetchone(self) -> tuple[Any, ...] | None:
        rows = self._ready()
        if self._at >= len(rows):
            return None
        self._at += 1
        return rows[self._at - 1]

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows = self._ready()
        rest, self._at = rows[self._at:], len(rows)
        return rest


class _Names:
    """Statements prepared on one connection: (SQL, parameter types) -> name."""

    __slots__ = ("count", "names")

    def __init__(self) -> None:
        self.names: dict[tuple[bytes, tuple[int, ...]], bytes] = {}
        self.count = 0


_prepared: weakref.WeakKeyDictionary[Any, _Names] = weakref.WeakKeyDictionary()
_prepared_lock = threading.Lock()


def _names(connection: Any) -> _Names | None:
    if connection.prepare_threshold is not None:
        return None  # psycopg may deallocate everything on a rollback: see the module's doc
    found = _prepared.get(connection)
    if found is None:
        with _prepared_lock:
            found = _prepared.setdefault(connection, _Names())
    return found


class Pipe:
    """Statements queued for one psycopg connection, sent as one pipeline (one round trip)
    when :meth:`send` runs: at the end of a batch, or when a result is read earlier."""

    __slots__ = ("connection", "queue")

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self.connection = connection
        self.queue: list[tuple[bytes, list[Any] | None, Result]] = []

    def add(self, sql: bytes, params: list[Any] | None) -> Result:
        """Queue ``sql`` (``$n`` placeholders) with its values (None: no parameters at all)."""
        result = Result(self)
        self.queue.append((sql, params, result))
        return result

    def drop(self, mark: int = 0) -> None:
        """Forget what was queued after the first ``mark`` statements (its block failed)."""
        for _, _, result in self.queue[mark:]:
            result._pipe = None
        del self.queue[mark:]

    def send(self) -> None:
        """Send what is queued and read every result; the first failed statement's error is
        raised (as psycopg's exception) after all of them were read."""
        if not self.queue:
            return
        queue, self.queue = self.queue, []
        connection = self.connection
        with connection.lock:
            _run(connection, queue)


def _run(connection: psycopg.Connection[Any], queue: list[tuple[bytes, list[Any] | None, Result]]) -> None:
    pg = connection.pgconn
    tx = Transformer(connection)
    names = _names(connection)
    # Values are adapted before anything is sent: a value that cannot be adapted fails the
    # batch with nothing on the wire.
    dumped: list[tuple[bytes, Any, Any, Any]] = []
    for sql, params, _ in queue:
        if params is None:
            dumped.append((sql, None, None, None))
        else:
            n = len(params)
            formats = _AUTO.get(n)
            if formats is None:
                formats = _AUTO[n] = [PyFormat.AUTO] * n
            values = tx.dump_sequence(params, formats)
            dumped.append((sql, values, tx.types, tx.formats))
    # (command's place in the results, result to fill or None, a statement prepared by it)
    plan: list[tuple[Result | None, tuple[tuple[bytes, tuple[int, ...]], bytes] | None]] = []
    begin = pg.transaction_status == IDLE and not connection.autocommit
    pending: dict[tuple[bytes, tuple[int, ...]], bytes] = {}  # prepared by this pipeline
    pg.enter_pipeline_mode()
    try:
        if begin:  # what psycopg would send before a transaction's first statement
            pg.send_query_params(b"BEGIN", None)
            plan.append((None, None))
        for (sql, values, types, formats), (_, _, target) in zip(dumped, queue, strict=True):
            if values is None:
                pg.send_query_params(sql, None)
            elif names is None:
                pg.send_query_params(sql, values, types, formats)
            else:
                key = (sql, types)
                name = names.names.get(key) or pending.get(key)
                if name is None and len(names.names) + len(pending) < PREPARED_MAX:
                    names.count += 1
                    name = pending[key] = b"prima_%d" % names.count
                    pg.send_prepare(name, sql, types)
                    plan.append((None, (key, name)))
                if name is None:
                    pg.send_query_params(sql, values, types, formats)
                else:
                    pg.send_query_prepared(name, values, formats)
            plan.append((target, None))
        pg.pipeline_sync()
        groups = _communicate(pg)
    except BaseException:
        _abandon(connection)
        raise
    pg.exit_pipeline_mode()
    if len(groups) != len(plan):  # never seen: libpq answers every command of a pipeline
        raise psycopg.InternalError(f"{len(plan)} statements sent, {len(groups)} answered")
    error: psycopg.Error | None = None
    for (_, prepared), results in zip(plan, groups, strict=True):
        res = results[-1] if results else None
        status = res.status if res is not None else COMMAND_OK
        if res is not None and status == FATAL and error is None:
            error = error_from_result(res, encoding=connection.info.encoding)
        if prepared is not None and names is not None and status == COMMAND_OK:
            names.names[prepared[0]] = prepared[1]
    if error is not None:
        if names is not None and error.sqlstate in STALE:  # deallocated behind our back
            names.names.clear()
        raise error  # (rows of a failed pipeline are never read: its transaction is lost)
    for (result, _), results in zip(plan, groups, strict=True):
        if result is not None:
            res = results[-1] if results else None
            if res is not None and res.status == TUPLES_OK and res.ntuples:
                tx.set_pgresult(res)
                result.rows = tx.load_rows(0, res.ntuples, tuple)
            else:
                result.rows = []


def _communicate(pg: Any) -> list[list[Any]]:
    """Flush the pipeline and read every command's results up to the sync (one list each)."""
    fd = pg.socket
    poll = select.poll()
    poll.register(fd, select.POLLIN | select.POLLOUT)
    while pg.flush():  # more to send: the server may be waiting for us to read first
        if any(ev & select.POLLIN for _, ev in poll.poll()):
            pg.consume_input()
    poll.modify(fd, select.POLLIN)
    groups: list[list[Any]] = []
    current: list[Any] = []
    while True:
        while pg.is_busy():
            poll.poll()
            pg.consume_input()
        res = pg.get_result()
        if res is None:  # the end of one command's results
            groups.append(current)
            current = []
        elif res.status == SYNC:
            return groups
        else:
            current.append(res)


def _abandon(connection: psycopg.Connection[Any]) -> None:
    """A pipeline interrupted half way (a lost link, say) cannot be left for psycopg to find:
    the connection is closed, so the pool replaces it instead of reusing it."""
    pg = connection.pgconn
    try:
        if pg.pipeline_status != PIPELINE_OFF:
            pg.exit_pipeline_mode()
    except Exception:
        connection.close()
        return
    if pg.status != pq.ConnStatus.OK:
        connection.close()


# ------------------------------------------------------------------------- batches


@contextmanager
def batch(cur: Any) -> Iterator[None]:
    """Statements run meanwhile (``hotsql.Prepared``'s ``send``, ``run``, ``many``, :func:`plain`)
    go to PostgreSQL together, as one pipeline, when the block ends (one round trip); their
    results are read after it (reading one earlier sends what is queued so far, and a
    statement through SQLAlchemy inside the block runs after what was queued before it).
    SQLite runs each at once: it has no round trips to save. A failed statement fails the
    block; if the block itself raises, what it queued is not sent (its transaction is rolled
    back). Where this module's path cannot be taken (see :func:`usable`), psycopg's own
    pipeline is used.
    """
    connection = cur.connection
    if not isinstance(connection, psycopg.Connection) or not psycopg.Pipeline.is_supported():
        yield
        return
    outer = _active.pipe
    if outer is not None and outer.connection is connection:  # nested: the outer block sends
        mark = len(outer.queue)
        try:
            yield
        except BaseException:
            outer.drop(mark)  # what the inner block queued; the outer block's stays
            raise
        outer.send()  # what the inner block queued is readable after it, as in a pipeline
        return
    if not usable(connection):
        with connection.pipeline():
            yield
        return
    pipe = Pipe(connection)
    _active.pipe = pipe
    try:
        yield
    except BaseException:
        pipe.drop()
        raise
    finally:
        _active.pipe = outer
    pipe.send()


def queue(connection: Any, sql: bytes, rows: list[list[Any]]) -> list[Result] | None:
    """Run ``sql`` once per list of values: queued in the current :func:`batch` on this
    connection, or else sent at once (all rows in one round trip). None when this path cannot
    be taken: the caller runs the statement on psycopg's cursor."""
    pipe = _active.pipe
    if pipe is None or pipe.connection is not connection:
        if not usable(connection):
            return None
        pipe = Pipe(connection)
    results = [pipe.add(sql, values) for values in rows]
    if pipe is not _active.pipe:
        pipe.send()
    return results


def plain(cur: Any, sql: bytes) -> None:
    """A statement without values (BEGIN, COMMIT): queued with the batch's on PostgreSQL."""
    pipe = _active.pipe
    if pipe is not None and pipe.connection is cur.connection:
        pipe.add(sql, None)
        return
    cur.execute(sql, prepare=False)


class _Active(threading.local):
    pipe: Pipe | None = None


_active = _Active()


def watch(engine: Engine) -> None:
    """Keep a PostgreSQL engine's own statements in order with a :func:`batch` on the same
    connection: a statement through SQLAlchemy inside the block (the ORM, say) goes after
    what the block queued before it, as it would in a pipeline, and so does a COMMIT; a
    ROLLBACK forgets what was queued. (Only on PostgreSQL engines: any listener makes
    SQLAlchemy run its event machinery for every statement of that engine.)"""
    event.listen(engine, "before_cursor_execute", _queued_first)
    event.listen(engine, "commit", _send_queued)
    event.listen(engine, "rollback", _drop_queued)


def _queued_first(_conn: Any, cursor: Any, *_args: Any) -> None:
    pipe = _active.pipe
    if pipe is not None and pipe.connection is cursor.connection:
        pipe.send()


def _send_queued(conn: Any) -> None:
    pipe = _active.pipe
    if pipe is not None and pipe.connection is conn.connection.dbapi_connection:
        pipe.send()


def _drop_queued(conn: Any) -> None:
    pipe = _active.pipe
    if pipe is not None and pipe.connection is conn.connection.dbapi_connection:
        pipe.drop()
