"""The WhatsApp pipeline's guarantees under its batching: the 200 means stored, a crash after
the 200 loses nothing, bodies that wait together are stored together and before other work."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.channels.whatsapp import replies as replies_module
from bot.channels.whatsapp.channel import WEBHOOK_PATH, WhatsAppChannel
from bot.channels.whatsapp.lanes import Lanes
from bot.storage.models import OutboxMessage, WhatsAppWebhook
from tests import fake_graph as fg
from tests.conftest import FakeClock
from tests.whatsapp_harness import WA, harness

SITI = "6281234567890"


def hold(busy: threading.Event, gate: threading.Event) -> None:
    """A database job that keeps its thread until the test opens ``gate``."""
    busy.set()
    gate.wait(10)


def stored_bodies(h: WA) -> list[dict[str, Any]]:
    with h.app.factory() as db:
        return [dict(b) for b in db.scalars(select(WhatsAppWebhook.body).order_by(WhatsAppWebhook.id))]


async def post_only(h: WA, body: dict[str, Any]) -> int:
    """Post a signed webhook and return at its answer, without waiting for the processing."""
    raw = fg.encode(body)
    resp = await h.http.post(WEBHOOK_PATH, data=raw, headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": fg.sign(raw)})
    await resp.read()
    return resp.status


async def test_the_200_comes_before_processing_and_means_stored(db_url: str, clock: FakeClock) -> None:
    async with harness(db_url, clock) as h:
        gate = asyncio.Event()
        real = h.channel.handle

        async def held(incoming: Any) -> None:
            await gate.wait()
            await real(incoming)

        h.channel.handle = held  # type: ignore[method-assign]
        body = fg.webhook(messages=[fg.text_message(SITI, "halo")], contacts=[fg.contact(SITI)])
        assert await post_only(h, body) == 200
        assert stored_bodies(h) == [body]  # Meta was answered: the body is in the database
        assert h.graph.sent == []  # and nothing was processed yet
        gate.set()
        await h.channel.idle()
        assert h.graph.last_to(SITI).titles()[0] == "1. Setuju"
        assert stored_bodies(h) == []  # processed, so deleted (it holds personal data)


async def test_a_crash_between_the_200_and_processing_loses_nothing(db_url: str, clock: FakeClock,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    async with harness(db_url, clock) as h:
        # The process dies right after the commit: nothing of the body is processed.
        monkeypatch.setattr(h.channel, "_spawn", lambda *a, **k: None)
        assert await post_only(h, fg.webhook(messages=[fg.text_message(SITI, "halo")],
                                             contacts=[fg.contact(SITI)])) == 200
        assert len(stored_bodies(h)) == 1 and h.graph.sent == []
        # The next process retries what is stored.
        again = WhatsAppChannel.from_app(h.app)
        try:
            clock.advance(minutes=2)
            assert await again.retry_stored() == 1
        finally:
            await again.close()
        assert h.graph.last_to(SITI).titles()[0] == "1. Setuju"
        assert stored_bodies(h) == []


async def test_failed_bookkeeping_keeps_the_body_and_sends_no_second_reply(
    db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with harness(db_url, clock) as h:
        real = replies_module.settle
        failures = {"left": 1}

        def flaky(*args: Any) -> None:
            if failures["left"]:
                failures["left"] -= 1
                raise RuntimeError("database went away")
            real(*args)

        monkeypatch.setattr(replies_module, "settle", flaky)
        assert await h.post(fg.webhook(messages=[fg.text_message(SITI, "halo")],
                                       contacts=[fg.contact(SITI)])) == 200
        assert len(h.graph.to(SITI)) == 2  # greeting and consent question: committed, then sent
        assert len(stored_bodies(h)) == 1  # not recorded as processed: kept for the retry
        clock.advance(minutes=2)
        assert await h.channel.retry_stored() == 1
        assert len(h.graph.to(SITI)) == 2  # the message was a duplicate by then: no second answer
        assert stored_bodies(h) == []
        with h.app.factory() as db:  # the rows whose sending was not recorded stay claimed:
            states = db.scalars(select(OutboxMessage.status)).all()  # the dispatcher's policy decides
        assert set(states) == {"claimed"}


async def test_many_bodies_at_once_each_answered_once(db_url: str, clock: FakeClock) -> None:
    residents = [f"62812000000{i:02d}" for i in range(12)]
    async with harness(db_url, clock) as h:
        bodies = [fg.webhook(messages=[fg.text_message(r, "halo")], contacts=[fg.contact(r)]) for r in residents]
        statuses = await asyncio.gather(*(post_only(h, b) for b in bodies))
        await h.channel.idle()
        assert statuses == [200] * len(residents)
        for r in residents:
            assert [m.text[:5] for m in h.graph.to(r)] == ["Halo!", "Sebel"]
        with h.app.factory() as db:
            assert db.scalar(select(func.count()).select_from(OutboxMessage)
                             .where(OutboxMessage.status == "sent")) == 2 * len(residents)
        assert stored_bodies(h) == []


async def test_bodies_waiting_together_are_stored_in_one_batch_before_other_work() -> None:
    calls: list[Any] = []

    def store(items: list[str]) -> list[int]:
        calls.append(list(items))
        return [100 + i for i in range(len(items))]

    lanes: Lanes[str] = Lanes(store, workers=1, shared=True)  # SQLite's single thread
    busy, gate = threading.Event(), threading.Event()
    try:
        first = asyncio.ensure_future(lanes.run(hold, busy, gate))
        assert await asyncio.to_thread(busy.wait, 10)
        queued = asyncio.ensure_future(lanes.run(calls.append, "queued work"))
        await asyncio.sleep(0)  # the queued work is in line before the bodies
        stores = [asyncio.ensure_future(lanes.store(f"body {i}")) for i in range(5)]
        await asyncio.sleep(0)
        gate.set()
        assert await asyncio.gather(*stores) == [100, 101, 102, 103, 104]
        await asyncio.gather(first, queued)
    finally:
        gate.set()
        lanes.close()
    assert calls == [[f"body {i}" for i in range(5)], "queued work"]


async def test_on_postgresql_storing_never_waits_for_processing() -> None:
    lanes: Lanes[str] = Lanes(lambda items: list(range(len(items))), workers=1, shared=False)
    busy, gate = threading.Event(), threading.Event()
    try:
        held = asyncio.ensure_future(lanes.run(hold, busy, gate))
        assert await asyncio.to_thread(busy.wait, 10)
        assert await asyncio.wait_for(lanes.store("body"), 10) == 0  # its own thread
        assert not held.done()
        gate.set()
        await held
    finally:
        gate.set()
        lanes.close()


async def test_a_failed_insert_fails_every_body_of_the_batch() -> None:
    def broken(items: list[str]) -> list[int]:
        raise RuntimeError("disk full")

    lanes: Lanes[str] = Lanes(broken, workers=1, shared=True)
    try:
        results = await asyncio.gather(lanes.store("a"), lanes.store("b"), return_exceptions=True)
    finally:
        lanes.close()
    assert [type(r) for r in results] == [RuntimeError, RuntimeError]


async def test_a_lost_database_connection_does_not_cost_a_body(pg_url: str, clock: FakeClock) -> None:
    async with harness(pg_url, clock) as h:
        await h.say(SITI, "halo")  # the intake thread now holds its connection
        held = h.channel._held.get()
        pid = held.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        held.rollback()
        with h.app.engine.connect() as other:  # a database restart, as the held connection sees it
            other.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid or 0)})")
        replies = await h.tap(SITI, "Setuju")
        assert replies and "2. Buat pengaduan" in replies[-1].titles()
        assert stored_bodies(h) == []
