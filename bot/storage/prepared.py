"""A statement compiled once for one dialect and run on the driver's own cursor.

Why it exists: even with a cached compilation, SQLAlchemy's execute (execution context,
events, result wrapping) cost about 60 us per statement, more than SQLite took to run it, and
a turn runs ten of them (``bot.storage.hotsql`` builds them). ``Prepared`` keeps SQLAlchemy's
SQL and its bind and result processors and drops the rest; on PostgreSQL it goes through
``bot.storage.pgpipe`` (libpq's pipeline, values bound on the server).

What it relies on: the compiled statement's documented attributes (``string``,
``positional``, ``positiontup``, ``bind_names``, ``binds``) and the statement's public
``selected_columns`` / ``exported_columns`` (the RETURNING columns of a DML statement), stable
within a SQLAlchemy minor version (``tests/test_hotsql.py`` fails if one changed).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.sql.expression import UpdateBase

from bot.storage import pgpipe

EXECUTED = [0]  # statements run by Prepared (they bypass SQLAlchemy's events): for benchmarks


class Prepared:
    """A hot statement compiled once for one dialect and run on the driver's own cursor.

    Even with a cached compilation, SQLAlchemy's execute (execution context, events,
    result wrapping) cost about 60 us per statement, more than SQLite took to run it; a turn
    runs ten of them. This keeps SQLAlchemy's SQL and type conversions (its bind and result
    processors) and drops the rest. Run it only inside the Session's transaction, on the
    cursor of ``db.connection()``, so it commits or rolls back with everything else.
    """

    def __init__(self, stmt: Any, dialect: Any, shared: dict[Any, Any] | None = None) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql: str = compiled.string
        self.positional: bool = bool(compiled.positional)
        self.names = names = list(compiled.positiontup or ()) if self.positional else \
            list(dict.fromkeys(compiled.bind_names.values()))
        binds = [compiled.binds[name] for name in names]
        self.params_spec: list[tuple[str, bool, Any, Any]] = [
            (b.key, bool(b.required), None if b.required else b.effective_value,
             _processor(b.type, dialect, {} if shared is None else shared))
            for b in binds
        ]
        if isinstance(stmt, UpdateBase):  # INSERT/UPDATE/DELETE: its RETURNING columns, if any
            columns = list(stmt.exported_columns)
        else:
            columns = list(getattr(stmt, "selected_columns", ()) or ())
        self.results = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]
        # PostgreSQL: the same SQL with libpq's $n placeholders, for bot.storage.pgpipe
        self.pg_sql = pgpipe.numbered(self.sql, names) \
            if dialect.driver == "psycopg" and not self.positional else None

    def values(self, values: dict[str, Any]) -> list[Any]:
        """The statement's values in its parameters' order, converted by SQLAlchemy's processors."""
        out = []
        for key, required, const, proc in self.params_spec:
            value = values[key] if required else values.get(key, const)
            out.append(proc(value) if proc is not None else value)
        return out

    def params(self, values: dict[str, Any]) -> Any:
        out = self.values(values)
        return tuple(out) if self.positional else dict(zip(self.names, out, strict=True))

    def run(self, cur: Any, values: dict[str, Any]) -> Any:
        """Execute; returns what to read its rows from (``fetchone``, ``fetchall``). On
        PostgreSQL inside :func:`batch` it is queued, and sent with the block's statements."""
        EXECUTED[0] += 1
        queued = self._piped(cur, [values])
        if queued is not None:
            return queued[0]
        cur.execute(self.sql, self.params(values))
        return cur

    def send(self, cur: Any, values: dict[str, Any]) -> Any:
        """Run on a cursor of its own, to read later with :meth:`fetch` (inside :func:`batch`,
        several statements then share one round trip). Returns what to read from."""
        queued = self._piped(cur, [values])
        if queued is None:
            return self.run(cur.connection.cursor(), values)
        EXECUTED[0] += 1
        return queued[0]

    def _piped(self, cur: Any, rows: list[dict[str, Any]]) -> list[pgpipe.Result] | None:
        """PostgreSQL: queued in the batch, or sent at once (:func:`bot.storage.pgpipe.queue`)."""
        if self.pg_sql is None:
            return None
        return pgpipe.queue(cur.connection, self.pg_sql, [self.values(r) for r in rows])

    def fetch(self, cur: Any) -> tuple[Any, ...] | None:
        """The one row a cursor of :meth:`send` holds, converted (None without one)."""
        row = cur.fetchone()
        if row is not None and cur.fetchone() is not None:
            raise ValueError(f"more than one row from {self.sql!r}")
        if row is None:
            return None
        return tuple(p(v) if p is not None else v for p, v in zip(self.results, row, strict=True))

    def many(self, cur: Any, rows: list[dict[str, Any]]) -> None:
        EXECUTED[0] += 1
        if self._piped(cur, rows) is None:  # (on PostgreSQL: all of them in one round trip)
            cur.executemany(self.sql, [self.params(r) for r in rows])

    def one(self, cur: Any, values: dict[str, Any]) -> tuple[Any, ...] | None:
        """The first row, converted (None without one); the cursor is left drained."""
        return self.fetch(self.run(cur, values))

    def scalar(self, cur: Any, values: dict[str, Any]) -> Any:
        row = self.one(cur, values)
        return None if row is None else row[0]


def _processor(type_: Any, dialect: Any, shared: dict[Any, Any]) -> Any:
    """One processor per column type, shared by every statement, so ``now`` is converted
    once per turn rather than once per statement."""
    key = (type(type_), repr(type_))
    if key not in shared:
        shared[key] = _last_value(type_.dialect_impl(dialect).bind_processor(dialect))
    return shared[key]


def _last_value(proc: Any) -> Any:
    """Remember a processor's last two inputs: a turn binds the same ``now`` a dozen times,
    and a survey's answers alternate it with the time they count at.

    The pairs are replaced in one assignment, so threads sharing the statement never mix up
    an input with another's output; holding the input keeps its ``id`` from being reused.
    """
    if proc is None:
        return None
    none = (object(), None)
    last: list[tuple[tuple[Any, Any], tuple[Any, Any]]] = [(none, none)]

    def process(value: Any) -> Any:
        newest, older = last[0]
        if newest[0] is value:
            return newest[1]
        if older[0] is value:
            return older[1]
        out = proc(value)
        if isinstance(value, datetime):  # immutable: safe to reuse the converted value
            last[0] = ((value, out), newest)
        return out

    return process


