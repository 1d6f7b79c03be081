"""Every complaint is a case (issue 13): opened at once on every channel, serious ones urgent and
first, deadlines per agency and category, the resident's check-in following the case (asked to
confirm and rate when staff resolve, told honestly when it is late), and one complaint limit in
the digest."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from bot import catalog
from bot.app import App
from bot.desk import cases as desk_cases
from bot.desk import deadlines, intake
from bot.desk.outgoing import texts
from bot.outbox.followups import KIND_CHECKIN
from bot.reports.digest.data import collect
from bot.runtime.types import Inbound
from bot.storage.models import Agency, Case, Complaint, OutboxMessage
from flows.machine.types import Event
from tests.case_support import complaint, consent, dispatcher, register, say
from tests.conftest import FakeClock
from tests.digest_data import add_head
from tests.fake_telegram import User
from tests.telegram_harness import harness
from tests.whatsapp_harness import harness as wa_harness

WIB = ZoneInfo("Asia/Jakarta")
WARGA = User(id=5101, first_name="Rina")
PETUGAS = User(id=7101, first_name="Budi")
KEPALA = User(id=7102, first_name="Kepala")
ORDINARY = "Penundaan berlarut"
PUNGLI = "Permintaan imbalan uang/barang (pungli)"
# the console's complaint: service ktp, the words, a category by number, then the defaults
CONSOLE_STEPS = ["/start", "1", "/lapor", "ktp", "KTP saya belum jadi sudah dua bulan", "1",
                 "1", "1", "1", "1", "1", "1"]


def all_cases(app: App) -> list[Case]:
    with app.factory() as db:
        return list(db.scalars(select(Case).order_by(Case.id)))


def set_sla(app: App, **per_category: dict[str, float]) -> None:
    """The agency's per-category limits as the catalog stores them (``sla_categories``)."""
    with app.factory() as db, db.begin():
        agency = db.scalars(select(Agency).where(Agency.slug == "disdukcapil")).one()
        agency.settings = {**(agency.settings or {}), "sla_categories": per_category}


def resident_rows(app: App, kind: str) -> list[OutboxMessage]:
    with app.factory() as db:
        return list(db.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind)
                               .order_by(OutboxMessage.id)))


# ---------------------------------------------------------------- every complaint opens a case


async def test_every_telegram_complaint_opens_a_case_urgent_first_in_the_queue(
        app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        await h.channel.setup()
        await register(h, PETUGAS)
        await consent(h, WARGA)
        done = await complaint(h, WARGA, "Antrian KTP sangat panjang dan lama", ORDINARY,
                               confidential=False)
        assert not any("langsung kami teruskan ke petugas" in (m.text or "") for m in done)
        clock.advance(minutes=5)
        await complaint(h, WARGA, "Petugas minta uang rokok supaya cepat", PUNGLI, confidential=False)
        normal, serious = all_cases(app)
        assert (normal.trigger, normal.priority, normal.status) == ("complaint", "normal", "new")
        assert (serious.trigger, serious.priority) == ("serious", "urgent")
        assert normal.resolution_due < serious.resolution_due  # filed first, due first...
        listed = await say(h, PETUGAS, "/kasus")
        lines = (listed[-1].text or "").splitlines()
        assert "📂 Disdukcapil: 2 kasus terbuka" in lines[0]
        # ...yet the urgent one is listed first, marked
        assert lines[1].startswith(f"🔴 {serious.ticket} · Baru · Pengaduan serius")
        assert any(line.startswith(f"• {normal.ticket} · Baru · Pengaduan") for line in lines[2:])
    assert resident_rows(app, KIND_CHECKIN) == []  # no blind timer: the case asks


def test_every_console_complaint_opens_a_case(app: App, clock: FakeClock) -> None:
    for n, line in enumerate(CONSOLE_STEPS):
        app.runtime.handle(Inbound("console", "c1", "c1", Event("text", f"e{n}", text=line)))
    with app.factory() as db:
        filed = db.scalars(select(Complaint)).one()
    [case] = all_cases(app)
    assert case.complaint_id == filed.id and case.source_key == f"complaint:{filed.id}"
    assert (case.trigger, case.priority, case.channel, case.chat_id) == ("complaint", "normal", "console", "c1")
    assert case.ticket == filed.ticket and filed.category == "penundaan"


async def test_whatsapp_complaint_without_phone_consent_still_hears_about_its_case(
        db_url: str, clock: FakeClock) -> None:
    """The WhatsApp reporter answered "Tidak" to phone calls by staff: the case still tells
    them in the chat when staff resolve it, and their rating closes it."""
    from tests.test_whatsapp_flows import SITI, file_complaint

    async with wa_harness(db_url, clock) as h:
        ticket = await file_complaint(h)
        [case] = all_cases(h.app)
        with h.app.factory() as db:
            filed = db.scalars(select(Complaint)).one()
        assert filed.contact_consent is False
        assert (case.trigger, case.priority, case.channel, case.chat_id) == ("serious", "urgent", "whatsapp", SITI)
        head = add_head(h.app, "disdukcapil", "8801", clock())
        with h.app.factory() as db, db.begin():
            outcome = desk_cases.act(db, case.id, "resolve", channel="telegram", user_id="8801",
                                     chat_id="8801", now=clock(), private=True)
        assert outcome.ok and head
        await h.drain()
        question = h.graph.last_question(SITI)
        assert f"Petugas menyatakan {ticket} sudah selesai ditangani" in question.text
        assert question.titles()[:5] == ["Sangat puas", "Puas", "Cukup", "Kurang puas", "Tidak puas"]
        assert "Belum selesai" in question.titles()
        thanks = await h.tap(SITI, "Sangat puas", on=question)
        assert any("Terima kasih atas penilaian" in m.text for m in thanks)
    [case] = all_cases(h.app)
    assert case.status == "closed" and case.rating == 5
    with h.app.factory() as db:
        assert db.scalars(select(Complaint.status)).one() == "closed"


def test_a_complaint_filed_before_cases_keeps_the_old_triggers(
        sqlite_app: App, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """A complaint without a case (filed before this change): "not solved" opens one, and
    ``/eskalasi`` opens an urgent one."""
    app = sqlite_app
    with monkeypatch.context() as m:
        m.setattr(intake, "on_complaint", lambda *args, **kwargs: None)
        for n, line in enumerate(CONSOLE_STEPS):
            app.runtime.handle(Inbound("console", "c1", "c1", Event("text", f"a{n}", text=line)))
        for n, line in enumerate(CONSOLE_STEPS[2:]):
            app.runtime.handle(Inbound("console", "c1", "c1", Event("text", f"b{n}", text=line)))
    assert all_cases(app) == []
    with app.factory() as db:
        first, second = db.scalars(select(Complaint).order_by(Complaint.id)).all()
    assert len(resident_rows(app, KIND_CHECKIN)) == 2  # the fallback: the blind check-in
    app.runtime.handle(Inbound("console", "c1", "c1", Event("choice", "n1", choice=f"fu:c:{first.id}:no")))
    [reopened] = all_cases(app)
    assert (reopened.trigger, reopened.complaint_id) == ("not_resolved", first.id)
    with app.factory() as db, db.begin():
        notice, _rows = intake.escalate_complaint(db, "console", "nobody", second.ticket, clock())
    assert notice == texts("case.refused.unknown")  # not staff: refused, nothing opened
    assert len(all_cases(app)) == 1
    add_head(app, "disdukcapil", "8802", clock())
    with app.factory() as db, db.begin():
        notice, _rows = intake.escalate_complaint(db, "telegram", "8802", second.ticket, clock())
    assert notice == f"Pengaduan {second.ticket} kini menjadi kasus yang ditangani petugas."
    manual = all_cases(app)[-1]
    assert (manual.trigger, manual.priority, manual.complaint_id) == ("manual", "urgent", second.id)


# ---------------------------------------------------------------- deadlines per category


def test_deadlines_per_agency_and_category(app: App, clock: FakeClock) -> None:
    set_sla(app, penundaan={"sla_first_response_hours": 2, "sla_resolution_days": 3})
    for n, line in enumerate(CONSOLE_STEPS):
        app.runtime.handle(Inbound("console", "c1", "c1", Event("text", f"e{n}", text=line)))
    pungli = [*CONSOLE_STEPS[2:5], "4", *CONSOLE_STEPS[6:]]
    for n, line in enumerate(pungli):
        app.runtime.handle(Inbound("console", "c1", "c1", Event("text", f"p{n}", text=line)))
    late, usual = all_cases(app)
    # Monday 09:00 WIB: penundaan has its own limits (2 working hours, 3 working days)
    assert late.first_response_due == datetime(2026, 11, 23, 11, 0, tzinfo=WIB)
    assert late.resolution_due == datetime(2026, 11, 26, 9, 0, tzinfo=WIB)
    # pungli keeps the agency's: 8 working hours (break 12:00-13:00), 10 working days
    assert usual.first_response_due == datetime(2026, 11, 24, 9, 30, tzinfo=WIB)
    assert usual.resolution_due == datetime(2026, 12, 7, 9, 0, tzinfo=WIB)


def test_catalog_per_category_limits(sqlite_app: App, tmp_path: Path) -> None:
    text = """
region: Test
sla:
  categories:
    pungli: {first_response_hours: 4}
agencies:
  - slug: dinas
    name: Dinas Uji
    short_name: Dinas
    sla:
      resolution_days: 5
      categories:
        pungli: {resolution_days: 2}
        penundaan: {first_response_hours: 16}
    services: [{code: s1, name: Layanan satu}]
"""
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    with sqlite_app.factory() as db, db.begin():
        catalog.load_catalog(db, path)
    with sqlite_app.factory() as db:
        agency = db.scalars(select(Agency).where(Agency.slug == "dinas")).one()
        assert agency.settings["sla_categories"] == {
            "pungli": {"sla_first_response_hours": 4, "sla_resolution_days": 2},
            "penundaan": {"sla_first_response_hours": 16},
        }
        pungli = desk_cases.policy(agency, "pungli")
        assert (pungli.first_response_hours, pungli.resolution_days) == (4, 2)
        other = desk_cases.policy(agency, "lainnya")
        assert (other.first_response_hours, other.resolution_days) == (8, 5)
    path.write_text(text.replace("penundaan:", "terlambat:"))
    with pytest.raises(catalog.CatalogError, match="unknown complaint category terlambat"):
        catalog.read_catalog(path)


# ---------------------------------------------------------------- the deadline passes


async def test_late_case_tells_the_resident_once_and_alerts_the_heads(app: App, clock: FakeClock) -> None:
    async with harness(app, clock) as h:
        await h.channel.setup()
        await register(h, KEPALA, role="head")
        await consent(h, WARGA)
        await complaint(h, WARGA, "Antrian KTP sangat panjang dan lama", ORDINARY, confidential=False)
        [case] = all_cases(app)
        due = case.resolution_due
        # the tick runs at 22:00 WIB on the day it was due: inside quiet hours
        night = datetime.combine(due.astimezone(WIB).date(), time(22, 0), tzinfo=WIB).astimezone(UTC)
        assert night > due
        flagged = []
        for at in (night, night + timedelta(minutes=5)):
            clock.now = at
            with app.factory() as db, db.begin():
                flagged.append(deadlines.sla_tick(db, clock()))
        assert flagged == [2, 0]  # the first-response limit passed long before, never taken
        [late] = resident_rows(app, deadlines.KIND_LATE)
        assert late.status == "pending" and late.chat_id == str(WARGA.id)
        next_morning = datetime.combine(night.astimezone(WIB).date() + timedelta(days=1), time(7, 0),
                                        tzinfo=WIB)
        assert late.due_at == next_morning  # quiet hours respected
        d = dispatcher(h)
        before = len(h.server.chat(WARGA.id))
        await d.tick()
        await d.idle()  # a send a busy host kept past the tick's second is recorded too
        assert h.server.chat(WARGA.id)[before:] == []  # not at night
        head_flags = [m for m in h.server.chat(KEPALA.id) if "melewati batas penyelesaian" in (m.text or "")]
        assert len(head_flags) == 1 and case.ticket in (head_flags[0].text or "")
        clock.now = next_morning.astimezone(UTC) + timedelta(minutes=1)
        with app.factory() as db, db.begin():
            assert deadlines.sla_tick(db, clock()) == 0  # flagged once, whatever restarts
        await d.tick()
        await d.idle()
        told = h.server.chat(WARGA.id)[before:]
        assert [m.text for m in told] == [
            f"Mohon maaf, {case.ticket} belum selesai ditangani Disdukcapil sampai batas waktunya "
            f"({due.astimezone(WIB):%d-%m-%Y %H:%M} WIB). Kabar berikutnya tetap kami kirim di sini.\n"
            "Pimpinan Disdukcapil sudah kami beri tahu."]
        await d.tick()
        await d.idle()
        assert len([m for m in h.server.chat(KEPALA.id) if "melewati batas penyelesaian" in (m.text or "")]) == 1
    assert len(resident_rows(app, deadlines.KIND_LATE)) == 1


# ---------------------------------------------------------------- one complaint limit


def test_digest_counts_overdue_complaints_from_the_case_deadline(app: App, clock: FakeClock) -> None:
    set_sla(app, penundaan={"sla_resolution_days": 2})
    for n, line in enumerate(CONSOLE_STEPS):  # Monday 23 November 09:00 WIB: due Wednesday 09:00
        app.runtime.handle(Inbound("console", "c1", "c1", Event("text", f"e{n}", text=line)))
    pungli = [*CONSOLE_STEPS[2:5], "4", *CONSOLE_STEPS[6:]]
    for n, line in enumerate(pungli):  # due in 10 working days: 7 December
        app.runtime.handle(Inbound("console", "c1", "c1", Event("text", f"p{n}", text=line)))
    with app.factory() as db:
        agency = db.scalars(select(Agency).where(Agency.slug == "disdukcapil")).one()
        # the week of filing: the first is past its case's limit (the old 14 days would say 0)
        assert collect(db, agency, "2026-W48").complaints.overdue == 1
        assert collect(db, agency, "2026-W50").complaints.overdue == 2
    with app.factory() as db, db.begin():  # resolved in time: no longer counted later
        db.execute(update(Complaint).where(Complaint.category == "pungli")
                   .values(resolved_at=datetime(2026, 12, 4, 2, 0, tzinfo=UTC), status="resolved"))
    with app.factory() as db:
        agency = db.scalars(select(Agency).where(Agency.slug == "disdukcapil")).one()
        assert collect(db, agency, "2026-W50").complaints.overdue == 1


def test_contact_question_says_it_is_about_phone_calls(sqlite_app: App) -> None:
    seen: list[str] = []
    for n, line in enumerate(CONSOLE_STEPS[:-2]):
        rows = sqlite_app.runtime.handle(Inbound("console", "c9", "c9", Event("text", f"q{n}", text=line)))
        seen += [r.payload["text"] for r in rows]
    assert any("Bolehkah petugas menelepon Anda" in t and "tetap kami kirim lewat chat ini" in t
               for t in seen), seen[-1]


def test_the_digest_judges_overdue_as_things_stood(app: App, clock: FakeClock) -> None:
    """A deadline later in the running week is not yet missed; a past week's figure does not
    change when the case is answered or closed afterwards."""
    now = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)  # Tuesday 13:00 WIB, week 2026-W49
    with app.factory() as db, db.begin():
        agency = db.scalars(select(Agency).where(Agency.slug == "disdukcapil")).one()
        db.add(Case(source_key="t:1", ticket="AAAA-0001", agency_id=agency.id, channel="telegram",
                    trigger="complaint", created_at=now - timedelta(hours=1), updated_at=now,
                    first_response_due=now + timedelta(hours=2), resolution_due=now + timedelta(days=9)))
        db.add(Case(source_key="t:2", ticket="AAAA-0002", agency_id=agency.id, channel="telegram",
                    trigger="complaint", created_at=now - timedelta(days=9), updated_at=now,
                    first_response_due=now - timedelta(days=8), resolution_due=now + timedelta(days=3),
                    first_response_at=now - timedelta(hours=2)))  # answered late, this week
    with app.factory() as db:
        agency = db.scalars(select(Agency).where(Agency.slug == "disdukcapil")).one()
        assert collect(db, agency, "2026-W49", now).complaints.overdue_cases == 0
        later = now + timedelta(hours=3)  # the first case's first response is now late
        assert collect(db, agency, "2026-W49", later).complaints.overdue_cases == 1
        # the week before: the second case was already past its first-response limit then,
        # and answering it this week does not rewrite that
        assert collect(db, agency, "2026-W48", now).complaints.overdue_cases == 1
