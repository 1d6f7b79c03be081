"""Reopening a case is one rule, whoever asks: the resident ("not solved yet"), staff on
Telegram ("Buka kembali" on the card) or staff on the web desk. Each path leaves the case in
the same state: no longer resolved, closed, rated or a duplicate, with a new first-response
limit and its resolution limit kept."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.app import App
from bot.desk import cases, moves, rating
from bot.storage.models import Case, StaffMember
from tests.conftest import FakeClock
from tests.desk_support import get_case, member, open_case, person

FIELDS = ("status", "resolved_at", "closed_at", "rating", "duplicate_of", "first_response_at",
          "first_overdue_at")


def _resolved_and_rated(app: App, clock: FakeClock, member_id: int) -> tuple[int, object]:
    resident = person(app, "Siti")
    case = open_case(app, resident)
    with app.factory() as db, db.begin():
        row = db.get(Case, case.id)
        assert row is not None
        cases.set_status(db, row, "open", "test", None, clock())
        row.assignee_id = member_id
        clock.advance(days=2)
        cases.set_status(db, row, "resolved", "test", None, clock())
        row.rating = 2
        row.first_overdue_at = clock()
        due = row.resolution_due
    clock.advance(hours=1)
    return case.id, due


def _reopen(app: App, clock: FakeClock, path: str) -> Case:
    contact, staff_member = member(app, f"Budi-{path}")
    case_id, resolution_due = _resolved_and_rated(app, clock, staff_member.id)
    now = clock()
    with app.factory() as db, db.begin():
        case = db.get(Case, case_id)
        assert case is not None
        if path == "resident":
            rating.not_solved(db, case, "id", now)
        else:
            cases.set_status(db, case, "closed", "test", None, now)
            if path == "telegram":
                out = cases.act(db, case_id, "reopen", channel="telegram", user_id=contact.external_id,
                                chat_id=contact.external_id, now=now, private=True)
            else:
                found = db.scalars(select(StaffMember).where(StaffMember.id == staff_member.id)).one()
                out = moves.reopen(db, case, found, now)
            assert out.ok
    reopened = get_case(app, case_id)
    assert reopened.resolution_due == resolution_due  # a late case stays late
    due = reopened.first_response_due
    assert due is not None and due.replace(tzinfo=None) > now.replace(tzinfo=None)  # a new limit
    return reopened


@pytest.mark.parametrize("path", ["telegram", "web"])
def test_staff_reopen_leaves_the_case_as_the_residents_reopen_does(app: App, clock: FakeClock,
                                                                    path: str) -> None:
    by_resident = _reopen(app, clock, "resident")
    by_staff = _reopen(app, clock, path)
    assert [getattr(by_staff, f) for f in FIELDS] == [getattr(by_resident, f) for f in FIELDS]
    assert by_staff.status == "reopened" and by_staff.rating is None and by_staff.first_response_at is None
