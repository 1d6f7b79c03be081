"""Turns that arrive together run in one database job: each keeps its own transaction and order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app import App
from bot.runtime import turn as runtime_module
from bot.storage.models import Contact, InboundEvent, OutboxMessage, SurveyResponse
from tests.conftest import FakeClock
from tests.fake_telegram import User
from tests.telegram_harness import harness

SITI = User(id=7101, first_name="Siti", language_code="id")
BUDI = User(id=7102, first_name="Budi", language_code="id")
WATI = User(id=7103, first_name="Wati", language_code="id")


async def test_a_failing_turn_in_a_batch_loses_nothing_and_spares_the_others(
    app: App, clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    persist = runtime_module.Turn.persist

    def disk_full_for_budi(self: Any, commit: bool = False) -> None:
        persist(self)  # the replies are written (COMMIT not with them), then the turn fails
        if self.inbound.user_id == str(BUDI.id):
            raise RuntimeError("disk full")

    monkeypatch.setattr(runtime_module.Turn, "persist", disk_full_for_budi)
    async with harness(app, clock) as h:
        updates = [h.server.message_update(u, "/start") for u in (SITI, BUDI, WATI)]
        outcomes = await asyncio.gather(*(h.feed(u) for u in updates), return_exceptions=True)
        assert [type(o).__name__ for o in outcomes] == ["NoneType", "RuntimeError", "NoneType"]
        assert h.server.chat(SITI.id)[-1].labels() == ["1. Setuju", "2. Tidak setuju", "3. English"]
        assert h.server.chat(WATI.id)[-1].labels() == ["1. Setuju", "2. Tidak setuju", "3. English"]
        assert h.server.chat(BUDI.id) == []
        with app.factory() as db:  # Budi's turn rolled back whole: no contact, no dedupe mark
            assert db.scalar(select(func.count()).select_from(Contact)
                             .where(Contact.external_id == str(BUDI.id))) == 0
            assert db.scalar(select(func.count()).select_from(InboundEvent)
                             .where(InboundEvent.event_key == str(updates[1]["update_id"]))) == 0

        monkeypatch.setattr(runtime_module.Turn, "persist", persist)
        await h.feed(updates[1])  # Telegram redelivers: now it is answered, once
        answered = h.server.chat(BUDI.id)
        assert answered[-1].labels() == ["1. Setuju", "2. Tidak setuju", "3. English"]
        await h.feed(updates[1])
        assert h.server.chat(BUDI.id) == answered


async def test_residents_in_flight_together_each_answered_in_order(app: App, clock: FakeClock) -> None:
    residents = [User(id=7200 + n, first_name=f"Warga {n}", language_code="id") for n in range(6)]

    async def survey(user: User) -> None:
        await h.feed(h.server.message_update(user, "/start"))
        for label in ("Setuju", "Nilai layanan", "Disdukcapil", "KTP Elektronik"):
            await h.feed(h.server.press_update(user, h.last_question(user), label))
        for _ in range(9):
            question = h.last_question(user)
            await h.feed(h.server.press_update(user, question, question.labels()[0]))
        await h.feed(h.server.message_update(user, "Antrean tertib dan petugas ramah"))

    async with harness(app, clock) as h:
        await asyncio.gather(*(survey(u) for u in residents))
        for user in residents:
            texts = [m.text or "" for m in h.server.chat(user.id)]
            progress = [t for t in texts if "(" in t and "/9)" in t]
            assert len(progress) == 9
            # thanks, then the respondent profile a first survey ends with
            assert "Terima kasih" in texts[-3] and texts[-1].startswith("Profil 1/4")

    with app.factory() as db:
        done = db.scalars(select(SurveyResponse).where(SurveyResponse.status == "complete")).all()
        assert len(done) == len(residents)
        assert all([a.score for a in r.answers] == [4] * 9 for r in done)
        unsent = db.scalar(select(func.count()).select_from(OutboxMessage)
                           .where(OutboxMessage.kind == "reply", OutboxMessage.status != "sent"))
        assert unsent == 0


async def test_turns_waiting_together_are_shared_among_the_database_threads(
        app: App, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL a turn mostly waits for the server: turns that queue up together go to
    every database thread, not all to the first job (which left the others idle). SQLite has
    one thread."""
    import threading
    import time

    from bot.runtime.facade import Runtime

    ran: list[str] = []
    handle = Runtime.handle

    def slow_handle(self: Runtime, inbound: Any) -> Any:
        ran.append(threading.current_thread().name)
        time.sleep(0.05)  # a server far away
        return handle(self, inbound)

    monkeypatch.setattr(Runtime, "handle", slow_handle)
    async with harness(app, clock) as h:
        residents = [User(id=7200 + i, first_name=f"Warga {i}", language_code="id") for i in range(12)]
        await asyncio.gather(*(h.feed(h.server.message_update(u, "/start")) for u in residents))
        for u in residents:  # everyone answered
            assert h.server.chat(u.id)[-1].labels() == ["1. Setuju", "2. Tidak setuju", "3. English"]
    threads = len(set(ran))  # PostgreSQL: 4 on a quiet host; all on the first one before
    assert threads > 1 if app.runtime.postgres else threads == 1, ran
