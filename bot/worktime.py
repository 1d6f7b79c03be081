"""Working-time arithmetic for case deadlines (pure: no clock reads, no database).

Agencies promise answers in *working* time: inside the agency's office hours, which may differ
per weekday and have breaks (Mon-Thu 07:30-12:00 and 13:00-16:00, Fri 07:30-11:30 and
13:00-16:30 for Friday prayers; 08:00-16:00 Monday to Friday by default), and never on a day
off. Days off are the national calendar of Indonesia, public holidays and cuti bersama, from the
`holidays` package (an agency that works on cuti bersama leaves them out), plus local days from
the catalog: one-off dates or a yearly MM-DD such as a regency's anniversary. A case filed on
Friday at 15:00 with an eight-hour first-response limit is due on Monday, not on Saturday; one
filed on Tuesday 17 March 2026 is due after Nyepi and the Idul Fitri week.

Times go in and come out as aware UTC; the office day is computed in the agency's own zone
(WIB, WITA, WIT) with zoneinfo, so the same rule holds in Jakarta, Makassar and Jayapura.

A limit in working *hours* counts office time. A limit in working *days* counts days: N working
days after a moment is the same wall-clock time N working days later, or that day's closing
time when the office has closed by then (a moment outside office hours counts from the last
closing before it, so one working day after Monday 17:00 is the end of Tuesday).

The calendar of days off is built once per (agency calendar, year) and cached, so a deadline
costs a few microseconds. One module on purpose (a little over 400 lines): the calendar, the
arithmetic over it and the parsing of the catalog's settings that feed them change together.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays as national_calendar

DEFAULT_OPEN = time(8, 0)
DEFAULT_CLOSE = time(16, 0)
DEFAULT_OFFICE_HOURS = "08:00-16:00"
DEFAULT_FIRST_RESPONSE_HOURS = 8.0  # one office day
DEFAULT_RESOLUTION_DAYS = 10  # two working weeks, about the 14 calendar days of the digest
DEFAULT_COUNTRY = "ID"  # the national calendar every agency follows unless switched off
WORKDAYS = frozenset({0, 1, 2, 3, 4})  # Monday..Friday
UTC_ZONE = ZoneInfo("UTC")
MAX_DAYS_SCANNED = 3700  # ten years of holidays cannot stall the loop
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_KEYS = {**{name: i for i, name in enumerate(DAY_NAMES)},
             **{name: i for i, name in enumerate(("senin", "selasa", "rabu", "kamis", "jumat",
                                                  "sabtu", "minggu"))}}
CLOSED = frozenset({"closed", "tutup", "libur", "-", ""})
_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$")
_YEARLY = re.compile(r"^(\d{2})-(\d{2})$")

Window = tuple[time, time]
Week = tuple[tuple[Window, ...], ...]  # seven days, Monday first; () = closed


class SlaConfigError(ValueError):
    """A bad SLA setting, with the setting named."""


# ---------------------------------------------------------------- the calendar of days off


@lru_cache(maxsize=256)
def national_days_off(country: str, year: int, cuti_bersama: bool = True) -> frozenset[date]:
    """Public holidays of ``country`` in ``year``, plus cuti bersama (the package's "government"
    category for Indonesia) unless ``cuti_bersama`` is false."""
    categories = ("public", "government") if cuti_bersama else ("public",)
    return frozenset(national_calendar.country_holidays(country, years=year, categories=categories))


@lru_cache(maxsize=1024)
def _days_off(country: str | None, cuti_bersama: bool, dates: frozenset[date],
              yearly: frozenset[tuple[int, int]], year: int) -> frozenset[date]:
    """Every day off of one agency's calendar in one year (cached per calendar and year)."""
    off = set(national_days_off(country, year, cuti_bersama)) if country else set()
    off.update(d for d in dates if d.year == year)
    for month, day in yearly:
        if month == 2 and day == 29 and not (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)):
            continue  # a 29 February anniversary has no day off in a common year
        off.add(date(year, month, day))
    return frozenset(off)


# ---------------------------------------------------------------- office hours


def _check_day(windows: Iterable[Window], where: str) -> None:
    """Each window opens before it closes, and the windows of a day follow each other."""
    last: time | None = None
    for opens, closes in windows:
        if opens >= closes:
            raise SlaConfigError(f"{where}office hours must open before they close: "
                                 f"{opens:%H:%M}-{closes:%H:%M}")
        if last is not None and opens < last:
            raise SlaConfigError(f"{where}office hours overlap or are out of order at {opens:%H:%M}")
        last = closes


@dataclass(frozen=True)
class OfficeHours:
    """When an agency works: its zone, its hours per weekday and its days off.

    ``week`` gives the windows of each weekday (Monday first; a break is a gap between two
    windows); without it, ``open``-``close`` on ``workdays``. With a ``week``, ``open``,
    ``close`` and ``workdays`` become its summary (earliest opening, latest closing, days with
    hours). Days off: ``holidays`` (dates), ``yearly`` ((month, day) pairs) and, when
    ``national`` names a country, its national calendar, with cuti bersama unless
    ``cuti_bersama`` is false.
    """

    tz: str = "Asia/Jakarta"
    open: time = DEFAULT_OPEN
    close: time = DEFAULT_CLOSE
    workdays: frozenset[int] = WORKDAYS
    holidays: frozenset[date] = field(default_factory=frozenset)
    week: Week = ()
    yearly: frozenset[tuple[int, int]] = field(default_factory=frozenset)
    national: str | None = None
    cuti_bersama: bool = True
    _off: dict[int, frozenset[date]] = field(default_factory=dict, init=False, repr=False,
                                             compare=False, hash=False)
    _zone: ZoneInfo = field(default=UTC_ZONE, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not self.week:
            _check_day([(self.open, self.close)], "")
            if not self.workdays:
                raise SlaConfigError("an agency needs at least one working day")
            object.__setattr__(self, "week", tuple(((self.open, self.close),) if d in self.workdays
                                                    else () for d in range(7)))
        else:
            if len(self.week) != 7:
                raise SlaConfigError("office hours need seven weekdays, Monday first")
            for name, windows in zip(DAY_NAMES, self.week, strict=True):
                _check_day(windows, f"{name}: ")
            if not any(self.week):
                raise SlaConfigError("an agency needs at least one working day")
            object.__setattr__(self, "open", min(w[0][0] for w in self.week if w))
            object.__setattr__(self, "close", max(w[-1][1] for w in self.week if w))
            object.__setattr__(self, "workdays", frozenset(i for i, w in enumerate(self.week) if w))
        object.__setattr__(self, "_zone", ZoneInfo(self.tz))  # raises for an unknown zone

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    @property
    def day_seconds(self) -> float:
        """The average office day: a fraction of a working day is that part of it."""
        days = [sum(_seconds(o, c) for o, c in w) for w in self.week if w]
        return sum(days) / len(days)

    def days_off(self, year: int) -> frozenset[date]:
        """National and local days off in ``year``."""
        off = self._off.get(year)
        if off is None:
            off = _days_off(self.national, self.cuti_bersama, self.holidays, self.yearly, year)
            self._off[year] = off
        return off

    def is_workday(self, day: date) -> bool:
        return bool(self.week[day.weekday()]) and day not in self.days_off(day.year)

    def windows(self, day: date) -> list[tuple[datetime, datetime]]:
        """The office windows of ``day`` (whatever its weekday) as aware UTC datetimes."""
        zone = self._zone
        return [(datetime.combine(day, o, tzinfo=zone).astimezone(UTC),
                 datetime.combine(day, c, tzinfo=zone).astimezone(UTC))
                for o, c in self.week[day.weekday()]]


def _seconds(opens: time, closes: time) -> float:
    today = date(2000, 1, 3)
    return (datetime.combine(today, closes) - datetime.combine(today, opens)).total_seconds()


@dataclass(frozen=True)
class SlaPolicy:
    """An agency's time limits: first response in working hours, resolution in working days."""

    hours: OfficeHours = field(default_factory=OfficeHours)
    first_response_hours: float = DEFAULT_FIRST_RESPONSE_HOURS
    resolution_days: float = DEFAULT_RESOLUTION_DAYS

    def first_response_due(self, start: datetime) -> datetime:
        return add_working_hours(start, self.first_response_hours, self.hours)

    def resolution_due(self, start: datetime) -> datetime:
        return add_working_days(start, self.resolution_days, self.hours)


# ---------------------------------------------------------------- arithmetic


def _aware(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError("naive datetime given; pass an aware datetime")
    return when.astimezone(UTC)


def add_working_hours(start: datetime, hours: float, office: OfficeHours) -> datetime:
    """``start`` plus ``hours`` of office time; outside office hours the count starts at opening."""
    if hours < 0:
        raise ValueError("hours must not be negative")
    start = _aware(start)
    remaining = timedelta(hours=hours)
    day = start.astimezone(office.zone).date()
    for _ in range(MAX_DAYS_SCANNED):
        if office.is_workday(day):
            for opens, closes in office.windows(day):
                begin = max(start, opens)
                if begin < closes:
                    if begin + remaining <= closes:
                        return begin + remaining
                    remaining -= closes - begin
        day += timedelta(days=1)
    raise ValueError("no working time found within ten years; check the office hours")


def _last_office_instant(start: datetime, office: OfficeHours) -> datetime:
    """``start`` when the office is open then, else the last closing before it."""
    day = start.astimezone(office.zone).date()
    for _ in range(MAX_DAYS_SCANNED):
        if office.is_workday(day):
            for opens, closes in reversed(office.windows(day)):
                if opens <= start <= closes:
                    return start
                if closes < start:
                    return closes
        day -= timedelta(days=1)
    raise ValueError("no working time found within ten years; check the office hours")


def add_working_days(start: datetime, days: float, office: OfficeHours) -> datetime:
    """The same wall-clock time ``days`` working days after ``start`` (see the module docstring);
    a fraction of a day adds that part of an average office day in working hours."""
    if days < 0:
        raise ValueError("days must not be negative")
    start = _aware(start)
    whole = int(days)
    extra = (days - whole) * office.day_seconds / 3600
    if whole == 0:
        return add_working_hours(start, extra, office)
    local = _last_office_instant(start, office).astimezone(office.zone)
    day, wall = local.date(), local.timetz()
    for _ in range(MAX_DAYS_SCANNED):
        day += timedelta(days=1)
        if office.is_workday(day):
            whole -= 1
            if whole == 0:
                break
    else:
        raise ValueError("no working time found within ten years; check the office hours")
    at = datetime.combine(day, wall).astimezone(UTC)
    windows = office.windows(day)
    due = windows[0][0]  # before that day's opening: the opening
    for opens, closes in windows:
        if opens <= at <= closes:
            due = at
            break
        if closes < at:
            due = closes  # after closing or in a break: the closing before it
    return add_working_hours(due, extra, office) if extra else due


def working_seconds(start: datetime, end: datetime, office: OfficeHours) -> float:
    """Office time between two instants (0 when ``end`` is not after ``start``)."""
    start, end = _aware(start), _aware(end)
    if end <= start:
        return 0.0
    total = 0.0
    day = start.astimezone(office.zone).date()
    last = end.astimezone(office.zone).date()
    while day <= last:
        if office.is_workday(day):
            for opens, closes in office.windows(day):
                lo, hi = max(start, opens), min(end, closes)
                if hi > lo:
                    total += (hi - lo).total_seconds()
        day += timedelta(days=1)
    return total


def is_overdue(due: datetime | None, now: datetime, done_at: datetime | None = None) -> bool:
    """A limit is broken when it passed before the step was done (or is still not done)."""
    if due is None:
        return False
    return (done_at or _aware(now)) > due


# ---------------------------------------------------------------- settings


def _hhmm(value: str) -> time:
    match = _HHMM.match(value.strip())
    try:
        if match is None:
            raise ValueError
        return time(int(match[1]), int(match[2]))
    except ValueError:
        raise SlaConfigError(f"not a HH:MM time: {value.strip()!r}") from None


def parse_windows(text: str, where: str = "") -> tuple[Window, ...]:
    """``"07:30-11:30, 13:00-16:30"`` -> two windows; ``"closed"`` (or "tutup") -> none."""
    if text.strip().lower() in CLOSED:
        return ()
    windows = []
    for part in text.split(","):
        if part.count("-") != 1:
            raise SlaConfigError(f"{where}expected HH:MM-HH:MM, got {part.strip()!r}")
        a, b = part.split("-")
        try:
            windows.append((_hhmm(a), _hhmm(b)))
        except SlaConfigError as exc:
            raise SlaConfigError(f"{where}{exc}") from None
    _check_day(windows, where)
    return tuple(windows)


def _day_range(key: object) -> list[int]:
    """``"fri"`` -> [4]; ``"mon-thu"`` -> [0, 1, 2, 3] (Indonesian names work too)."""
    text = str(key).strip().lower()
    ends = text.split("-")
    if len(ends) > 2 or any(end.strip() not in _DAY_KEYS for end in ends):
        raise SlaConfigError(f"unknown weekday {key!r} (use mon..sun or a range such as mon-thu)")
    first, last = _DAY_KEYS[ends[0].strip()], _DAY_KEYS[ends[-1].strip()]
    if last < first:
        raise SlaConfigError(f"weekday range {key!r} runs backwards (write it Monday first)")
    return list(range(first, last + 1))


def parse_office_hours(value: object) -> Week:
    """Office hours as the catalog writes them, into seven days of windows.

    A string is the hours of Monday to Friday (``"08:00-16:00"``, or with a break
    ``"07:30-12:00, 13:00-16:00"``). A mapping gives weekdays or ranges of them:
    ``{"mon-thu": "07:30-16:00", "fri": "07:30-11:30, 13:00-16:30"}``; days left out are closed.
    """
    if isinstance(value, str):
        day = parse_windows(value)
        if not day:
            raise SlaConfigError("no working time on Monday to Friday")
        return tuple(day if d in WORKDAYS else () for d in range(7))
    if isinstance(value, Mapping):
        week: list[tuple[Window, ...] | None] = [None] * 7
        for key, spec in value.items():
            days = _day_range(key)
            if isinstance(spec, list | tuple):
                spec = ", ".join(str(s) for s in spec)
            windows = parse_windows("closed" if spec is None else str(spec), f"{key}: ")
            for d in days:
                if week[d] is not None:
                    raise SlaConfigError(f"{DAY_NAMES[d]} is given twice")
                week[d] = windows
        result = tuple(w or () for w in week)
        if not any(result):
            raise SlaConfigError("no working day in the week")
        return result
    raise SlaConfigError(f'expected "HH:MM-HH:MM" or a map of weekdays, got {type(value).__name__}')


def format_office_hours(week: Week) -> dict[str, str]:
    """The canonical mapping of a week (open days only): ``{"fri": "07:30-11:30, 13:00-16:30"}``."""
    return {DAY_NAMES[d]: ", ".join(f"{o:%H:%M}-{c:%H:%M}" for o, c in w)
            for d, w in enumerate(week) if w}


def parse_day_off(value: object) -> date | tuple[int, int]:
    """A date (``2026-12-25``) or a yearly day (``"10-19"``, month first) from the catalog."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    text = str(value).strip()
    yearly = _YEARLY.match(text)
    try:
        if yearly:
            date(2000, int(yearly[1]), int(yearly[2]))  # a leap year: 02-29 is allowed
            return int(yearly[1]), int(yearly[2])
        if len(text) == 10:
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise SlaConfigError(f"not a date YYYY-MM-DD or a yearly MM-DD: {text!r}")


def parse_days_off(values: object) -> tuple[frozenset[date], frozenset[tuple[int, int]]]:
    """A list of local days off into (dates, yearly (month, day) pairs)."""
    if values is None:
        return frozenset(), frozenset()
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise SlaConfigError("expected a list of dates")
    dates: set[date] = set()
    yearly: set[tuple[int, int]] = set()
    for value in values:
        day = parse_day_off(value)
        if isinstance(day, date):
            dates.add(day)
        else:
            yearly.add(day)
    return frozenset(dates), frozenset(yearly)


def _switch(settings: Mapping[str, Any], key: str) -> bool:
    value = settings.get(key, True)
    if not isinstance(value, bool):
        raise SlaConfigError(f"{key}: must be true or false, got {value!r}")
    return value


def policy_from_settings(tz: str, settings: Mapping[str, Any] | None) -> SlaPolicy:
    """Read an agency's ``settings`` JSON: ``office_hours`` (a string or a map of weekdays, see
    :func:`parse_office_hours`), ``sla_first_response_hours``, ``sla_resolution_days``,
    ``holidays`` (local days: ["2026-12-25", "10-19"]), ``national_holidays`` and
    ``cuti_bersama`` (both true unless set false)."""
    s = settings or {}
    try:
        week = parse_office_hours(s.get("office_hours") or DEFAULT_OFFICE_HOURS)
    except SlaConfigError as exc:
        raise SlaConfigError(f"office_hours: {exc}") from None
    try:
        dates, yearly = parse_days_off(s.get("holidays"))
    except SlaConfigError as exc:
        raise SlaConfigError(f"holidays: {exc}") from None
    office = OfficeHours(tz=tz, week=week, holidays=dates, yearly=yearly,
                         national=DEFAULT_COUNTRY if _switch(s, "national_holidays") else None,
                         cuti_bersama=_switch(s, "cuti_bersama"))
    try:
        first = float(s.get("sla_first_response_hours", DEFAULT_FIRST_RESPONSE_HOURS))
        resolution = float(s.get("sla_resolution_days", DEFAULT_RESOLUTION_DAYS))
    except (TypeError, ValueError):
        raise SlaConfigError("sla_first_response_hours / sla_resolution_days must be numbers") from None
    if first <= 0 or resolution <= 0:
        raise SlaConfigError("SLA limits must be positive")
    return SlaPolicy(office, first, resolution)
