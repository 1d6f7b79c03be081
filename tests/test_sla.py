"""Working-time deadlines across weekends and Indonesia's three time zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.app import App
from bot.catalog import CatalogError, load_catalog, read_catalog
from bot.desk import cases, intake
from bot.storage.models import Agency
from bot.worktime import (
    OfficeHours,
    SlaConfigError,
    add_working_days,
    add_working_hours,
    is_overdue,
    policy_from_settings,
    working_seconds,
)

WIB, WITA, WIT = "Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura"


def local(tz: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(tz))  # type: ignore[arg-type, misc]


# 2026-11-27 is a Friday, 2026-11-30 a Monday.
@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        ((2026, 11, 27, 15, 0), 8, (2026, 11, 30, 15, 0)),  # Friday afternoon -> Monday
        ((2026, 11, 28, 10, 0), 2, (2026, 11, 30, 10, 0)),  # Saturday: counts from Monday 08:00
        ((2026, 11, 30, 6, 30), 1, (2026, 11, 30, 9, 0)),  # before opening
        ((2026, 11, 30, 17, 0), 1, (2026, 12, 1, 9, 0)),  # after closing
        ((2026, 11, 30, 15, 0), 1, (2026, 11, 30, 16, 0)),  # ends exactly at closing
        ((2026, 11, 27, 15, 30), 16.5, (2026, 12, 1, 16, 0)),  # Fri 0.5h, Mon 8h, Tue 8h
        ((2026, 11, 30, 9, 0), 0, (2026, 11, 30, 9, 0)),
    ],
)
@pytest.mark.parametrize("tz", [WIB, WITA, WIT])
def test_working_hours_in_every_zone(
    tz: str, start: tuple[int, ...], hours: float, due: tuple[int, ...]
) -> None:
    office = OfficeHours(tz=tz)
    got = add_working_hours(local(tz, *start), hours, office)
    assert got == local(tz, *due)
    assert got.tzinfo == UTC  # stored as UTC, shown locally


def test_same_wall_clock_rule_gives_different_instants_per_zone() -> None:
    start = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)  # Fri 14:00 WIB, 15:00 WITA, 16:00 WIT
    due = {tz: add_working_hours(start, 2, OfficeHours(tz=tz)) for tz in (WIB, WITA, WIT)}
    assert due[WIB] == local(WIB, 2026, 11, 27, 16, 0)  # 2 h left Friday until 16:00
    assert due[WITA] == local(WITA, 2026, 11, 30, 9, 0)  # 1 h Friday, 1 h Monday
    assert due[WIT] == local(WIT, 2026, 11, 30, 10, 0)  # WIT has already closed


def test_working_days_skip_weekends_and_holidays() -> None:
    office = OfficeHours(tz=WIB)
    wed = local(WIB, 2026, 11, 25, 10, 0)
    assert add_working_days(wed, 10, office) == local(WIB, 2026, 12, 9, 10, 0)
    assert add_working_days(local(WIB, 2026, 11, 27, 15, 0), 1, office) == local(WIB, 2026, 11, 30, 15, 0)
    christmas = OfficeHours(tz=WIB, holidays=frozenset({date(2026, 12, 25)}))
    thu = local(WIB, 2026, 12, 24, 12, 0)
    assert add_working_days(thu, 1, christmas) == local(WIB, 2026, 12, 28, 12, 0)


def test_custom_office_hours() -> None:
    office = OfficeHours(tz=WITA, open=time(7, 30), close=time(15, 30))
    assert add_working_hours(local(WITA, 2026, 11, 27, 15, 0), 1, office) == local(WITA, 2026, 11, 30, 8, 0)


def test_working_seconds_and_overdue_across_a_weekend() -> None:
    office = OfficeHours(tz=WIB)
    fri = local(WIB, 2026, 11, 27, 15, 0)
    mon = local(WIB, 2026, 11, 30, 9, 0)
    assert working_seconds(fri, mon, office) == 2 * 3600
    assert working_seconds(mon, fri, office) == 0
    due = add_working_hours(fri, 8, office)
    assert not is_overdue(due, local(WIB, 2026, 11, 29, 23, 0))  # Sunday night: still in time
    assert not is_overdue(due, due)
    assert is_overdue(due, local(WIB, 2026, 11, 30, 15, 1))
    assert not is_overdue(due, local(WIB, 2026, 12, 5, 0, 0), done_at=mon)  # answered in time
    assert not is_overdue(None, mon)


def test_policy_from_agency_settings() -> None:
    p = policy_from_settings(WIT, {"office_hours": "07:00-15:00", "sla_first_response_hours": 4,
                                   "sla_resolution_days": 3, "holidays": ["2026-12-25"]})
    assert p.hours.open == time(7) and p.hours.close == time(15)
    assert p.first_response_due(local(WIT, 2026, 11, 27, 14, 0)) == local(WIT, 2026, 11, 30, 10, 0)
    assert p.resolution_due(local(WIT, 2026, 11, 27, 14, 0)) == local(WIT, 2026, 12, 2, 14, 0)
    default = policy_from_settings(WIB, {})
    assert default.first_response_hours == 8 and default.resolution_days == 10


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"office_hours": "16:00-08:00"}, "open before"),
        ({"office_hours": "8-16"}, "office_hours"),
        ({"office_hours": "0800"}, "office_hours"),
        ({"sla_first_response_hours": "soon"}, "numbers"),
        ({"sla_resolution_days": 0}, "positive"),
        ({"holidays": ["25-12-2026"]}, "holidays"),
    ],
)
def test_bad_settings_name_the_problem(settings: dict[str, object], message: str) -> None:
    with pytest.raises(SlaConfigError, match=message):
        policy_from_settings(WIB, settings)


CATALOG = """
agencies:
  - slug: rsud
    name: RSUD Kabupaten Jayawijaya
    short_name: RSUD
    timezone: Asia/Jayapura
    sla: {sla}
    services:
      - code: rawat-jalan
        name: Rawat Jalan
"""


def test_catalog_sets_an_agencys_limits(sqlite_app: App, tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG.format(sla='{office_hours: "07:30-15:30", first_response_hours: 4, '
                                       'resolution_days: 5, holidays: [2026-12-25], escalate_survey: grade_d}'))
    with sqlite_app.factory() as db, db.begin():
        load_catalog(db, path)
        agency = db.scalars(select(Agency).where(Agency.slug == "rsud")).one()
        p = cases.policy(agency)
        assert intake.survey_rule(agency) == "grade_d"
    assert p.hours.tz == WIT and p.hours.open == time(7, 30) and date(2026, 12, 25) in p.hours.holidays
    assert p.first_response_due(local(WIT, 2026, 11, 27, 15, 0)) == local(WIT, 2026, 11, 30, 11, 0)


@pytest.mark.parametrize(
    ("sla", "message"),
    [('{office_hours: "16:00-08:00"}', "open before"), ("{first_response_hours: 0}", "first_response_hours"),
     ("{escalate_survey: never}", "escalate_survey"), ("{weekends: true}", "weekends")],
)
def test_catalog_refuses_bad_limits(tmp_path: Path, sla: str, message: str) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG.format(sla=sla))
    with pytest.raises(CatalogError, match=message):
        read_catalog(path)
