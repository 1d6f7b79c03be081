"""The follow-up plan: /rencana through the real runtime, and the plan in the digest and reports."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction

from sqlalchemy import select

from bot.app import App
from bot.desk import staff
from bot.reports.digest.data import collect as collect_digest
from bot.reports.digest.data import find_agency
from bot.reports.digest.text import render_text as digest_text
from bot.reports.periodic.data import collect
from bot.reports.periodic.period import parse_period
from bot.reports.periodic.text import render_text
from bot.runtime.types import Inbound
from bot.storage.models import PlanAction, Service, StaffMember
from flows.machine.types import Event
from flows.steps.plan import parse_due
from tests.conftest import FakeClock
from tests.digest_data import add_response
from tests.fake_telegram import User
from tests.telegram_harness import harness

_ids = itertools.count(1)


def say(app: App, user: str, text: str) -> str:
    """The user types ``text`` on the console channel; the bot's replies, joined."""
    n = next(_ids)
    rows = app.runtime.handle(Inbound("console", user, user, Event("text", f"p{n}", text=text), event_key=f"pk{n}"))
    return "\n".join(f"{r.payload.get('text', '')} {r.payload.get('choices') or ''}" for r in rows)


def register_head(app: App, clock: FakeClock, user: str = "kepala-1") -> None:
    with app.factory() as db, db.begin():
        code = staff.create_invite(db, "disdukcapil", "head", clock(), 7)
    assert "terdaftar" in say(app, user, f"/daftar {code}")


def test_parse_due() -> None:
    assert parse_due("31-03-2027") == date(2027, 3, 31)
    assert parse_due("1/4/27") == date(2027, 4, 1)
    assert parse_due("31.12.2026") == date(2026, 12, 31)
    for bad in ("31-02-2027", "besok", "2027-03-31", ""):
        assert parse_due(bad) is None


def test_a_head_adds_and_finishes_an_action(app: App, clock: FakeClock) -> None:
    register_head(app, clock)
    menu = say(app, "kepala-1", "/rencana")
    assert "Belum ada tindakan yang terbuka" in menu and "Tambah tindakan baru" in menu
    elements = say(app, "kepala-1", "1")
    assert "U3 Waktu Penyelesaian" in elements and "U9 Sarana dan Prasarana" in elements
    services = say(app, "kepala-1", "3")  # U3
    assert "semua layanan" in services and "KTP Elektronik" in services
    assert "Tuliskan tindakan" in say(app, "kepala-1", "2")  # the first service: KTP
    assert "penanggung jawab" in say(app, "kepala-1", "Tambah loket antrian pagi").lower()
    assert "dd-mm-yyyy" in say(app, "kepala-1", "Kabid Dafduk")
    assert "belum terbaca" in say(app, "kepala-1", "akhir bulan")
    confirm = say(app, "kepala-1", "31-03-2027")
    assert "Tambah loket antrian pagi" in confirm and "31-03-2027" in confirm and "KTP Elektronik" in confirm
    assert "Tersimpan" in say(app, "kepala-1", "1")
    with app.factory() as db:
        action = db.scalars(select(PlanAction)).one()
        member = db.scalars(select(StaffMember)).one()
        ktp = db.scalars(select(Service).where(Service.code == "ktp")).one()
        assert (action.element, action.service_id, action.due_on, action.status, action.created_by) == (
            3, ktp.id, date(2027, 3, 31), "planned", member.id)
    # the list shows it; mark it in progress, then done with what was done
    listed = say(app, "kepala-1", "/rencana")
    assert "U3 Tambah loket antrian pa… · 31-03-2027 · direncanakan" in listed
    assert "Perbarui statusnya" in say(app, "kepala-1", "2")
    assert "diperbarui" in say(app, "kepala-1", "1")
    say(app, "kepala-1", "/rencana")
    say(app, "kepala-1", "2")
    assert "Apa yang sudah dilakukan" in say(app, "kepala-1", "2")
    assert "diperbarui" in say(app, "kepala-1", "Loket pagi dibuka sejak 20 November")
    with app.factory() as db:
        action = db.scalars(select(PlanAction)).one()
        assert action.status == "done" and action.done_at == clock() and (action.done_text or "").startswith("Loket pagi")
    assert "Belum ada tindakan yang terbuka" in say(app, "kepala-1", "/rencana")


def test_residents_and_staff_cannot_plan(app: App, clock: FakeClock) -> None:
    assert "hanya untuk kepala dan admin" in say(app, "warga-1", "/rencana")
    with app.factory() as db, db.begin():
        code = staff.create_invite(db, "disdukcapil", "staff", clock(), 7)
    say(app, "petugas-1", f"/daftar {code}")
    assert "hanya untuk kepala dan admin" in say(app, "petugas-1", "/rencana")


def test_a_due_date_in_the_past_is_refused(app: App, clock: FakeClock) -> None:
    register_head(app, clock)
    for text in ("/rencana", "1", "3", "1", "Tambah loket", "Kabid", "01-01-2020"):
        reply = say(app, "kepala-1", text)
    assert "31-" not in reply
    assert "sudah lewat" in say(app, "kepala-1", "1")
    with app.factory() as db:
        assert db.scalars(select(PlanAction)).all() == []


def _add(app: App, element: int, done_at: datetime | None, created: datetime) -> None:
    with app.factory() as db, db.begin():
        agency = find_agency(db, "disdukcapil")
        db.add(PlanAction(agency_id=agency.id, element=element, service_id=None, what="Tambah loket antrian",
                          who="Kabid Dafduk", due_on=date(2026, 12, 31),
                          status="done" if done_at else "in_progress", done_text="Loket dibuka" if done_at else None,
                          done_at=done_at, created_at=created, updated_at=created))


def test_the_plan_in_the_reports_and_whether_the_nrr_moved(app: App) -> None:
    # Q4 2026: U3 scored 2; the action is done on 10 November; Q1 2027: U3 scored 4
    add_response(app, "ktp", datetime(2026, 10, 5, 3, tzinfo=UTC), [3, 3, 2, 3, 3, 3, 3, 3, 3])
    add_response(app, "ktp", datetime(2027, 1, 5, 3, tzinfo=UTC), [3, 3, 4, 3, 3, 3, 3, 3, 3])
    _add(app, 3, datetime(2026, 11, 10, 3, tzinfo=UTC), datetime(2026, 10, 20, 3, tzinfo=UTC))
    _add(app, 5, None, datetime(2026, 11, 18, 3, tzinfo=UTC))
    with app.factory() as db:
        q4 = collect(db, "disdukcapil", parse_period("2026-Q4"))
        q1 = collect(db, "disdukcapil", parse_period("2027-Q1"))
        q3 = collect(db, "disdukcapil", parse_period("2026-Q3"))
        digest = collect_digest(db, find_agency(db, "disdukcapil"), "2026-W47")
    assert [(p.element, p.status) for p in q4.plan] == [(3, "done"), (5, "in_progress")]
    assert q4.plan[0].nrr_before is None  # done during this period: nothing to compare yet
    assert q3.plan == []  # not yet created
    moved = next(p for p in q1.plan if p.element == 3)
    assert (moved.nrr_before, moved.nrr_after) == (Fraction(2), Fraction(4))
    assert q1.ikm.value == Decimal("77.78")
    assert "NRR 2,00 → 4,00 (naik)" in render_text(q1, "id")
    text = digest_text(digest, "id")
    assert "Rencana tindak lanjut: U5 Tambah loket antrian (Kabid Dafduk, 31-12-2026, sedang berjalan)" in text


async def test_the_plan_with_telegram_buttons(app: App, clock: FakeClock) -> None:
    with app.factory() as db, db.begin():
        code = staff.create_invite(db, "disdukcapil", "head", clock(), 7)
    head = User(id=7101, first_name="Rina", language_code="id")
    async with harness(app, clock) as h, h.polling():
        await h.say(head, f"/daftar {code}")
        await h.say(head, "/rencana")
        await h.press(head, "Tambah tindakan baru")
        await h.press(head, "U4 Biaya/Tarif")
        await h.press(head, "semua layanan")
        await h.say(head, "Pasang papan tarif resmi di loket")
        await h.say(head, "Sekretaris Dinas")
        replies = await h.say(head, "15-01-2027")
        assert "Pasang papan tarif resmi di loket" in (replies[-1].text or "")
        replies = await h.press(head, "Simpan")
        assert "Tersimpan" in (replies[0].text or "")
        await h.say(head, "/rencana")
        await h.press(head, "U4 Pasang papan tarif resm… · 15-01-2027 · direncanakan")
        await h.press(head, "Selesai")
        replies = await h.say(head, "Papan tarif terpasang di 3 loket")
        assert "diperbarui" in (replies[0].text or "")
    with app.factory() as db:
        action = db.scalars(select(PlanAction)).one()
        assert (action.element, action.service_id, action.who, action.status, action.done_text) == (
            4, None, "Sekretaris Dinas", "done", "Papan tarif terpasang di 3 loket")
