"""Heads hear of passed limits once per tick and agency, in one message listing every case,
not one message per case (a busy morning can pass many limits at the same moment)."""

from __future__ import annotations

from sqlalchemy import select

from bot.app import App
from bot.desk import deadlines
from bot.i18n import TEXTS
from bot.storage.models import OutboxMessage
from tests.conftest import FakeClock
from tests.desk_support import member, open_case, person


def to_head(app: App, chat_id: str) -> list[str]:
    with app.factory() as db:
        return [str(r.payload["text"]) for r in db.scalars(
            select(OutboxMessage).where(OutboxMessage.chat_id == chat_id).order_by(OutboxMessage.id))]


def test_one_alert_per_head_for_a_ticks_breaches(app: App, clock: FakeClock) -> None:
    head, _ = member(app, "Kepala", role="head")
    tickets = [open_case(app, person(app, f"Warga {i}")).ticket for i in range(3)]
    other = open_case(app, person(app, "Warga lain"), slug="bpprd").ticket  # another agency
    clock.advance(days=40)  # past both limits (14 working days to resolve)
    with app.factory() as db, db.begin():
        assert deadlines.sla_tick(db, clock()) == 8  # first response and resolution, 4 cases
    [alert] = to_head(app, head.external_id)
    lines = alert.split("\n")
    assert lines[0] == TEXTS("id", "case.overdue.many", count=6)
    assert all(sum(t in line for line in lines) == 2 for t in tickets)  # both limits of each case
    assert other not in alert
    with app.factory() as db, db.begin():
        assert deadlines.sla_tick(db, clock()) == 0  # flagged once: nothing more
    assert len(to_head(app, head.external_id)) == 1


def test_a_single_breach_is_its_own_message(app: App, clock: FakeClock) -> None:
    head, _ = member(app, "Kepala", role="head")
    case = open_case(app, person(app, "Warga"))
    clock.advance(days=2)
    with app.factory() as db, db.begin():
        assert deadlines.sla_tick(db, clock()) == 1  # the first-response limit only
    [alert] = to_head(app, head.external_id)
    assert alert.startswith("⏰ Kasus") and case.ticket in alert and "\n" not in alert
