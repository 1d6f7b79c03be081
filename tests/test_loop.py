"""Closing the loop: a done follow-up-plan action tells the residents who rated it low, once."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, update

from bot.app import App
from bot.reports.loop import KIND_LOOP, close_loop, resolved_counts
from bot.reports.periodic import plan as store
from bot.storage.models import (
    Agency,
    Case,
    Complaint,
    Contact,
    OutboxMessage,
    PlanAction,
    Service,
    SurveyAnswer,
    SurveyResponse,
)
from tests.conftest import FakeClock
from tests.test_console_e2e import Chat
from tests.test_opendata import client
from tests.test_report_plan import register_head, say
from tests.test_resident_qa import COMPLAINT_TO_PHOTOS

_seq = itertools.count(1)
RATED = datetime(2026, 10, 15, 3, 0, tzinfo=UTC)  # Q4, before the action (created 23 Nov)


def resident(app: App, service: str, element: int, score: int, *, lang: str = "id",
             consent: bool = True, at: datetime = RATED) -> int:
    """A resident on Telegram who rated ``element`` of ``service`` with ``score`` (others 4)."""
    n = next(_seq)
    with app.factory() as db, db.begin():
        svc = db.scalars(select(Service).where(Service.code == service)).one()
        contact = Contact(channel="telegram", external_id=f"loop-{n}", language=lang, created_at=at,
                          consent_at=at if consent else None)
        db.add(contact)
        db.flush()
        resp = SurveyResponse(response_key=f"loop:{n}", agency_id=svc.agency_id, service_id=svc.id,
                              contact_id=contact.id, channel="telegram", status="complete",
                              started_at=at, completed_at=at, updated_at=at)
        resp.answers = [SurveyAnswer(agency_id=svc.agency_id, service_id=svc.id, element=e,
                                     score=score if e == element else 4, answered_at=at, counted_at=at)
                        for e in range(1, 10)]
        db.add(resp)
        return contact.id


def done_action(app: App, now: datetime, service: str | None = "ktp", element: int = 3,
                base: str | None = None, created: datetime | None = None) -> int:
    with app.factory() as db, db.begin():
        agency = db.scalars(select(Agency).where(Agency.slug == "disdukcapil")).one()
        sid = db.scalars(select(Service.id).where(Service.code == service)).one() if service else None
        action = store.add_action(db, agency.id, element, sid, "Tambah loket antrian pagi", "Kabid",
                                  date(2027, 3, 31), None, created or now)
        store.update_status(db, agency.id, action.id, "done", now, "Loket pagi dibuka sejak 20 November")
        db.flush()
        close_loop(db, action, now, base)
        return action.id


def loop_rows(app: App) -> list[OutboxMessage]:
    with app.factory() as db:
        return list(db.scalars(select(OutboxMessage).where(OutboxMessage.kind == KIND_LOOP)
                               .order_by(OutboxMessage.id)))


def test_the_low_raters_of_that_element_and_service_hear_once(app: App, clock: FakeClock) -> None:
    low = [resident(app, "ktp", 3, 1), resident(app, "ktp", 3, 2)]
    resident(app, "ktp", 3, 3)  # rated it fine
    resident(app, "ktp", 4, 1)  # another element
    resident(app, "kk", 3, 1)  # another service
    resident(app, "ktp", 3, 1, consent=False)  # never consented
    resident(app, "ktp", 3, 1, at=datetime(2026, 5, 1, tzinfo=UTC))  # long before the period
    erased = resident(app, "ktp", 3, 1)
    with app.factory() as db, db.begin():  # erased: the response keeps no contact
        db.execute(update(SurveyResponse).where(SurveyResponse.contact_id == erased).values(contact_id=None))
        db.delete(db.get(Contact, erased))
    action = done_action(app, clock(), base="https://prima.example.go.id/")
    rows = loop_rows(app)
    assert sorted(r.contact_id for r in rows if r.contact_id) == sorted(low)
    text = rows[0].payload["text"]
    assert "KTP" in text and "Loket pagi dibuka sejak 20 November" in text
    assert "https://prima.example.go.id/a/disdukcapil" in text
    assert rows[0].due_at == clock() and rows[0].status == "pending"
    # marking it done again sends nothing more
    with app.factory() as db, db.begin():
        a = db.get(PlanAction, action)
        assert a is not None
        store.update_status(db, a.agency_id, a.id, "done", clock() + timedelta(days=30), None)
        assert close_loop(db, a, clock() + timedelta(days=30), None) == 0
    assert len(loop_rows(app)) == 2


def test_at_most_one_a_week_all_services_english_and_quiet_hours(app: App, clock: FakeClock) -> None:
    en = resident(app, "kk", 5, 2, lang="en")
    done_action(app, clock(), service=None, element=5)
    done_action(app, clock() + timedelta(days=3), service=None, element=5)  # within the week
    rows = loop_rows(app)
    assert [r.contact_id for r in rows] == [en]
    text = rows[0].payload["text"]
    assert "Family Card (KK)" in text and "Thank you" in text and "http" not in text
    late = clock() + timedelta(days=8, hours=13)  # 22:00 WIB: waits for the morning
    done_action(app, late, service=None, element=5, created=clock())
    rows = loop_rows(app)
    assert len(rows) == 2 and rows[1].due_at == datetime(2026, 12, 2, 0, 0, tzinfo=UTC)


def test_done_from_the_chat_tells_the_residents(app: App, clock: FakeClock) -> None:
    low = resident(app, "ktp", 3, 1)
    register_head(app, clock)
    for text in ("/rencana", "1", "3", "2", "Tambah loket antrian pagi", "Kabid", "31-03-2027", "1"):
        say(app, "kepala-1", text)
    for text in ("/rencana", "2", "2"):
        say(app, "kepala-1", text)
    say(app, "kepala-1", "Loket pagi dibuka")
    rows = loop_rows(app)
    assert [r.contact_id for r in rows] == [low]
    assert "Terima kasih" in rows[0].payload["text"] and "Loket pagi dibuka" in rows[0].payload["text"]


def test_resolved_counts(app: App, clock: FakeClock) -> None:
    now = clock()
    with app.factory() as db, db.begin():
        agency = db.scalars(select(Agency).where(Agency.slug == "disdukcapil")).one()
        svc = db.scalars(select(Service).where(Service.code == "ktp")).one()
        for i, status in enumerate(("resolved", "closed", "new")):
            db.add(Complaint(ticket=f"T-{i}", agency_id=agency.id, service_id=svc.id, channel="telegram", description="x",
                             category="other", source_key=f"loop-c-{i}",
                             status=status, created_at=now - timedelta(days=3), updated_at=now,
                             resolved_at=now - timedelta(days=1) if status != "new" else None))
        db.flush()
        for i, days in enumerate((2, 0)):  # the first within a 2-day deadline, the second late
            c = db.scalars(select(Complaint).where(Complaint.ticket == f"T-{i}")).one()
            db.add(Case(source_key=f"loop-case-{i}", ticket=c.ticket, agency_id=agency.id,
                        service_id=svc.id, complaint_id=c.id, channel="telegram", trigger="serious",
                        created_at=c.created_at, updated_at=now, status="resolved",
                        first_response_due=c.created_at + timedelta(hours=4),
                        resolution_due=c.created_at + timedelta(days=days)))
        db.flush()
        counts = resolved_counts(db, [agency.id], now - timedelta(days=7), now)
    assert counts[agency.id] == (2, 1)


@pytest.mark.parametrize(("answer", "shown"), [("1", True), ("2", False), ("Lewati", False)])
async def test_the_location_question_decides_the_open311_coordinates(
        app: App, answer: str, shown: bool) -> None:
    chat = Chat(app)
    chat.say(*COMPLAINT_TO_PHOTOS, "Lewati")
    asked = chat.say("#lokasi -1.4852,102.119")
    assert "Boleh lokasi ini ditampilkan (tanpa nama) di peta publik laporan?" in asked
    summary = chat.say(answer, "2", "1")  # then: not confidential, may contact
    assert "Kirim" in summary
    chat.say("1")
    with app.factory() as db:
        complaint = db.scalars(select(Complaint)).one()
        assert complaint.attachments["location_public"] is shown
    async with client(app) as http:
        (listed,) = await (await http.get("/open311/v2/requests.json")).json()
    assert (listed["lat"], listed["long"]) == ((-1.4852, 102.119) if shown else (None, None))


def test_no_location_no_question(app: App) -> None:
    chat = Chat(app)
    chat.say(*COMPLAINT_TO_PHOTOS, "Lewati")
    assert "peta publik" not in chat.say("Lewati")
