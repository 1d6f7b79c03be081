"""Status changes set by staff reach the resident (audited, localized, quiet hours respected)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.app import App
from bot.desk import intake
from bot.outbox.followups import KIND_CHECKIN, KIND_STATUS, notify_status_change
from bot.outbox.store import mark_sent
from bot.runtime.types import Inbound, new_event_id
from bot.storage.models import Complaint, Contact, OutboxMessage, StatusChange
from flows.machine.types import Event
from tests.conftest import FakeClock
from tests.outbox_support import RecordingSender, dispatcher

WIB = ZoneInfo("Asia/Jakarta")


def text(app: App, user: str, words: str) -> list[str]:
    rows = app.runtime.handle(Inbound("telegram", user, user, Event("text", new_event_id(), text=words)))
    mark_sent(app.factory, [(r.id, None) for r in rows], app.runtime.clock())  # as the channel does
    return [r.payload["text"] for r in rows]


def file_complaint(app: App, user: str = "5151") -> Complaint:
    for words in ("/start", "Setuju", "/lapor", "ktp",
                  "Sudah dua bulan KTP elektronik saya belum dicetak juga", "Penundaan berlarut",
                  "Hari ini", "Lewati", "Lewati", "Tidak", "Ya", "Kirim"):
        text(app, user, words)
    with app.factory() as db:
        return db.scalars(select(Complaint)).one()


async def test_status_change_is_audited_and_told_after_quiet_hours(app: App, clock: FakeClock) -> None:
    file_complaint(app)
    clock.now = datetime(2026, 11, 23, 22, 15, tzinfo=WIB).astimezone(UTC)  # staff work late
    with app.factory() as db, db.begin():
        complaint = db.scalars(select(Complaint)).one()
        row = notify_status_change(db, complaint, "open", "petugas:andi", "Sedang dicek ke bagian cetak",
                                   clock.now)
        assert row is not None
    with app.factory() as db:
        complaint = db.scalars(select(Complaint)).one()
        change = db.scalars(select(StatusChange).order_by(StatusChange.id.desc())).first()
        row = db.scalars(select(OutboxMessage).where(OutboxMessage.kind == KIND_STATUS)).one()
    assert complaint.status == "open" and complaint.updated_at == clock.now
    assert change is not None and (change.from_status, change.to_status, change.actor) == (
        "new", "open", "petugas:andi")
    assert row.due_at == datetime(2026, 11, 24, 7, 0, tzinfo=WIB)  # not at night
    assert complaint.ticket in row.payload["text"] and "Sedang ditangani" in row.payload["text"]
    assert "Sedang dicek ke bagian cetak" in row.payload["text"]

    sender = RecordingSender(clock=clock)
    d = dispatcher(app.factory, sender, clock)
    await d.drain()
    assert not [m for _, m, _ in sender.delivered if complaint.ticket in m]
    clock.now = datetime(2026, 11, 24, 7, 0, tzinfo=WIB).astimezone(UTC)
    await d.drain()
    [(chat, message, _)] = sender.delivered
    assert chat == "5151" and "Sedang ditangani" in message


def test_status_change_in_english_and_closing_cancels_the_checkin(
        sqlite_app: App, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(intake, "on_complaint", lambda *args, **kwargs: None)  # no case: a check-in
    app = sqlite_app
    complaint = file_complaint(app, "6262")
    with app.factory() as db, db.begin():
        contact = db.scalars(select(Contact).where(Contact.external_id == "6262")).one()
        contact.language = "en"
    with app.factory() as db, db.begin():
        c = db.get(Complaint, complaint.id)
        assert c is not None
        notify_status_change(db, c, "closed", "petugas:rina", None, clock.now + timedelta(hours=1))
    with app.factory() as db:
        rows = {r.kind: r for r in db.scalars(select(OutboxMessage).where(OutboxMessage.ref.is_not(None)))}
    assert rows[KIND_CHECKIN].status == "cancelled"  # no longer relevant
    assert rows[KIND_STATUS].payload["text"] == (
        f"Update on complaint {complaint.ticket}: its status is now \u201cClosed\u201d.")


def test_no_message_when_the_resident_cannot_be_told(sqlite_app: App, clock: FakeClock) -> None:
    app = sqlite_app
    complaint = file_complaint(app, "7373")
    with app.factory() as db, db.begin():
        c = db.get(Complaint, complaint.id)
        assert c is not None
        assert notify_status_change(db, c, "new", "petugas:rina", None, clock.now) is None  # same status
        db.scalars(select(Contact).where(Contact.external_id == "7373")).one().unreachable_at = clock.now
        assert notify_status_change(db, c, "open", "petugas:rina", None, clock.now) is None  # blocked us
    with app.factory() as db:
        assert db.scalars(select(StatusChange).where(StatusChange.complaint_id == complaint.id)).all()[-1]\
            .to_status == "open"  # the audit trail is written regardless
        assert not db.scalars(select(OutboxMessage).where(OutboxMessage.kind == KIND_STATUS)).all()
