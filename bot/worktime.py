"""Working-time arithmetic for case deadlines (pure: no clock reads, no database).

Agencies promise answers in *working* time: Monday to Friday, inside local office hours
(08:00-16:00 by default, configurable per agency). A case filed on Friday at 15:00 with an
eight-hour first-response limit is due on Monday at 15:00, not on Saturday. Times go in and
come out as aware UTC; the office day is computed in the agency's own zone (WIB, WITA, WIT)
with zoneinfo, so the same rule holds in Jakarta, Makassar and Jayapura.

A limit in working *days* is the same as that many full office days of working hours: one
working day after Friday 15:00 is Monday 15:00.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

DEFAULT_OPEN = time(8, 0)
DEFAULT_CLOSE = time(16, 0)
DEFAULT_FIRST_RESPONSE_HOURS = 8.0  # one office day
DEFAULT_RESOLUTION_DAYS = 10  # two working weeks, about the 14 calendar days of the digest
WORKDAYS = frozenset({0, 1, 2, 3, 4})  # Monday..Friday
MAX_DAYS_SCANNED = 3700  # ten years of holidays cannot stall the loop


class SlaConfigError(ValueError):
    """A bad SLA setting, with the setting named."""


@dataclass(frozen=True)
class OfficeHours:
    """When an agency works: a zone, opening and closing time, working weekdays, holidays."""

    tz: str = "Asia/Jakarta"
    open: time = DEFAULT_OPEN
    close: time = DEFAULT_CLOSE
    workdays: frozenset[int] = WORKDAYS
    holidays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.open >= self.close:
            raise SlaConfigError(f"office hours must open before they close: {self.open}-{self.close}")
        if not self.workdays:
            raise SlaConfigError("an agency needs at least one working day")
        ZoneInfo(self.tz)  # raises for an unknown zone

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @property
    def day_seconds(self) -> float:
        today = date(2000, 1, 3)
        return (datetime.combine(today, self.close) - datetime.combine(today, self.open)).total_seconds()

    def is_workday(self, day: date) -> bool:
        return day.weekday() in self.workdays and day not in self.holidays

    def window(self, day: date) -> tuple[datetime, datetime]:
        """Opening and closing of ``day`` as aware UTC datetimes."""
        zone = self.zone
        return (
            datetime.combine(day, self.open, tzinfo=zone).astimezone(UTC),
            datetime.combine(day, self.close, tzinfo=zone).astimezone(UTC),
        )


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
            opens, closes = office.window(day)
            begin = max(start, opens)
            if begin < closes:
                if begin + remaining <= closes:
                    return begin + remaining
                remaining -= closes - begin
        day += timedelta(days=1)
    raise ValueError("no working time found within ten years; check the office hours")


def add_working_days(start: datetime, days: float, office: OfficeHours) -> datetime:
    """``days`` full office days of working time after ``start``."""
    return add_working_hours(start, days * office.day_seconds / 3600, office)


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
            opens, closes = office.window(day)
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


def _hhmm(value: str, name: str) -> time:
    try:
        hh, mm = value.strip().split(":")
        return time(int(hh), int(mm))
    except (ValueError, AttributeError):
        raise SlaConfigError(f"{name}: not a HH:MM time: {value!r}") from None


def policy_from_settings(tz: str, settings: Mapping[str, Any] | None) -> SlaPolicy:
    """Read an agency's ``settings`` JSON: ``office_hours`` ("08:00-16:00"),
    ``sla_first_response_hours``, ``sla_resolution_days`` and ``holidays`` (["2026-12-25"])."""
    s = settings or {}
    span = str(s.get("office_hours") or f"{DEFAULT_OPEN:%H:%M}-{DEFAULT_CLOSE:%H:%M}")
    if "-" not in span:
        raise SlaConfigError(f"office_hours: expected HH:MM-HH:MM, got {span!r}")
    a, b = span.split("-", 1)
    try:
        holidays = frozenset(date.fromisoformat(str(d)) for d in s.get("holidays") or ())
    except ValueError as exc:
        raise SlaConfigError(f"holidays: {exc}") from None
    office = OfficeHours(tz=tz, open=_hhmm(a, "office_hours"), close=_hhmm(b, "office_hours"),
                         holidays=holidays)
    try:
        first = float(s.get("sla_first_response_hours", DEFAULT_FIRST_RESPONSE_HOURS))
        resolution = float(s.get("sla_resolution_days", DEFAULT_RESOLUTION_DAYS))
    except (TypeError, ValueError):
        raise SlaConfigError("sla_first_response_hours / sla_resolution_days must be numbers") from None
    if first <= 0 or resolution <= 0:
        raise SlaConfigError("SLA limits must be positive")
    return SlaPolicy(office, first, resolution)
