"""WhatsApp's bookkeeping statements, which run on the driver (bot/channels/whatsapp/store.py):
what they store, on SQLite and PostgreSQL, held connection or pooled, and all or nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.app import App
from bot.channels.whatsapp.store import HeldConnection, Settle, settle, store_webhooks
from bot.storage.models import OutboxMessage, WhatsAppWebhook
from tests.conftest import FakeClock, make_app
from tests.roundtrip_proxy import RoundTrips


def body(n: int) -> dict[str, Any]:
    # quotes, a backslash, percent signs, placeholders and a semicolon: stored as given
    return {"object": "whatsapp_business_account", "n": n, "text": f"pesan {n} — é 😀",
            "tricky": "it's 100% \\ \"quoted\"; DROP TABLE contacts; -- %(n)s %s $1 E'\\x00'"}


def bodies_by_id(app: App) -> dict[int, dict[str, Any]]:
    with app.factory() as db:
        return {w.id: w.body for w in db.scalars(select(WhatsAppWebhook))}


@pytest.mark.parametrize("held", [False, True])
def test_stored_bodies_come_back_under_their_ids_in_arrival_order(
        app: App, clock: FakeClock, held: bool) -> None:
    keeper = HeldConnection(app.factory)
    try:
        conn = keeper.get() if held else None
        first = store_webhooks(app.factory, [body(0)], clock(), conn)
        ids = store_webhooks(app.factory, [body(n) for n in range(1, 8)], clock(), conn)
    finally:
        keeper.close()
    assert len(first) == 1 and len(ids) == 7 and first[0] < ids[0]
    assert ids == sorted(ids) and len(set(ids)) == 7  # one id per body, in the order given
    stored = bodies_by_id(app)
    assert [stored[i]["n"] for i in first + ids] == list(range(8))
    assert stored[ids[2]]["text"] == "pesan 3 — é 😀"
    assert all(stored[i] == body(n) for n, i in enumerate(first + ids))  # every value exactly
    with app.factory() as db:
        row = db.get(WhatsAppWebhook, ids[0])
        assert row is not None and row.attempts == 0 and row.received_at == clock()


def test_a_failing_body_stores_none_of_its_batch(app: App, clock: FakeClock) -> None:
    store_webhooks(app.factory, [body(0)], clock())
    with pytest.raises(Exception):  # noqa: B017 - the driver's own error, whichever database
        store_webhooks(app.factory, [body(1), {"bad": object()}, body(3)], clock())
    assert [b["n"] for b in bodies_by_id(app).values()] == [0]
    assert store_webhooks(app.factory, [body(4)], clock())  # the pool's connection still works


def outbox_row(app: App, chat: str, status: str, clock: FakeClock) -> int:
    with app.factory() as db, db.begin():
        row = OutboxMessage(channel="whatsapp", chat_id=chat, kind="reply", payload={"text": "x"},
                            status=status, due_at=clock(), created_at=clock(), attempts=0,
                            claimed_at=clock() if status == "claimed" else None)
        db.add(row)
        db.flush()
        return row.id


def test_settle_records_sends_releases_parked_rows_and_deletes_bodies(app: App, clock: FakeClock) -> None:
    sent = [outbox_row(app, "62811", "claimed", clock) for _ in range(3)]
    early, late = outbox_row(app, "62822", "waiting", clock), outbox_row(app, "62822", "waiting", clock)
    parked = [outbox_row(app, "62833", "waiting", clock) for _ in range(2)]
    other = outbox_row(app, "62844", "waiting", clock)  # nobody wrote: stays parked
    kept, *done = store_webhooks(app.factory, [body(n) for n in range(4)], clock())
    clock.advance(seconds=5)
    settle(app.runtime, Settle(sent=[(sent[0], "wamid.A"), (sent[1], None), (sent[2], "wamid.C")],
                               released={"62822": late, "62833": None}, done=done), clock())
    with app.factory() as db:
        rows = {r.id: r for r in db.scalars(select(OutboxMessage))}
    assert [(rows[i].status, rows[i].provider_message_id, rows[i].attempts) for i in sent] == [
        ("sent", "wamid.A", 1), ("sent", None, 1), ("sent", "wamid.C", 1)]
    assert all(rows[i].sent_at == clock() for i in sent)
    assert (rows[early].status, rows[early].due_at) == ("pending", clock())  # below the bound
    assert rows[late].status == "waiting"  # the reply to that very message stays parked
    assert [rows[i].status for i in parked] == ["pending", "pending"]
    assert rows[other].status == "waiting"
    assert list(bodies_by_id(app)) == [kept]


def test_settle_is_all_or_nothing(app: App, clock: FakeClock) -> None:
    row = outbox_row(app, "62811", "claimed", clock)
    parked = outbox_row(app, "62822", "waiting", clock)
    ids = store_webhooks(app.factory, [body(0)], clock())
    # the last statement fails (an id the database refuses): the ones before it are undone
    bad: Any = "not an id" if app.engine.dialect.name == "postgresql" else object()
    with pytest.raises(Exception):  # noqa: B017 - the driver's own error, whichever database
        settle(app.runtime, Settle(sent=[(row, "wamid.A")], released={"62822": None},
                                   done=[*ids, bad]), clock())
    with app.factory() as db:
        assert db.get(OutboxMessage, row).status == "claimed"  # type: ignore[union-attr]
        assert db.get(OutboxMessage, parked).status == "waiting"  # type: ignore[union-attr]
    assert list(bodies_by_id(app)) == ids
    settle(app.runtime, Settle(sent=[(row, "wamid.A")], released={"62822": None}, done=ids), clock())
    with app.factory() as db:
        assert db.get(OutboxMessage, row).status == "sent"  # type: ignore[union-attr]
    assert bodies_by_id(app) == {}


def test_storing_bodies_and_the_bookkeeping_are_one_round_trip_each_on_postgres(
        pg_url: str, clock: FakeClock) -> None:
    """BEGIN, the statements and COMMIT travel together (bot/storage/roundtrips.py), counted on
    the wire: storing a batch was three round trips (BEGIN, INSERT, COMMIT)."""
    make_app(pg_url, clock).engine.dispose()  # the tables
    proxy = RoundTrips(pg_url)
    app = make_app(proxy.url, clock)
    keeper = HeldConnection(app.factory)
    try:
        store_webhooks(app.factory, [body(0)], clock(), keeper.get())  # connected
        row = outbox_row(app, "62811", "claimed", clock)
        proxy.count = 0
        ids = store_webhooks(app.factory, [body(1), body(2), body(3)], clock(), keeper.get())
        assert proxy.count == 1
        proxy.count = 0
        settle(app.runtime, Settle(sent=[(row, "wamid.A")], released={"62822": None}, done=ids), clock())
        assert proxy.count == 1
    finally:
        keeper.close()
        app.engine.dispose()
        proxy.close()
    check = make_app(pg_url, clock)
    assert [b["n"] for b in bodies_by_id(check).values()] == [0]  # the bookkeeping deleted the rest
    check.engine.dispose()
