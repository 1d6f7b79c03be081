"""The per-turn savings keep what they replaced: when a contact is marked seen, the replies'
ids and order, a survey period cached with the catalog (its use: tests/test_skm_data.py), and pooled PostgreSQL connections that
rested being checked before use."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.pool import QueuePool

from bot.app import App
from bot.channels.whatsapp.store import contact_language
from bot.runtime import identity
from bot.runtime import turn as turn_module
from bot.runtime.types import Inbound
from bot.storage import db as dbmod
from bot.storage.models import Contact, OutboxMessage, Service
from flows.machine.types import Event
from tests.conftest import FakeClock, make_app


def say(app: App, n: int, text: str, user: str = "w1") -> list[OutboxMessage]:
    return app.runtime.handle(Inbound("console", user, user, Event("text", f"e{n}", text=text),
                                      event_key=f"k{user}{n}", display_name="Wulan"))


def seen(app: App) -> tuple[object, object]:
    with app.factory() as db:
        contact = db.scalars(select(Contact).where(Contact.external_id == "w1")).one()
        return contact.last_inbound_at, contact.unreachable_at


def test_last_inbound_is_refreshed_once_a_minute_and_a_block_is_lifted_at_once(
        app: App, clock: FakeClock) -> None:
    say(app, 0, "/start")
    first = clock()
    assert seen(app) == (first, None)
    clock.advance(seconds=30)
    say(app, 1, "1")  # half a minute later: the stored time is fresh enough
    assert seen(app) == (first, None)
    clock.advance(seconds=31)
    say(app, 2, "1")  # older than SEEN_EVERY: refreshed
    assert seen(app) == (clock(), None)
    assert identity.SEEN_EVERY.total_seconds() == 60

    with app.factory() as db, db.begin():  # a send failed: the resident blocked the bot
        db.execute(update(Contact).where(Contact.external_id == "w1").values(unreachable_at=clock()))
    clock.advance(seconds=1)
    say(app, 3, "/menu")  # they wrote again: reachable at once, whatever the minute
    assert seen(app) == (clock(), None)


def test_replies_of_one_turn_get_their_own_ids_in_order(app: App) -> None:
    rows = say(app, 0, "/start") + say(app, 1, "1")
    assert len({r.id for r in rows}) == len(rows) and all(r.id is not None for r in rows)
    assert [r.id for r in rows] == sorted(r.id for r in rows)  # sent in the order stored
    with app.factory() as db:
        stored = {m.id: m for m in db.scalars(select(OutboxMessage))}
    for row in rows:  # what the channel sends is what was committed, under its own id
        assert stored[row.id].payload == row.payload and stored[row.id].status == "claimed"


def test_a_changed_period_is_read_again_with_the_catalog(app: App, clock: FakeClock) -> None:
    with app.factory() as db:
        sid, aid = db.execute(select(Service.id, Service.agency_id)).first()  # type: ignore[misc]
    rt = app.runtime
    with app.factory() as db:
        rt.catalog(db, clock())
        zone, hours = rt.survey_period(db, sid, aid)
        assert hours is None  # the local day
        db.execute(update(Service).where(Service.id == sid).values(survey_once_per="12"))
        db.commit()
        assert rt.survey_period(db, sid, aid) == (zone, None)  # cached with the catalog
        clock.advance(seconds=rt.catalog_ttl.total_seconds() + 1)
        rt.catalog(db, clock())
        assert rt.survey_period(db, sid, aid) == (zone, 12)


def test_a_turn_that_waited_for_another_process_reads_the_state_that_process_left(
        pg_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes, one resident: B's turn waits for the contact lock while A's turn (the
    consent) commits; B then answers the menu A showed, not the consent question again."""
    one, other = make_app(pg_url, clock), make_app(pg_url, clock)
    try:
        say(one, 0, "/start")  # the consent question
        holding, go = threading.Event(), threading.Event()
        holder: list[int] = []
        persist = turn_module.Turn.persist

        def persist_then_hold(self: turn_module.Turn, commit: bool = False) -> None:
            persist(self)  # COMMIT left to the end of the turn (not in this batch): held below
            if self.inbound.event_key == "kw111":  # A's turn, written but not committed
                holder.append(self.cur.connection.info.backend_pid)
                holding.set()
                assert go.wait(30)

        monkeypatch.setattr(turn_module.Turn, "persist", persist_then_hold)
        first = threading.Thread(target=say, args=(one, 11, "1"))  # A: agree
        first.start()
        assert holding.wait(30)
        replies: list[OutboxMessage] = []
        second = threading.Thread(target=lambda: replies.extend(say(other, 12, "1")))  # B: "1"
        second.start()
        with one.engine.connect() as watch:  # wait until B waits for A's lock, then let A commit
            for _ in range(600):
                blocked = watch.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"),
                    {"pid": holder[0]}).scalar()
                if blocked:
                    break
                threading.Event().wait(0.05)
            assert blocked, "B never waited for A's lock"
        go.set()
        first.join(30)
        second.join(30)
        texts = [str(r.payload.get("text", "")) for r in replies]
        assert replies and one.texts("id", "consent.thanks") not in texts, texts
    finally:
        one.engine.dispose()
        other.engine.dispose()


def test_a_rested_postgres_connection_that_died_is_replaced(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = dbmod.make_engine(pg_url)
    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        monkeypatch.setattr(dbmod, "PING_AFTER_IDLE", 0.0)  # it rested long enough
        other = dbmod.make_engine(pg_url)  # not from the same pool: that one is the victim
        with other.begin() as killer:
            killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        other.dispose()
        with engine.connect() as conn:  # pinged, found dead, replaced before use
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        engine.dispose()


def _pool_autocommit(app: App) -> list[bool]:
    """psycopg's autocommit flag of every connection the pool holds now."""
    pool = app.engine.pool
    assert isinstance(pool, QueuePool)
    conns = [app.engine.connect() for _ in range(pool.checkedin())]
    try:
        return [bool(c.connection.dbapi_connection.autocommit) for c in conns]  # type: ignore[union-attr]
    finally:
        for c in conns:
            c.close()


@pytest.mark.parametrize("failure", ["statement", "connection"])
def test_a_turn_that_fails_with_its_commit_in_flight_is_rolled_back_whole(
        pg_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    """On PostgreSQL a turn sends BEGIN and COMMIT in its own batches (roundtrips.own_transaction).
    A statement failing in the COMMIT's batch, or the connection dying there, loses the whole
    turn (the delivery is not marked seen: Telegram's redelivery is answered), and no
    connection goes back to the pool still in autocommit mode."""
    from bot.storage import hotsql, roundtrips
    from bot.storage.models import InboundEvent

    app = make_app(pg_url, clock)
    try:
        say(app, 0, "/start")  # the consent question
        real = roundtrips.commit
        sql = "SELECT 1/0" if failure == "statement" else "SELECT pg_terminate_backend(pg_backend_pid())"

        def fail_then_commit(cur: object) -> None:
            hotsql.plain(cur, sql.encode())  # queued with the COMMIT, in the same pipeline
            real(cur)

        monkeypatch.setattr(roundtrips, "commit", fail_then_commit)
        with pytest.raises(Exception):  # noqa: B017 - a division by zero, or the link gone
            say(app, 1, "1")  # "Setuju"
        monkeypatch.setattr(roundtrips, "commit", real)
        with app.factory() as db:
            assert db.scalar(select(Contact.consent_at).where(Contact.external_id == "w1")) is None
            assert db.scalar(select(InboundEvent.id).where(InboundEvent.event_key == "kw11")) is None
        assert not any(_pool_autocommit(app))
        with app.engine.connect() as conn:  # and the pooled connections still take the short path
            cur = conn.connection.cursor()
            assert roundtrips.own_transaction(cur)
            roundtrips.end_own_transaction(cur, conn.invalidate)
        texts = [str(r.payload.get("text", "")) for r in say(app, 1, "1")]  # redelivered: answered
        assert app.texts("id", "consent.thanks") in texts, texts
        with app.factory() as db:
            assert db.scalar(select(Contact.consent_at).where(Contact.external_id == "w1")) is not None
    finally:
        app.engine.dispose()


def test_a_short_transaction_is_all_or_nothing_and_a_single_read_leaves_no_trace_on_postgres(pg_url: str, clock: FakeClock) -> None:
    """roundtrips.short_transaction (marking sent rows): its statements, BEGIN and COMMIT share one
    pipeline; a failing statement takes the earlier ones with it. roundtrips.single_read reads
    in autocommit mode and hands the connection back in psycopg's ordinary mode."""
    from bot.storage import roundtrips

    app = make_app(pg_url, clock)
    try:
        rows = say(app, 0, "/start")
        mark = app.runtime.raw.mark_sent
        with pytest.raises(Exception), roundtrips.short_transaction(app.engine) as conn:  # noqa: B017
            cur = conn.connection.cursor()
            mark.many(cur, [{"row_id": rows[0].id, "provider_id": "m1", "now": clock()}])
            cur.execute("SELECT 1/0")
        with app.factory() as db:
            assert db.get(OutboxMessage, rows[0].id).status == "claimed"  # type: ignore[union-attr]
        assert not any(_pool_autocommit(app))
        with roundtrips.short_transaction(app.engine) as conn:
            mark.many(conn.connection.cursor(), [{"row_id": rows[0].id, "provider_id": "m1", "now": clock()}])
        with app.factory() as db:
            assert db.get(OutboxMessage, rows[0].id).status == "sent"  # type: ignore[union-attr]
        # roundtrips.single_read: the language lookup after a WhatsApp turn, outside a transaction
        assert contact_language(app.factory, "w1") is None  # a console contact, not WhatsApp's
        say(app, 1, "1", user="6281")
        with app.factory() as db, db.begin():
            db.execute(update(Contact).where(Contact.external_id == "6281").values(channel="whatsapp"))
        assert contact_language(app.factory, "6281") == "id"
        assert not any(_pool_autocommit(app))
    finally:
        app.engine.dispose()


def test_a_new_residents_first_message_racing_another_process_for_the_contact_row(
        pg_url: str, clock: FakeClock) -> None:
    """Two processes take a new resident's first messages at once (WhatsApp may deliver two
    bodies side by side): both find no contact and insert one. The later insert waits for the
    first on the unique index, does nothing, and its turn goes on with the row the other made,
    under its lock: one contact, both messages stored and answered, nothing failed."""
    from bot.storage.models import InboundEvent

    app = make_app(pg_url, clock)
    other = app.engine.connect()  # the other process's turn, holding its new contact uncommitted
    try:
        other.execute(text("INSERT INTO contacts (channel, external_id, language, created_at) "
                           "VALUES ('console', 'w9', 'id', :now)"), {"now": clock()})
        result: list[object] = []
        turn = threading.Thread(target=lambda: result.append(say(app, 0, "/start", user="w9")))
        turn.start()
        with app.engine.connect() as watch:  # until our turn waits for the other's row
            for _ in range(500):
                waiting = watch.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()")).scalar()
                if waiting:
                    break
                watch.rollback()
                threading.Event().wait(0.01)
            assert waiting, "the turn never waited for the other process's contact row"
        other.commit()
        turn.join(30)
        assert not turn.is_alive() and result and isinstance(result[0], list) and result[0]
        assert say(app, 1, "1", user="w9")  # the next message finds everything in place
        with app.factory() as db:
            assert db.scalar(select(func.count()).select_from(Contact)
                             .where(Contact.external_id == "w9")) == 1
            assert db.scalar(select(func.count()).select_from(InboundEvent)
                             .where(InboundEvent.event_key.in_(["kw90", "kw91"]))) == 2
    finally:
        other.close()
        app.engine.dispose()
