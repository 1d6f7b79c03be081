"""The per-message statements that bypass SQLAlchemy's execute store what the ORM reads back."""

from __future__ import annotations

from datetime import UTC, timedelta

from sqlalchemy import select

from bot.app import App
from bot.runtime.types import Inbound
from bot.storage.models import (
    Contact,
    ConversationSession,
    InboundEvent,
    OutboxMessage,
    SurveyAnswer,
    SurveyResponse,
)
from flows.machine.types import Event
from tests.conftest import FakeClock


def say(app: App, n: int, text: str) -> list[OutboxMessage]:
    return app.runtime.handle(Inbound("console", "w1", "w1", Event("text", f"e{n}", text=text),
                                      event_key=f"k{n}", display_name="Wulan"))


def test_values_written_on_the_driver_read_back_through_the_orm(app: App, clock: FakeClock) -> None:
    lines = ["/start", "1", "1", "1", "1", "2", "3"]  # consent, survey, agency, service, scores 2 and 3
    for n, line in enumerate(lines[:-1]):
        say(app, n, line)
    clock.advance(minutes=5)
    later = clock()
    rows = say(app, len(lines) - 1, lines[-1])
    assert rows and all(r.id is not None and r.status == "claimed" for r in rows)

    with app.factory() as db:
        contact = db.scalars(select(Contact).where(Contact.external_id == "w1")).one()
        assert contact.last_inbound_at == later and contact.last_inbound_at.tzinfo is UTC
        assert contact.consent_at is not None and contact.consent_at < later
        assert contact.unreachable_at is None and contact.display_name == "Wulan"
        event = db.scalars(select(InboundEvent).where(InboundEvent.event_key == "k6")).one()
        assert event.received_at == later
        session = db.get(ConversationSession, contact.id)
        assert session is not None and session.updated_at == later
        assert session.state["flow"] == "survey" and session.state["data"]["answers"] == {"1": 2, "2": 3}
        resp = db.scalars(select(SurveyResponse)).one()
        assert resp.contact_id == contact.id and resp.status == "partial" and resp.updated_at == later
        assert resp.started_at == later - timedelta(minutes=5)
        answers = db.scalars(select(SurveyAnswer).order_by(SurveyAnswer.element)).all()
        assert [(a.element, a.score) for a in answers] == [(1, 2), (2, 3)]
        stored = {r.id: r for r in db.scalars(select(OutboxMessage).where(
            OutboxMessage.id.in_([r.id for r in rows])))}
        reminder = db.scalars(select(OutboxMessage).where(
            OutboxMessage.dedupe_key == f"survey_reminder:{resp.id}")).one()
        assert app.runtime.survey_reminder is not None
        assert reminder.status == "pending" and reminder.urgent is False
        assert reminder.due_at == later + app.runtime.survey_reminder  # pushed back by the answer
        assert reminder.agency_id == resp.agency_id and reminder.ref == f"survey:{resp.id}"
        assert "KTP Elektronik" in reminder.payload["text"]
        assert [c["id"] for c in reminder.payload["choices"]] == [
            f"fu:s:{resp.id}:resume", f"fu:s:{resp.id}:stop"]
        for row in rows:  # what the channel sends is what was committed
            assert stored[row.id].payload == row.payload and stored[row.id].due_at == later
            assert stored[row.id].contact_id == contact.id and stored[row.id].chat_id == "w1"


def test_back_prunes_undone_answers_and_a_redelivery_changes_nothing(app: App) -> None:
    # three answers "1" (score 1), back twice, then "4" (score 4) for element 2
    for n, line in enumerate(["/start", "1", "1", "1", "1", "1", "1", "1", "/kembali", "/kembali", "4"]):
        say(app, n, line)
    assert say(app, 10, "4") == []  # the same delivery again
    with app.factory() as db:
        answers = db.scalars(select(SurveyAnswer).order_by(SurveyAnswer.element)).all()
        assert [(a.element, a.score) for a in answers] == [(1, 1), (2, 4)]  # element 3 is gone
