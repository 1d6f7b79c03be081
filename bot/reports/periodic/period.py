"""Report periods in the agency's own zone: quarters (2026-Q4), semesters (2026-S2), years (2026).

A questionnaire belongs to the period in which it started, counted in the agency's local time:
one started at 23:30 WIB on 31 March is in Q1, even though it is already 1 April in WITA and
16:30 UTC. Bounds are returned as aware UTC datetimes, [first day 00:00, next period 00:00).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

MONTHS = {"Q": 3, "S": 6, "Y": 12}


@dataclass(frozen=True, order=True)
class Period:
    year: int
    kind: str  # Q | S | Y
    number: int  # 1-4 for quarters, 1-2 for semesters, 1 for a year

    @property
    def label(self) -> str:
        return str(self.year) if self.kind == "Y" else f"{self.year}-{self.kind}{self.number}"

    @property
    def first_day(self) -> date:
        return date(self.year, (self.number - 1) * MONTHS[self.kind] + 1, 1)

    @property
    def next_first_day(self) -> date:
        month = self.number * MONTHS[self.kind] + 1
        return date(self.year + 1, 1, 1) if month > 12 else date(self.year, month, 1)

    @property
    def last_day(self) -> date:
        return date.fromordinal(self.next_first_day.toordinal() - 1)

    def bounds(self, tz: str) -> tuple[datetime, datetime]:
        zone = ZoneInfo(tz)
        return local_midnight_utc(self.first_day, zone), local_midnight_utc(self.next_first_day, zone)

    def previous(self, steps: int = 1) -> Period:
        per_year = 12 // MONTHS[self.kind]
        index = self.year * per_year + self.number - 1 - steps
        return Period(index // per_year, self.kind, index % per_year + 1)

    def __str__(self) -> str:
        return self.label


def local_midnight_utc(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def parse_period(text: str) -> Period:
    """``2026-Q4``, ``2026-S2`` or ``2026``; raises ValueError with a clear message."""
    m = re.fullmatch(r"(\d{4})(?:-?([QS])([1-4]))?", text.strip().upper())
    if not m:
        raise ValueError(f"period must look like 2026-Q4, 2026-S2 or 2026, got {text!r}")
    year = int(m.group(1))
    if m.group(2) is None:
        return Period(year, "Y", 1)
    kind, number = m.group(2), int(m.group(3))
    if kind == "S" and number > 2:
        raise ValueError(f"a year has two semesters (S1, S2), got {text!r}")
    return Period(year, kind, number)


def period_of(when: datetime, tz: str, kind: str) -> Period:
    """The period of kind ``kind`` that ``when`` falls in, in the zone ``tz``."""
    local = when.astimezone(ZoneInfo(tz)).date()
    return Period(local.year, kind, (local.month - 1) // MONTHS[kind] + 1)


def last_complete(now: datetime, tz: str, kind: str) -> Period:
    """The latest period of kind ``kind`` that has fully ended before ``now`` (agency time)."""
    return period_of(now, tz, kind).previous()
