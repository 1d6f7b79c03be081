"""PostgreSQL's hot statements through libpq's pipeline (bot/storage/pgpipe.py, used by
bot/storage/hotsql.py): order, errors, transactions, prepared statements and their survival of
rollbacks, on the real server."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from sqlalchemy import BigInteger, bindparam, func, literal, select, text

from bot.storage import db as dbmod
from bot.storage import hotsql, pgpipe, roundtrips
from bot.storage.models import InboundEvent, OutboxMessage
from tests.conftest import FakeClock, make_app

ECHO = select(literal(0, BigInteger).label("n"), func.coalesce(bindparam("x", type_=BigInteger), -1))


def event(raw: Any, cur: Any, key: str, clock: FakeClock) -> Any:
    return raw.first_delivery.send(cur, {"channel": "telegram", "event_key": key, "received_at": clock()})


def driver(conn: Any) -> Any:
    """The psycopg connection under a SQLAlchemy one."""
    return conn.connection.dbapi_connection


def prima_statements(conn: Any) -> list[str]:
    return list(conn.execute(text(
        "SELECT name FROM pg_prepared_statements WHERE name LIKE 'prima_%' ORDER BY name")).scalars())


def test_a_batch_keeps_its_order_with_early_reads_and_sqlalchemy_statements(
        pg_url: str, clock: FakeClock) -> None:
    """A result read inside the block sends what is queued (as a pipeline's sync did), and a
    statement through SQLAlchemy inside it runs after what was queued before it, in the same
    transaction; a nested block's results are readable after it."""
    app = make_app(pg_url, clock)
    raw = app.runtime.raw
    try:
        with app.factory() as db, db.begin():
            row = OutboxMessage(channel="telegram", chat_id="c1", kind="reply", payload={"text": "x"},
                                status="claimed", due_at=clock(), attempts=0, created_at=clock())
            db.add(row)
        with app.engine.connect() as conn, roundtrips.pipelined(conn):
            cur = conn.connection.cursor()
            raw.mark_sent.many(cur, [{"row_id": row.id, "provider_id": "m1", "now": clock()}])
            first = event(raw, cur, "k1", clock)
            # SQLAlchemy inside the block sees the queued UPDATE: it was sent first
            assert conn.execute(select(OutboxMessage.status).where(
                OutboxMessage.id == row.id)).scalar() == "sent"
            assert raw.first_delivery.fetch(first) is not None  # already read back: sent
            with hotsql.batch(cur):  # nested: readable after it, as with a pipeline
                again = event(raw, cur, "k1", clock)  # a second delivery of k1: no row
                count = raw.mark_sent.send(cur, {"row_id": row.id, "provider_id": "m2", "now": clock()})
            assert raw.first_delivery.fetch(again) is None and count.fetchall() == []
        with app.factory() as db:
            stored = db.get(OutboxMessage, row.id)
            assert stored is not None
            assert (stored.status, stored.provider_message_id, stored.attempts) == ("sent", "m2", 2)
            assert db.scalar(select(func.count()).select_from(InboundEvent)) == 1
    finally:
        app.engine.dispose()


def test_a_failing_statement_raises_psycopgs_error_and_the_transaction_keeps_nothing(
        pg_url: str, clock: FakeClock) -> None:
    """Every result is read, the first failure is raised as psycopg's own class (so callers and
    SQLAlchemy's handling see what they always saw), nothing of the transaction is kept, a
    statement queued after the failure cannot be read as if it had run, and the connection
    serves the next transaction."""
    app = make_app(pg_url, clock)
    raw = app.runtime.raw
    try:
        with app.engine.connect() as conn:
            with pytest.raises(psycopg.errors.DivisionByZero), roundtrips.pipelined(conn):
                cur = conn.connection.cursor()
                event(raw, cur, "k1", clock)
                hotsql.plain(cur, b"SELECT 1/0")
                later = event(raw, cur, "k2", clock)
            with pytest.raises(psycopg.InterfaceError):
                later.fetchone()
            assert driver(conn).pgconn.pipeline_status == pgpipe.PIPELINE_OFF
            assert driver(conn).autocommit is False
            with roundtrips.pipelined(conn):
                kept = event(raw, conn.connection.cursor(), "k3", clock)
            assert raw.first_delivery.fetch(kept) is not None
        with app.factory() as db:
            assert list(db.scalars(select(InboundEvent.event_key))) == ["k3"]
    finally:
        app.engine.dispose()


def test_outside_a_batch_a_statement_joins_psycopgs_transaction(pg_url: str, clock: FakeClock) -> None:
    """Where psycopg would send BEGIN before a statement, the pipeline sends it with the
    statement: the statement belongs to the caller's transaction and a rollback undoes it."""
    app = make_app(pg_url, clock)
    raw = app.runtime.raw
    try:
        with app.engine.connect() as conn:
            trans = conn.begin()
            cur = conn.connection.cursor()
            assert raw.first_delivery.fetch(raw.first_delivery.run(
                cur, {"channel": "telegram", "event_key": "k1", "received_at": clock()})) is not None
            assert driver(conn).pgconn.transaction_status == pgpipe.INTRANS
            trans.rollback()
        with app.factory() as db:
            assert db.scalar(select(func.count()).select_from(InboundEvent)) == 0
    finally:
        app.engine.dispose()


def test_statements_are_prepared_once_per_connection_and_survive_rollbacks(
        pg_url: str, clock: FakeClock) -> None:
    """On the app's engine psycopg prepares nothing itself, so the hot statements are prepared
    once per connection and reused; a rolled-back transaction (psycopg's rollback) leaves them
    in place, and values of other sizes (a small and a large integer, NULL) get statements of
    their own parameter types, each answering correctly."""
    app = make_app(pg_url, clock)
    echo = hotsql.Prepared(ECHO, app.engine.dialect)
    try:
        with app.engine.connect() as conn:
            cur = conn.connection.cursor()
            assert driver(conn).prepare_threshold is None
            for _ in range(5):
                with roundtrips.pipelined(conn):
                    rows = [echo.send(cur, {"x": x}) for x in (7, 2**40, None, 8)]
                assert [echo.fetch(r) for r in rows] == [(0, 7), (0, 2**40), (0, -1), (0, 8)]
            names = prima_statements(conn)
            assert 1 <= len(names) <= 3, names  # one per parameter type seen, not one per run
            conn.rollback()
            trans = conn.begin()
            with pytest.raises(psycopg.errors.DivisionByZero):
                echo.one(cur, {"x": 1})
                cur.execute("SELECT 1/0")
            trans.rollback()
            assert prima_statements(conn) == names
            conn.rollback()
            assert echo.one(cur, {"x": 9}) == (0, 9)
    finally:
        app.engine.dispose()


def test_where_psycopg_prepares_the_statements_go_unnamed(pg_url: str, clock: FakeClock) -> None:
    """On a connection where psycopg prepares statements itself, its rollback deallocates every
    prepared statement of the session; the hot statements there are sent unnamed, so they keep
    working after such a rollback."""
    engine = dbmod.make_engine(pg_url, connect_args={"prepare_threshold": 0})
    app = make_app(pg_url, clock)
    echo = hotsql.Prepared(ECHO, engine.dialect)
    try:
        with engine.connect() as conn:
            cur = conn.connection.cursor()
            trans = conn.begin()
            conn.execute(select(func.count()).select_from(InboundEvent)).scalar()  # psycopg prepares it
            assert echo.one(cur, {"x": 3}) == (0, 3)
            with pytest.raises(psycopg.errors.DivisionByZero):
                cur.execute("SELECT 1/0")
            trans.rollback()  # psycopg: ROLLBACK, then DEALLOCATE ALL
            assert echo.one(cur, {"x": 4}) == (0, 4)
            assert prima_statements(conn) == []
    finally:
        engine.dispose()
        app.engine.dispose()


def test_a_failed_inner_batch_forgets_only_its_own_statements(pg_url: str, clock: FakeClock) -> None:
    """An inner block that raises drops what it queued; the outer block's statements before and
    after it are sent, and a COMMIT through SQLAlchemy inside a block goes after them."""
    app = make_app(pg_url, clock)
    raw = app.runtime.raw
    try:
        with app.engine.connect() as conn:
            conn.begin()
            cur = conn.connection.cursor()
            with hotsql.batch(cur):
                event(raw, cur, "k1", clock)
                with pytest.raises(ValueError), hotsql.batch(cur):
                    event(raw, cur, "k2", clock)
                    raise ValueError("a check in the inner block failed")
                event(raw, cur, "k3", clock)
                conn.commit()  # sends k1 and k3 first, then commits them
        with app.factory() as db:
            assert sorted(db.scalars(select(InboundEvent.event_key))) == ["k1", "k3"]
    finally:
        app.engine.dispose()


def test_statements_deallocated_behind_its_back_are_prepared_again(pg_url: str, clock: FakeClock) -> None:
    """A DEALLOCATE ALL (a pooler, an operator) fails the next use once, as the server says;
    the connection's names are then forgotten and the use after it prepares them again."""
    app = make_app(pg_url, clock)
    echo = hotsql.Prepared(ECHO, app.engine.dialect)
    try:
        with app.engine.connect() as conn:
            cur = conn.connection.cursor()
            with conn.begin():
                assert echo.one(cur, {"x": 5}) == (0, 5)
            conn.exec_driver_sql("DEALLOCATE ALL")
            conn.commit()
            with pytest.raises(psycopg.errors.InvalidSqlStatementName), conn.begin():
                echo.one(cur, {"x": 6})
            with conn.begin():
                assert echo.one(cur, {"x": 7}) == (0, 7)
                assert len(prima_statements(conn)) == 1
    finally:
        app.engine.dispose()
