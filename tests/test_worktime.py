"""Working time with Indonesia's national calendar, office hours per weekday and local days.

Real zones (zoneinfo) and the real `holidays` package; no clock, no sleeps. Dates of 2026:
Nyepi Thursday 19 March with cuti bersama on Wednesday 18; Hari Raya Idul Fitri 1447 H on
Saturday 21 and Sunday 22 March with cuti bersama on Friday 20, Monday 23 and Tuesday 24;
Idul Adha Wednesday 27 May with cuti bersama on Thursday 28.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.app import App
from bot.catalog import CatalogError, read_catalog
from bot.desk import cases
from bot.storage.models import Agency
from bot.worktime import (
    OfficeHours,
    SlaConfigError,
    add_working_days,
    add_working_hours,
    national_days_off,
    parse_office_hours,
    policy_from_settings,
    working_seconds,
)

WIB, WITA, WIT = "Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura"
# The brief's example of a regency office: Friday shorter, with a break for Friday prayers.
FRIDAY_SHORT = {"mon-thu": "07:30-16:00", "fri": "07:30-11:30, 13:00-16:30"}


def local(tz: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(tz))  # type: ignore[arg-type, misc]


def national(tz: str = WIB, **kw: object) -> OfficeHours:
    """Default hours (08:00-16:00 Monday to Friday) with Indonesia's calendar."""
    return OfficeHours(tz=tz, national="ID", **kw)  # type: ignore[arg-type]


def test_idul_fitri_week_2026_as_the_package_gives_it() -> None:
    off = national_days_off("ID", 2026)
    public = national_days_off("ID", 2026, cuti_bersama=False)
    assert {date(2026, 3, 19), date(2026, 3, 21), date(2026, 3, 22)} <= public  # Nyepi, Idul Fitri
    cuti = {date(2026, 3, 18), date(2026, 3, 20), date(2026, 3, 23), date(2026, 3, 24)}
    assert cuti <= off and not cuti & public
    office = national()
    week = [date(2026, 3, 16) + timedelta(days=i) for i in range(10)]
    assert [d.day for d in week if office.is_workday(d)] == [16, 17, 25]
    # Filed on Tuesday afternoon: one office hour left, then nothing until Wednesday 25 March.
    assert add_working_hours(local(WIB, 2026, 3, 17, 15, 0), 8, office) == local(WIB, 2026, 3, 25, 15, 0)
    assert add_working_days(local(WIB, 2026, 3, 17, 15, 0), 1, office) == local(WIB, 2026, 3, 25, 15, 0)
    assert working_seconds(local(WIB, 2026, 3, 17, 16, 0), local(WIB, 2026, 3, 25, 8, 0), office) == 0


def test_a_cuti_bersama_day_is_skipped_unless_the_agency_works_on_it() -> None:
    filed = local(WIB, 2026, 5, 26, 15, 0)  # Tuesday before Idul Adha
    assert date(2026, 5, 28) in national_days_off("ID", 2026)
    assert date(2026, 5, 28) not in national_days_off("ID", 2026, cuti_bersama=False)
    # Wed 27 Idul Adha, Thu 28 cuti bersama: the remaining 7 hours fall on Friday.
    assert add_working_hours(filed, 8, national()) == local(WIB, 2026, 5, 29, 15, 0)
    # An office open on cuti bersama days (cuti_bersama=False) answers on Thursday.
    assert add_working_hours(filed, 8, national(cuti_bersama=False)) == local(WIB, 2026, 5, 28, 15, 0)
    # ...through the settings switch too, and national_holidays=False drops the calendar.
    open_on_cuti = policy_from_settings(WIB, {"cuti_bersama": False})
    assert open_on_cuti.first_response_due(filed) == local(WIB, 2026, 5, 28, 15, 0)
    no_calendar = policy_from_settings(WIB, {"national_holidays": False})
    assert no_calendar.first_response_due(filed) == local(WIB, 2026, 5, 27, 15, 0)


def test_a_friday_with_shorter_hours_and_a_break() -> None:
    office = OfficeHours(tz=WIB, week=parse_office_hours(FRIDAY_SHORT))
    assert office.open == time(7, 30) and office.close == time(16, 30)
    assert office.workdays == frozenset(range(5))
    fri = date(2026, 11, 27)
    assert working_seconds(local(WIB, 2026, 11, 27, 0, 0), local(WIB, 2026, 11, 28, 0, 0), office) == 7.5 * 3600
    assert working_seconds(local(WIB, 2026, 11, 26, 0, 0), local(WIB, 2026, 11, 27, 0, 0), office) == 8.5 * 3600
    assert [w[0].astimezone(ZoneInfo(WIB)).time() for w in office.windows(fri)] == [time(7, 30), time(13, 0)]
    # Across the prayer break: half an hour before it, half an hour after.
    assert add_working_hours(local(WIB, 2026, 11, 27, 11, 0), 1, office) == local(WIB, 2026, 11, 27, 13, 30)
    # Filed in the break: the count starts when the office opens again.
    assert add_working_hours(local(WIB, 2026, 11, 27, 12, 0), 1, office) == local(WIB, 2026, 11, 27, 14, 0)
    # Thursday to Friday: 1 h left on Thursday, 1 h on Friday morning.
    assert add_working_hours(local(WIB, 2026, 11, 26, 15, 0), 2, office) == local(WIB, 2026, 11, 27, 8, 30)
    # Friday 16:00 to Monday: the weekend is closed.
    assert add_working_hours(local(WIB, 2026, 11, 27, 16, 0), 1, office) == local(WIB, 2026, 11, 30, 8, 0)
    # Working days keep the wall clock; one that lands in the break or after closing is due
    # at the closing before it.
    thu = local(WIB, 2026, 11, 26, 15, 0)
    assert add_working_days(thu, 1, office) == local(WIB, 2026, 11, 27, 15, 0)
    assert add_working_days(local(WIB, 2026, 11, 26, 12, 0), 1, office) == local(WIB, 2026, 11, 27, 11, 30)
    assert add_working_days(local(WIB, 2026, 11, 26, 16, 0), 1, office) == local(WIB, 2026, 11, 27, 16, 0)
    assert add_working_days(local(WIB, 2026, 11, 27, 16, 30), 1, office) == local(WIB, 2026, 11, 30, 16, 0)
    # Outside office hours, one working day is the end of the next one (as before).
    assert add_working_days(local(WIB, 2026, 11, 28, 10, 0), 1, office) == local(WIB, 2026, 11, 30, 16, 0)
    # Half a day is half an average office day (8.3 h): 4 h 9 min from Monday 08:00.
    assert add_working_days(local(WIB, 2026, 11, 30, 8, 0), 0.5, office) == local(WIB, 2026, 11, 30, 12, 9)


@pytest.mark.parametrize(("tz", "utc_offset"), [(WIB, 7), (WITA, 8), (WIT, 9)])
def test_the_same_deadline_in_wib_wita_and_wit(tz: str, utc_offset: int) -> None:
    p = policy_from_settings(tz, {"office_hours": FRIDAY_SHORT})
    filed = local(tz, 2026, 3, 17, 9, 0)
    # Tuesday 09:00-16:00 is 7 h; Nyepi, Idul Fitri and their cuti bersama until Wednesday 25.
    due = p.first_response_due(filed)
    assert due == local(tz, 2026, 3, 25, 8, 30) and due.tzinfo == UTC
    assert due.hour == (8 - utc_offset) % 24 and due.minute == 30  # the same wall clock, its own zone
    # Ten working days: 25, 26, 27, 30, 31 March, 1, 2, (Good Friday 3), 6, 7, 8 April.
    assert p.resolution_due(filed) == local(tz, 2026, 4, 8, 9, 0)


def test_local_days_off_dates_and_yearly() -> None:
    # Hari Jadi Kabupaten Bungo, 19 October, is a Monday in 2026.
    p = policy_from_settings(WIB, {"holidays": ["10-19", "2026-11-02"]})
    assert p.first_response_due(local(WIB, 2026, 10, 16, 15, 0)) == local(WIB, 2026, 10, 20, 15, 0)
    assert p.first_response_due(local(WIB, 2027, 10, 18, 15, 0)) == local(WIB, 2027, 10, 20, 15, 0)
    assert p.first_response_due(local(WIB, 2026, 10, 30, 15, 0)) == local(WIB, 2026, 11, 3, 15, 0)
    assert not p.hours.is_workday(date(2028, 10, 19)) and p.hours.is_workday(date(2027, 11, 2))
    leap = OfficeHours(tz=WIB, yearly=frozenset({(2, 29)}))
    assert not leap.is_workday(date(2028, 2, 29)) and leap.is_workday(date(2027, 3, 1))


def test_the_calendar_is_cached_per_agency_and_year() -> None:
    office = national()
    assert office.days_off(2026) is office.days_off(2026)
    assert national().days_off(2026) is office.days_off(2026)  # the same calendar, another object
    assert national(cuti_bersama=False).days_off(2026) != office.days_off(2026)
    assert date(2027, 1, 1) in office.days_off(2027)  # a deadline across New Year builds 2027


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ({"fri": "13:00-11:30"}, "fri: office hours must open before they close"),
        ({"fri": "07:30-12:00, 11:30-16:30"}, "fri: office hours overlap"),
        ({"mon-fri": "08:00-16:00", "fri": "08:00-11:00"}, "fri is given twice"),
        ({"fri-mon": "08:00-16:00"}, "runs backwards"),
        ({"weekdays": "08:00-16:00"}, "unknown weekday"),
        ({"sat": "closed", "sun": "tutup"}, "no working day"),
        ({"mon": "7.30-16.00"}, "mon: not a HH:MM time"),
        ("08:00-25:00", "not a HH:MM time"),
        (["08:00-16:00"], "map of weekdays"),
    ],
)
def test_bad_office_hours_are_refused(hours: object, message: str) -> None:
    with pytest.raises(SlaConfigError, match=message):
        parse_office_hours(hours)
    with pytest.raises(SlaConfigError, match=f"office_hours: .*{message}"):
        policy_from_settings(WIB, {"office_hours": hours})


@pytest.mark.parametrize(
    ("settings", "message"),
    [({"holidays": ["19-10"]}, "holidays: not a date"), ({"holidays": "10-19"}, "holidays: expected a list"),
     ({"cuti_bersama": "no"}, "cuti_bersama: must be true or false"),
     ({"national_holidays": 0}, "national_holidays: must be true or false")],
)
def test_bad_calendar_settings_are_refused(settings: dict[str, object], message: str) -> None:
    with pytest.raises(SlaConfigError, match=message):
        policy_from_settings(WIB, settings)


CATALOG = """
{top}
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


@pytest.mark.parametrize(
    ("top", "sla", "where"),
    [
        ("", '{office_hours: {fri: "11:30-07:30"}}', "agency 'rsud': sla.office_hours: fri: office hours must open"),
        ("", '{office_hours: {mon-thu: "07:30-16:00", fri: [07:30-11:30, 11:00-16:30]}}',
         "agency 'rsud': sla.office_hours: fri: office hours overlap"),
        ("", '{office_hours: {senin-kamis: "07:30-16:00", jum: "07:30-11:00"}}',
         "agency 'rsud': sla.office_hours: unknown weekday 'jum'"),
        ("", '{office_hours: "pagi"}', "agency 'rsud': sla.office_hours: expected HH:MM-HH:MM"),
        ("", "{holidays: [13-01]}", "agency 'rsud': sla.holidays: not a date"),
        ("", "{cuti_bersama: sometimes}", "agency 'rsud': sla.cuti_bersama"),
        ('sla: {office_hours: "16:00-08:00"}', "{}", "sla.office_hours: office hours must open"),
        ("sla: {holidays: [02-30]}", "{}", "sla.holidays: not a date"),
    ],
)
def test_an_agency_whose_hours_are_bad_is_refused_at_catalog_load(
    tmp_path: Path, top: str, sla: str, where: str
) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG.format(top=top, sla=sla), encoding="utf-8")
    with pytest.raises(CatalogError) as err:
        read_catalog(path)
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"{path}: {where}"), text


def test_regency_sla_with_agency_overrides(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG.format(
        top='sla: {office_hours: {mon-thu: "07:30-16:00", fri: "07:30-11:30, 13:00-16:30"}, '
            'holidays: ["10-19"], first_response_hours: 4}',
        sla="{cuti_bersama: false, holidays: [2026-12-31], resolution_days: 5}"), encoding="utf-8")
    spec = read_catalog(path)
    settings = spec.sla_for(spec.agencies[0]).settings()
    assert settings["office_hours"] == {"mon": "07:30-16:00", "tue": "07:30-16:00", "wed": "07:30-16:00",
                                        "thu": "07:30-16:00", "fri": "07:30-11:30, 13:00-16:30"}
    assert settings["holidays"] == ["10-19", "2026-12-31"]
    assert settings["cuti_bersama"] is False and settings["national_holidays"] is True
    assert settings["sla_first_response_hours"] == 4 and settings["sla_resolution_days"] == 5


def test_17_march_2026_through_the_bundled_catalog(sqlite_app: App) -> None:
    """Measured before the national calendar: due on 18 March, a cuti bersama day."""
    with sqlite_app.factory() as db:
        agencies = {a.slug: a for a in db.scalars(select(Agency))}
        dukcapil, rsud = cases.policy(agencies["disdukcapil"]), cases.policy(agencies["rsud"])
    filed = local(WIB, 2026, 3, 17, 9, 0)
    # Bundled hours: Mon-Thu 07:30-12:00 and 13:00-16:00. Tuesday gives 6 h; the 7th and 8th
    # hour fall on Wednesday 25 March, after Nyepi, Idul Fitri and the cuti bersama days.
    assert dukcapil.first_response_due(filed) == local(WIB, 2026, 3, 25, 9, 30)
    assert dukcapil.resolution_due(filed) == local(WIB, 2026, 4, 8, 9, 0)
    # The hospital works on cuti bersama days: Wednesday 18 March is a working day there.
    assert rsud.first_response_due(filed) == local(WIB, 2026, 3, 18, 9, 30)
    # Hari Jadi Kabupaten Bungo (the catalog's regency-wide local day) applies to every agency.
    assert not dukcapil.hours.is_workday(date(2026, 10, 19))
    assert not rsud.hours.is_workday(date(2026, 10, 19))
