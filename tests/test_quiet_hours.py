"""Quiet hours in the three Indonesian time zones, when scheduling and when dispatching."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from bot.app import App
from bot.outbox.followups import in_quiet_hours, quiet_adjust
from bot.storage.models import Agency
from tests.conftest import FakeClock
from tests.outbox_support import RecordingSender, add_rows, dispatcher, rows_by_marker

ZONES = ["Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura"]  # WIB +7, WITA +8, WIT +9


def local(tz: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(tz))  # type: ignore[misc, arg-type]


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize(
    ("due", "expected"),
    [
        ((2026, 11, 23, 20, 59), (2026, 11, 23, 20, 59)),  # before quiet hours: unchanged
        ((2026, 11, 23, 21, 0), (2026, 11, 24, 7, 0)),  # 21:00 sharp: next morning
        ((2026, 11, 23, 23, 30), (2026, 11, 24, 7, 0)),
        ((2026, 11, 24, 0, 15), (2026, 11, 24, 7, 0)),  # after midnight: this morning
        ((2026, 11, 24, 6, 59), (2026, 11, 24, 7, 0)),
        ((2026, 11, 24, 7, 0), (2026, 11, 24, 7, 0)),  # 07:00 is awake
        ((2026, 11, 24, 12, 0), (2026, 11, 24, 12, 0)),
    ],
)
def test_quiet_adjust_in_local_time(tz: str, due: tuple[int, ...], expected: tuple[int, ...]) -> None:
    moved = quiet_adjust(local(tz, *due).astimezone(UTC), tz)
    assert moved.tzinfo is not None
    assert moved == local(tz, *expected)
    assert moved.astimezone(ZoneInfo(tz)).hour == expected[3]


def test_same_utc_instant_is_quiet_in_one_zone_and_not_another() -> None:
    instant = datetime(2026, 11, 23, 13, 30, tzinfo=UTC)  # 20:30 WIB, 21:30 WITA, 22:30 WIT
    assert [in_quiet_hours(instant, tz) for tz in ZONES] == [False, True, True]
    moved = [quiet_adjust(instant, tz) for tz in ZONES]
    assert moved[0] == instant
    assert moved[1] == datetime(2026, 11, 23, 23, 0, tzinfo=UTC)  # 07:00 WITA
    assert moved[2] == datetime(2026, 11, 23, 22, 0, tzinfo=UTC)  # 07:00 WIT


def test_custom_and_daytime_windows() -> None:
    tz = "Asia/Makassar"
    assert quiet_adjust(local(tz, 2026, 11, 23, 20, 0), tz, "19:30", "08:00") == local(tz, 2026, 11, 24, 8, 0)
    assert quiet_adjust(local(tz, 2026, 11, 23, 12, 30), tz, "12:00", "13:00") == local(tz, 2026, 11, 23, 13, 0)
    assert quiet_adjust(local(tz, 2026, 11, 23, 23, 0), tz, "00:00", "00:00") == local(tz, 2026, 11, 23, 23, 0)
    with pytest.raises(ValueError, match="HH:MM"):
        quiet_adjust(local(tz, 2026, 11, 23, 23, 0), tz, "9pm", "07:00")


@pytest.mark.parametrize("tz", ZONES)
async def test_dispatcher_holds_non_urgent_rows_until_morning(
    sqlite_app: App, clock: FakeClock, tz: str
) -> None:
    app = sqlite_app
    """Rows due at 22:00 local (e.g. the bot was down): non-urgent ones wait, urgent ones go."""
    with app.factory() as db, db.begin():
        agency = db.scalars(select(Agency).order_by(Agency.id)).first()
        assert agency is not None
        db.execute(update(Agency).where(Agency.id == agency.id).values(timezone=tz))
        agency_id = agency.id
    clock.now = local(tz, 2026, 11, 23, 22, 0).astimezone(UTC)
    add_rows(app.factory, 4, lambda i: clock.now - timedelta(minutes=1), clock.now,
             agency_id=agency_id, urgent=False)
    add_rows(app.factory, 1, lambda i: clock.now - timedelta(minutes=1), clock.now,
             agency_id=agency_id, urgent=True, prefix="u")
    sender = RecordingSender(clock=clock)
    d = dispatcher(app.factory, sender, clock)
    stats = await d.drain()
    assert stats.deferred == 4 and sender.counts() == {"u0": 1}  # only the urgent row
    morning = local(tz, 2026, 11, 24, 7, 0)
    rows = rows_by_marker(app.factory)
    assert sorted(r.due_at for r in rows.values() if not r.urgent) == [morning] * 4
    clock.now = morning - timedelta(seconds=1)
    await d.drain()
    assert len(sender.delivered) == 1
    clock.now = morning
    await d.drain()
    assert len(sender.delivered) == 5
    assert all(when is not None and when.astimezone(ZoneInfo(tz)).hour == 7
               for _, m, when in sender.delivered[1:])
